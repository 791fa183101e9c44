from __future__ import annotations

import functools
import json

import pytest
from django.core import signing

from authz import services as authz_services
from authzen import services
from authzen.models import ResourceType
from tests.authzen.conftest import client_for
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
BASE = "/authzen/acme/access/v1"


@pytest.fixture
def people(instance):
    alice = ProfileFactory(instance=instance, role="customer", external_id="alice", user__email="alice@acme.test")
    bob = ProfileFactory(instance=instance, role="customer", external_id="bob")
    carol = ProfileFactory(instance=instance, role="customer")
    return alice, bob, carol


@pytest.fixture
def record(instance, people):
    alice, _, _ = people
    rtype = services.resource_type_create(instance=instance, name="record", actions=["read", "write"])
    for i, status in enumerate(["active", "archived", "active"], start=1):
        services.resource_object_upsert(rtype=rtype, object_id=f"r{i}", properties={"status": status})
    services.policy_create(instance=instance, subject="*", rtype=rtype, action="read")
    services.policy_create(instance=instance, subject=str(alice.user_id), rtype=rtype, action="write",
                           condition='resource.properties.status != "archived"')
    return rtype


def _ev(subject, action, rid, rtype="record", **extra):
    return {"subject": {"type": "user", "id": subject}, "action": {"name": action},
            "resource": {"type": rtype, "id": rid}, **extra}


def test_a_user_subject_resolves_by_external_id_user_id_or_email(pep, people, record):
    alice = people[0]
    for name in ("alice", str(alice.user_id), "ALICE@acme.test"):
        assert pep.post(f"{BASE}/evaluation", _ev(name, "write", "r1"), format="json").json() == {"decision": True}


def test_unknown_subjects_types_actions_and_objects_are_denied_not_errors(pep, people, record):
    for body in (_ev("nobody", "read", "r1"), _ev("alice", "read", "r1", rtype="spaceship"),
                 _ev("alice", "fly", "r1"), _ev("alice", "read", "unregistered"),
                 {**_ev("alice", "read", "r1"), "subject": {"type": "robot", "id": "alice"}}):
        response = pep.post(f"{BASE}/evaluation", body, format="json")
        assert response.status_code == 200
        assert response.json()["decision"] is False


def test_a_member_of_another_instance_is_an_unknown_subject(pep, record, other_instance):
    stranger = ProfileFactory(instance=other_instance, external_id="alice-elsewhere")

    for name in ("alice-elsewhere", str(stranger.user_id)):
        assert pep.post(f"{BASE}/evaluation", _ev(name, "read", "r1"), format="json").json()["decision"] is False


def test_request_properties_override_stored_ones(pep, people, record):
    body = _ev("alice", "write", "r1")
    body["resource"]["properties"] = {"status": "archived"}

    assert pep.post(f"{BASE}/evaluation", body, format="json").json() == {"decision": False}


def test_built_in_types_answer_as_authz_does(pep, instance, people):
    alice = people[0]
    authz_services.policies_upsert(instance=instance, policies=[f"{alice.user_id}:cancel:orders:15"])

    granted = pep.post(f"{BASE}/evaluation", _ev("alice", "cancel", "15", rtype="orders"), format="json")
    other = pep.post(f"{BASE}/evaluation", _ev("alice", "cancel", "16", rtype="orders"), format="json")
    by_role = pep.post(f"{BASE}/evaluation", _ev("alice", "get", "3", rtype="products"), format="json")

    assert (granted.json(), other.json(), by_role.json()) == ({"decision": True}, {"decision": False},
                                                              {"decision": True})


@pytest.mark.parametrize(("semantic", "expected"), [
    ("execute_all", [True, False, True]),
    ("deny_on_first_deny", [True, False]),
    ("permit_on_first_permit", [True]),
])
def test_the_three_evaluation_semantics(pep, people, record, semantic, expected):
    body = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "write"},
            "options": {"evaluations_semantic": semantic},
            "evaluations": [{"resource": {"type": "record", "id": rid}} for rid in ("r1", "r2", "r3")]}

    response = pep.post(f"{BASE}/evaluations", body, format="json")

    assert [e["decision"] for e in response.json()["evaluations"]] == expected


def test_a_failed_item_is_a_deny_with_the_error_in_its_context(pep, people, record):
    body = {"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
            "evaluations": [{"resource": {"type": "record", "id": "r1"}}, {"resource": {"type": "record"}}, 7]}

    response = pep.post(f"{BASE}/evaluations", body, format="json")

    assert response.json() == {"evaluations": [
        {"decision": True},
        {"decision": False, "context": {"error": {"status": 400,
                                                  "message": "evaluations[1].resource.id: is required"}}},
        {"decision": False, "context": {"error": {"status": 400, "message": "evaluations[2]: must be an object"}}},
    ]}


@pytest.mark.parametrize("body", [
    {"evaluations": [{}], "subject": "alice"},
    {"evaluations": {"a": 1}},
    {"evaluations": [{}], "options": {"evaluations_semantic": "first_come"}},
    {"evaluations": [{}], "options": []},
])
def test_a_broken_default_or_option_fails_the_whole_batch(pep, record, body):
    response = pep.post(f"{BASE}/evaluations", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_search_pages_follow_signed_tokens_and_refuse_tampering(pep, people, record):
    body = {"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "record", "id": "r1"},
            "page": {"limit": 2}}
    first = pep.post(f"{BASE}/search/subject", body, format="json").json()
    token = first["page"]["next_token"]
    second = pep.post(f"{BASE}/search/subject", {**body, "page": {"token": token}}, format="json").json()

    ids = [r["id"] for r in first["results"] + second["results"]]
    assert ids == ["alice", "bob", str(people[2].user_id)]
    assert (first["page"]["count"], first["page"]["total"], second["page"]["next_token"]) == (2, 3, "")
    forged = signing.dumps({"o": 0, "l": 2, "f": "x"}, salt="authzen.search.page")
    for changed in ({**body, "page": {"token": token[:-2] + "xx"}},
                    {**body, "page": {"token": forged}},
                    {**body, "action": {"name": "write"}, "page": {"token": token}},
                    {**body, "page": {"token": token, "limit": 5}}):
        response = pep.post(f"{BASE}/search/subject", changed, format="json")
        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_page_token")


def test_searches_answer_what_evaluations_allow(pep, people, record):
    resources = pep.post(f"{BASE}/search/resource", {"subject": {"type": "user", "id": "alice"},
                                                     "action": {"name": "write"}, "resource": {"type": "record"}},
                         format="json").json()["results"]
    actions = pep.post(f"{BASE}/search/action", {"subject": {"type": "user", "id": "bob"},
                                                 "resource": {"type": "record", "id": "r1"}},
                       format="json").json()["results"]

    assert resources == [{"type": "record", "id": "r1"}, {"type": "record", "id": "r3"}]
    assert actions == [{"name": "read"}]


def test_a_member_may_ask_about_itself_only(instance, people, record):
    alice = client_for(people[0])

    assert alice.post(f"{BASE}/evaluation", _ev("alice", "write", "r1"), format="json").json() == {"decision": True}
    assert alice.post(f"{BASE}/evaluation", _ev("bob", "read", "r1"), format="json").status_code == 403
    assert alice.post(f"{BASE}/search/subject", {"subject": {"type": "user"}, "action": {"name": "read"},
                                                 "resource": {"type": "record", "id": "r1"}},
                      format="json").status_code == 403


def test_an_admin_may_ask_about_anyone(admin, people, record):
    assert admin.post(f"{BASE}/evaluation", _ev("bob", "read", "r1"), format="json").json() == {"decision": True}


@pytest.mark.parametrize(("content_type", "payload"), [
    ("text/plain", b'{"subject": {}}'), ("application/json", b""), ("application/json", b"{nope"),
    ("application/json", b"[1, 2]"), ("application/x-www-form-urlencoded", b"subject=alice"),
])
def test_wrong_content_type_and_empty_or_malformed_bodies_are_400(pep, record, content_type, payload):
    response = pep.generic("POST", f"{BASE}/evaluation", payload, content_type=content_type)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"


def test_metadata_sits_at_the_inserted_well_known_uri(api_client, instance):
    response = api_client.get("/.well-known/authzen-configuration/authzen/acme")

    assert response.status_code == 200
    assert response.json() == {
        "policy_decision_point": "http://testserver/authzen/acme",
        **{f"{name}_endpoint": f"http://testserver/authzen/acme/access/v1/{path}" for name, path in (
            ("access_evaluation", "evaluation"), ("access_evaluations", "evaluations"),
            ("search_subject", "search/subject"), ("search_resource", "search/resource"),
            ("search_action", "search/action"))}}
    assert api_client.get("/.well-known/authzen-configuration/authzen/nope").status_code == 404


def test_every_response_of_the_project_carries_a_request_id(api_client):
    echoed = api_client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    generated = api_client.get("/api/v1/nothing-here")
    other = api_client.get("/api/v1/me")

    assert echoed["X-Request-ID"] == "abc-123"
    assert len(generated["X-Request-ID"]) == 32 and generated.status_code == 404
    assert other["X-Request-ID"] and other["X-Request-ID"] != generated["X-Request-ID"]


def test_type_definitions_do_not_leak_between_instances(pep, other_instance):
    ResourceType.objects.create(instance=other_instance, name="record", actions=["read"])

    assert pep.post(f"{BASE}/search/action", {"subject": {"type": "user", "id": "x"},
                                              "resource": {"type": "record", "id": "r1"}},
                    format="json").json()["results"] == []


@pytest.mark.parametrize("payload", [
    '{"subject": ' * 5000 + "1" + "}" * 5000,
    json.dumps({**_ev("alice", "read", "r1"), "context": functools.reduce(lambda acc, _: {"a": acc}, range(40), {})}),
    json.dumps(_ev("al\u0000ice", "read", "r1")),
    json.dumps(_ev("a" * 2000, "read", "r1")),
])
def test_hostile_bodies_are_400_not_500(pep, record, payload):
    response = pep.generic("POST", f"{BASE}/evaluation", payload, content_type="application/json")

    assert response.status_code == 400


def test_a_policy_removed_by_another_process_stops_allowing_within_a_second(pep, people, record, monkeypatch,
                                                                             django_assert_num_queries):
    from authzen import index
    from authzen.models import Policy

    body = _ev("alice", "write", "r1")
    assert pep.post(f"{BASE}/evaluation", body, format="json").json() == {"decision": True}
    with django_assert_num_queries(0):  # warm: the key, the subject and the policies come from memory
        assert pep.post(f"{BASE}/evaluation", body, format="json").json() == {"decision": True}

    Policy.objects.filter(action="write").delete()  # as another process would: this process's index is not told
    real = index.time.monotonic
    monkeypatch.setattr(index.time, "monotonic", lambda: real() + index.TTL_SECONDS + 0.01)

    assert pep.post(f"{BASE}/evaluation", body, format="json").json() == {"decision": False}
