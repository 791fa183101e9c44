"""Every test of the OpenID AuthZEN certification scenario (authorization-api-1_0-scenario), as data,
and a runner that sends them over HTTP to a PDP and returns what failed.

Each case names its section of the scenario (``c-2-2-1`` ...) and checks what the harness checks:
status, structure, and the decision values only where the scenario validates them.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ALICE_READ_1 = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                "resource": {"type": "record", "id": "record-1"}}
CTX = {"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    raw: bytes


@dataclass
class Case:
    id: str
    endpoint: str  # evaluation, evaluations, search/subject, search/resource, search/action, or metadata
    body: Any = None
    status: int = 200
    check: Callable[[Answer], str | None] | None = None
    content_type: str = "application/json"
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _decision(value: bool) -> Callable[[Answer], str | None]:
    def check(a: Answer) -> str | None:
        if not isinstance(a.body, dict) or not isinstance(a.body.get("decision"), bool):
            return f"no boolean decision in {a.body!r}"
        if "context" in a.body and not isinstance(a.body["context"], dict):
            return "context is not an object"
        return None if a.body["decision"] is value else f"decision {a.body['decision']} != {value}"
    return check


def _any_decision(a: Answer) -> str | None:
    return None if isinstance(a.body, dict) and isinstance(a.body.get("decision"), bool) else f"bad {a.body!r}"


def _evaluations(*values: bool | None) -> Callable[[Answer], str | None]:
    def check(a: Answer) -> str | None:
        items = a.body.get("evaluations") if isinstance(a.body, dict) else None
        if not isinstance(items, list) or len(items) != len(values):
            return f"evaluations {items!r} is not an array of {len(values)}"
        for i, (item, want) in enumerate(zip(items, values, strict=True)):
            if not isinstance(item, dict) or not isinstance(item.get("decision"), bool):
                return f"evaluations[{i}] has no boolean decision: {item!r}"
            if "context" in item and not isinstance(item["context"], dict):
                return f"evaluations[{i}].context is not an object"
            if want is not None and item["decision"] is not want:
                return f"evaluations[{i}].decision {item['decision']} != {want}"
        return None
    return check


def _results(kind: str, *must: str, type_: str | None = None, empty: bool = False) -> Callable[[Answer], str | None]:
    def check(a: Answer) -> str | None:
        results = a.body.get("results") if isinstance(a.body, dict) else None
        if not isinstance(results, list):
            return f"no results array in {a.body!r}"
        page = a.body.get("page")
        if page is not None and (not isinstance(page, dict) or not isinstance(page.get("next_token", ""), str)):
            return f"bad page {page!r}"
        if empty:
            return None if results == [] else f"expected no results, got {results!r}"
        key = "name" if kind == "action" else "id"
        for item in results:
            if not isinstance(item, dict) or not isinstance(item.get(key), str):
                return f"result without {key}: {item!r}"
            if kind != "action" and item.get("type") != type_:
                return f"result of another type: {item!r}"
        names = {item[key] for item in results}
        missing = [m for m in must if m not in names]
        return f"missing {missing} in {results!r}" if missing else None
    return check


def _metadata(base: str) -> Callable[[Answer], str | None]:
    def check(a: Answer) -> str | None:
        body = a.body
        if not isinstance(body, dict):
            return "not a JSON object"
        if body.get("policy_decision_point") != base:
            return f"policy_decision_point {body.get('policy_decision_point')!r} != {base!r}"
        if not str(body.get("access_evaluation_endpoint", "")).startswith(base):
            return "access_evaluation_endpoint missing"
        for key in ("access_evaluations_endpoint", "search_subject_endpoint", "search_resource_endpoint",
                    "search_action_endpoint"):
            if key in body and not str(body[key]).startswith(base):
                return f"{key} is not under the base URL"
        if "capabilities" in body and not (isinstance(body["capabilities"], list)
                                           and all(isinstance(c, str) for c in body["capabilities"])):
            return "capabilities is not an array of strings"
        return None
    return check


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


def _with(body: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    return {**body, key: value}


def cases() -> dict[str, list[Case]]:
    """The scenario's tests by certification sub-level (plus transport rules applying to all)."""
    basic_core = [
        Case("c-2-2-1", "evaluation", ALICE_READ_1, check=_decision(True)),
        Case("c-2-2-2", "evaluation", {"subject": {"type": "user", "id": "bob"}, "action": {"name": "write"},
                                       "resource": {"type": "record", "id": "record-1"}}, check=_decision(False)),
        Case("c-2-2-3", "evaluation", _with(ALICE_READ_1, "context", CTX), check=_decision(True)),
        Case("c-2-2-8", "evaluation", {
            "subject": {"type": "user", "id": "alice", "properties": {"department": "Sales", "role": "manager"}},
            "action": {"name": "read", "properties": {"method": "GET"}},
            "resource": {"type": "record", "id": "record-1", "properties": {"status": "active", "owner": "bob"}}},
            check=_decision(True)),
        Case("c-2-2-9", "evaluation", {**ALICE_READ_1, "foo": "bar", "futureField": {"nested": True}},
             check=_decision(True)),
        Case("c-2-3", "evaluation", _with(ALICE_READ_1, "context", {}), check=_decision(True)),
        Case("c-2-4-1 missing subject", "evaluation", _without(ALICE_READ_1, "subject"), status=400),
        Case("c-2-4-1 missing action", "evaluation", _without(ALICE_READ_1, "action"), status=400),
        Case("c-2-4-1 missing resource", "evaluation", _without(ALICE_READ_1, "resource"), status=400),
        Case("c-2-4-2 subject.type", "evaluation", _with(ALICE_READ_1, "subject", {"id": "alice"}), status=400),
        Case("c-2-4-2 subject.id", "evaluation", _with(ALICE_READ_1, "subject", {"type": "user"}), status=400),
        Case("c-2-4-2 action.name", "evaluation", _with(ALICE_READ_1, "action", {}), status=400),
        Case("c-2-4-2 resource.type", "evaluation", _with(ALICE_READ_1, "resource", {"id": "record-1"}),
             status=400),
        Case("c-2-4-2 resource.id", "evaluation", _with(ALICE_READ_1, "resource", {"type": "record"}), status=400),
        Case("c-2-4-3 content type", "evaluation", ALICE_READ_1, status=400, content_type="text/plain"),
        Case("c-2-4-4 malformed JSON", "evaluation", raw=b'{"subject": {"type": "user", "id": "alice"', status=400),
        Case("c-2-4-5 empty body", "evaluation", raw=b"", status=400),
        Case("c-2-4-6 subject string", "evaluation", _with(ALICE_READ_1, "subject", "alice"), status=400),
        Case("c-2-4-6 action.name number", "evaluation", _with(ALICE_READ_1, "action", {"name": 123}), status=400),
        Case("c-2-5-1 X-Request-ID echo", "evaluation", ALICE_READ_1, check=_decision(True),
             headers={"X-Request-ID": "bfe9eb29-ab87-4ca3-be83-a1d5d8305716"}),
        Case("c-2-5-2 X-Request-ID absent", "evaluation", ALICE_READ_1, check=_decision(True)),
    ] + [Case(f"c-2-6 idempotency #{i}", "evaluation", ALICE_READ_1, check=_decision(True)) for i in range(3)]
    basic_properties = [
        Case("c-2-2-4", "evaluation", {"subject": {"type": "user", "id": "alice"}, "action": {"name": "write"},
                                       "resource": {"type": "record", "id": "record-2",
                                                    "properties": {"status": "archived"}}}, check=_decision(False)),
        Case("c-2-2-5", "evaluation", {"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}},
                                       "action": {"name": "write"},
                                       "resource": {"type": "record", "id": "record-2",
                                                    "properties": {"status": "archived"}}}, check=_decision(True)),
        Case("c-2-2-6", "evaluation", {"subject": {"type": "user", "id": "alice"},
                                       "action": {"name": "delete", "properties": {"soft": True}},
                                       "resource": {"type": "record", "id": "record-1"}}, check=_decision(True)),
        Case("c-2-2-7", "evaluation", {"subject": {"type": "user", "id": "alice"},
                                       "action": {"name": "delete", "properties": {"soft": False}},
                                       "resource": {"type": "record", "id": "record-1"}}, check=_decision(False)),
    ]
    batch_core = [
        Case("c-3-2-1", "evaluations", {"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                                        "evaluations": [{"resource": {"type": "record", "id": "record-1"}},
                                                        {"resource": {"type": "record", "id": "record-2"}}]},
             check=_evaluations(None, None)),
        Case("c-3-2-2", "evaluations", {"subject": {"type": "user", "id": "bob"},
                                        "resource": {"type": "record", "id": "record-1"},
                                        "evaluations": [{"action": {"name": "read"}}, {"action": {"name": "write"}}]},
             check=_evaluations(True, False)),
        Case("c-3-2-5", "evaluations", {"evaluations": [
            ALICE_READ_1, {"subject": {"type": "user", "id": "bob"}, "action": {"name": "write"},
                           "resource": {"type": "record", "id": "record-1"}}]}, check=_evaluations(True, False)),
        Case("c-3-2-6", "evaluations", {
            "subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
            "context": {"time": "2025-06-27T18:03-07:00"},
            "evaluations": [{"resource": {"type": "record", "id": "record-1"}},
                            {"resource": {"type": "record", "id": "record-2"},
                             "context": {"time": "2025-06-27T19:00-07:00", "source": "batch-override"}}]},
             check=_evaluations(None, None)),
        Case("c-3-4-1", "evaluations", {"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                                        "options": {"evaluations_semantic": "execute_all"},
                                        "evaluations": [{"resource": {"type": "record", "id": "record-1"}}, {}]},
             check=_evaluations(True, False)),
        Case("c-3-4-2", "evaluations", ALICE_READ_1, check=_decision(True)),
        Case("c-3-4-3", "evaluations", _with(ALICE_READ_1, "evaluations", []), check=_decision(True)),
    ]
    batch_properties = [
        Case("c-3-2-3", "evaluations", {
            "subject": {"type": "user", "id": "alice"}, "action": {"name": "write"},
            "evaluations": [{"resource": {"type": "record", "id": "record-1", "properties": {"status": "active"}}},
                            {"resource": {"type": "record", "id": "record-2",
                                          "properties": {"status": "archived"}}}]},
             check=_evaluations(True, False)),
        Case("c-3-2-4", "evaluations", {
            "action": {"name": "write"},
            "resource": {"type": "record", "id": "record-2", "properties": {"status": "archived"}},
            "evaluations": [{"subject": {"type": "user", "id": "alice"}},
                            {"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}}}]},
             check=_evaluations(False, True)),
        Case("c-3-2-7", "evaluations", {
            "subject": {"type": "user", "id": "alice"}, "action": {"name": "write"},
            "resource": {"type": "record", "id": "record-1", "properties": {"status": "active"}},
            "evaluations": [{}, {"resource": {"type": "record", "id": "record-2",
                                              "properties": {"status": "archived"}}}]},
             check=_evaluations(True, False)),
    ]
    subject_read_1 = {"subject": {"type": "user"}, "action": {"name": "read"},
                      "resource": {"type": "record", "id": "record-1"}}
    resource_alice_read = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                           "resource": {"type": "record"}}
    action_alice_1 = {"subject": {"type": "user", "id": "alice"}, "resource": {"type": "record", "id": "record-1"}}
    search_core = [
        Case("c-4-2-1", "search/subject", subject_read_1, check=_results("subject", "alice", "bob", type_="user")),
        Case("c-4-2-2", "search/subject", _with(subject_read_1, "context", CTX),
             check=_results("subject", "alice", "bob", type_="user")),
        Case("c-4-2-3", "search/subject", _with(subject_read_1, "subject", {"type": "user", "id": "alice"}),
             check=_results("subject", "alice", "bob", type_="user")),
        Case("c-4-3-1", "search/resource", resource_alice_read, check=_results("resource", "record-1",
                                                                                type_="record")),
        Case("c-4-3-2", "search/resource", _with(resource_alice_read, "context", CTX),
             check=_results("resource", "record-1", type_="record")),
        Case("c-4-3-3", "search/resource", _with(resource_alice_read, "resource",
                                                 {"type": "record", "id": "record-1"}),
             check=_results("resource", "record-1", type_="record")),
        Case("c-4-4-1", "search/action", action_alice_1, check=_results("action", "read", "write")),
        Case("c-4-4-2", "search/action", _with(action_alice_1, "context", CTX),
             check=_results("action", "read", "write")),
        Case("c-4-5-1", "search/subject", _with(subject_read_1, "page", {"limit": 1}),
             check=_results("subject", type_="user")),
        # c-4-5-2 (the follow-up with the token) is run by ``run`` after c-4-5-1.
        Case("c-4-6-1 unknown id (action)", "search/action",
             _with(action_alice_1, "subject", {"type": "user", "id": "nonexistent-user"}),
             check=_results("action", empty=True)),
        Case("c-4-6-1 unknown id (resource)", "search/resource",
             _with(resource_alice_read, "subject", {"type": "user", "id": "nonexistent-user"}),
             check=_results("resource", empty=True)),
        Case("c-4-6-1 unknown id (subject)", "search/subject",
             _with(subject_read_1, "resource", {"type": "record", "id": "nonexistent-record"}),
             check=_results("subject", empty=True)),
        Case("c-4-6-2 unknown type (subject)", "search/subject", _with(subject_read_1, "subject",
                                                                        {"type": "spaceship"}),
             check=_results("subject", empty=True)),
        Case("c-4-6-2 unknown type (resource)", "search/resource", _with(resource_alice_read, "resource",
                                                                          {"type": "spaceship"}),
             check=_results("resource", empty=True)),
        Case("c-4-6-2 unknown type (action)", "search/action", _with(action_alice_1, "resource",
                                                                      {"type": "spaceship", "id": "x"}),
             check=_results("action", empty=True)),
        Case("c-4-7-1 subject search without action", "search/subject", _without(subject_read_1, "action"),
             status=400),
        Case("c-4-7-1 resource search without subject", "search/resource",
             _without(resource_alice_read, "subject"), status=400),
        Case("c-4-7-1 action search without resource", "search/action", _without(action_alice_1, "resource"),
             status=400),
        Case("c-4-7-2 subject search, resource without id", "search/subject",
             _with(subject_read_1, "resource", {"type": "record"}), status=400),
        Case("c-4-7-2 resource search, subject without id", "search/resource",
             _with(resource_alice_read, "subject", {"type": "user"}), status=400),
        Case("c-4-7-2 action search, subject without id", "search/action",
             _with(action_alice_1, "subject", {"type": "user"}), status=400),
    ]
    search_properties = [
        Case("c-4-2-4", "search/subject", {"subject": {"type": "user"}, "action": {"name": "write"},
                                           "resource": {"type": "record", "id": "record-2",
                                                        "properties": {"status": "archived"}}},
             check=_results("subject", "bob", type_="user")),
        Case("c-4-3-4", "search/resource", {"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}},
                                            "action": {"name": "write"}, "resource": {"type": "record"}},
             check=_results("resource", "record-2", type_="record")),
        Case("c-4-4-3", "search/action", {"subject": {"type": "user", "id": "bob", "properties": {"role": "admin"}},
                                          "resource": {"type": "record", "id": "record-2",
                                                       "properties": {"status": "archived"}}},
             check=_results("action", "write")),
    ]
    discovery = [Case("c-6", "metadata")]
    return {"basic_core": basic_core, "basic_properties": basic_properties, "batch_core": batch_core,
            "batch_properties": batch_properties, "search_core": search_core,
            "search_properties": search_properties, "discovery": discovery}


def send(url: str, *, token: str, method: str = "POST", body: Any = None, raw: bytes | None = None,
         content_type: str = "application/json", headers: dict[str, str] | None = None) -> Answer:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if method == "POST":
        request.add_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, got_headers, payload = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, got_headers, payload = error.code, dict(error.headers), error.read()
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = None
    return Answer(status, {k.lower(): v for k, v in got_headers.items()}, parsed, payload)


def metadata_url(base: str) -> str:
    """The spec's insertion rule: ``/.well-known/authzen-configuration`` between host and path."""
    scheme, rest = base.split("://", 1)
    host, _, path = rest.partition("/")
    return f"{scheme}://{host}/.well-known/authzen-configuration/{path}".rstrip("/")


def run(level: list[Case], *, base: str, token: str) -> list[str]:
    """Send every case of a level; return one line per failure (empty: the level passes)."""
    failures: list[str] = []
    for case in level:
        if case.endpoint == "metadata":
            answer = send(metadata_url(base), token=token, method="GET")
            check = _metadata(base)
        else:
            answer = send(f"{base}/access/v1/{case.endpoint}", token=token, body=case.body, raw=case.raw,
                          content_type=case.content_type, headers=case.headers)
            check = case.check
        problem = None
        if answer.status != case.status:
            problem = f"status {answer.status} != {case.status}: {answer.raw[:300]!r}"
        elif not answer.headers.get("content-type", "").startswith("application/json"):
            problem = f"content type {answer.headers.get('content-type')!r}"
        elif not answer.headers.get("x-request-id"):
            problem = "no X-Request-ID in the response"
        elif case.headers.get("X-Request-ID") and answer.headers["x-request-id"] != case.headers["X-Request-ID"]:
            problem = f"X-Request-ID not echoed: {answer.headers['x-request-id']!r}"
        elif check is not None:
            problem = check(answer)
        if problem is None and case.id == "c-4-5-1":
            problem = _follow_page(base, token, case, answer)
        if problem is not None:
            failures.append(f"{case.id}: {problem}")
    return failures


def _follow_page(base: str, token: str, case: Case, first: Answer) -> str | None:
    """c-4-5-2: when a next_token came back, the follow-up with it must answer a page object."""
    next_token = (first.body.get("page") or {}).get("next_token") if isinstance(first.body, dict) else None
    seen = [r["id"] for r in first.body["results"]]
    while next_token:
        body = {**case.body, "page": {"token": next_token}}
        answer = send(f"{base}/access/v1/{case.endpoint}", token=token, body=body)
        if answer.status != 200 or not isinstance(answer.body, dict):
            return f"c-4-5-2: status {answer.status}: {answer.raw[:200]!r}"
        page = answer.body.get("page")
        if not isinstance(page, dict) or not isinstance(page.get("next_token"), str):
            return f"c-4-5-2: page {page!r} has no next_token string"
        seen += [r["id"] for r in answer.body.get("results", [])]
        next_token = page["next_token"]
    return None if {"alice", "bob"} <= set(seen) else f"c-4-5-2: pages hold {seen!r}, not alice and bob"
