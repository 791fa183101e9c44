"""The lean WSGI path (``authzen.fastpath``) answers exactly as Django does: every request below goes through
``FastPath(django)`` and through Django alone, and status, body and headers must be identical. The common
case must be answered by the fast path itself (Django not called); every kind of invalid request must reach
Django (which writes the canonical error)."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from accounts.models import Profile
from accounts.services.tokens import access_token_issue, user_revoke_all_tokens
from authz import services as authz_services
from authzen import services
from authzen.fastpath import FastPath
from saaskit.metrics import HTTP_LATENCY
from tests.authzen import scenario
from tests.factories import InstanceFactory, ProfileFactory

pytestmark = pytest.mark.django_db


class Spy:
    """Django's WSGI application, counting the requests it had to answer."""

    def __init__(self, app: Any) -> None:
        self.app, self.calls = app, 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.app(environ, start_response)


@pytest.fixture
def apps():
    from saaskit.wsgi import django_application

    # As Django's test client does: the test's transaction must outlive each "request".
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    spy = Spy(django_application)
    yield FastPath(spy), django_application, spy
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _environ(method: str, path: str, *, body: bytes | None = None, content_type: str | None = "application/json",
             query: str = "", headers: dict[str, str] | None = None) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": query,
        "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "testserver",
        "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body or b""),
        "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if body is not None:
        env["CONTENT_LENGTH"] = str(len(body))
        if content_type is not None:
            env["CONTENT_TYPE"] = content_type
    for name, value in (headers or {}).items():
        env[name] = value
    return env


def _call(app: Any, env: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"], seen["headers"] = status, headers

    result = app(env, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    headers = {name.lower(): value for name, value in seen["headers"]}
    return seen["status"], headers, body


def _same(apps: Any, make_env: Any, *, fast: bool) -> tuple[str, dict[str, str], bytes]:
    """Send the request through both; assert identical answers and who answered it."""
    fast_app, django_app, spy = apps
    before = spy.calls
    ours = _call(fast_app, make_env())
    answered_by_django = spy.calls > before
    theirs = _call(django_app, make_env())
    status, headers, body = ours
    assert (status, body) == (theirs[0], theirs[2])
    given = make_env().get("HTTP_X_REQUEST_ID")
    for got in (headers, theirs[1]):  # a generated id differs per response: check its shape
        if given is None or not 0 < len(given) <= 200:
            assert len(got.pop("x-request-id")) == 32
    assert headers == theirs[1]
    assert answered_by_django is not fast, "the fast path should have answered" if fast else "Django should have"
    return ours


# --- the world ----------------------------------------------------------------------------------------
@pytest.fixture
def world(instance, admin_profile):
    member = ProfileFactory(instance=instance, role="customer")
    other = ProfileFactory(instance=instance, role="customer")
    foreign = ProfileFactory(instance=InstanceFactory(slug="globex"), role="instance_admin")
    docs = authz_services.resource_create(instance=instance, name="docs")
    authz_services.resource_create(instance=instance, name="docs-a", parent_id=docs.pk)
    authz_services.resource_create(instance=instance, name="caf\u00e9")
    authz_services.policies_upsert(instance=instance, policies=[
        f"{member.user_id}:get:orders:5", f"{member.user_id}:get:resources:{docs.pk}"])
    services.resource_type_create(instance=instance, name="record", actions=["read", "write"])
    _, _, key = services.service_client_create(instance=instance, name="gw", role="customer")
    _, _, foreign_key = services.service_client_create(instance=foreign.instance, name="gw", role="customer")

    def token(profile: Profile, **kw: Any) -> str:
        return access_token_issue(user_id=profile.user_id, instance=profile.instance, role=profile.role,
                                  profile_role=profile.role, **kw)

    return {"admin": admin_profile, "member": member, "other": other, "foreign": foreign, "key": key,
            "foreign_key": foreign_key, "token": token, "admin_token": token(admin_profile),
            "member_token": token(member), "foreign_token": token(foreign)}


def _bearer(value: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {value}"}


EVAL = "/authzen/acme/access/v1/evaluation"
EVALS = "/authzen/acme/access/v1/evaluations"
BATCH = "/api/v1/authz/check/batch"
AUTHORIZED = "/api/v1/authz/authorized"


def _post(path: str, data: Any, auth: dict[str, str], **kw: Any) -> Any:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    headers = {**auth, **kw.pop("headers", {})}
    return lambda: _environ("POST", path, body=raw, headers=headers, **kw)


def _evaluation(subject: str = "5", action: str = "get", rtype: str = "orders", rid: str = "5") -> dict[str, Any]:
    return {"subject": {"type": "user", "id": subject}, "action": {"name": action},
            "resource": {"type": rtype, "id": rid}}


# --- AuthZEN ------------------------------------------------------------------------------------------
def test_authzen_common_requests_are_answered_by_the_fast_path_as_django_would(apps, world):
    key = _bearer(world["key"])
    member = str(world["member"].user_id)
    cases = [
        _evaluation(member), _evaluation(member, rid="6"), _evaluation("nobody"), _evaluation(member, "fly"),
        {**_evaluation(member), "subject": {"type": "robot", "id": "r2\u2028d2"}},
        _evaluation(member, "read", "record", "x"), {**_evaluation(member), "context": {"ip": "1.2.3.4"}, "extra": 1},
    ]
    for body in cases:
        _same(apps, _post(EVAL, body, key), fast=True)
    status, headers, raw = _same(apps, _post(EVAL, _evaluation(member), key,
                                             headers={"HTTP_X_REQUEST_ID": "req-42"}), fast=True)
    assert (status, raw, headers["x-request-id"], headers["content-type"]) == (
        "200 OK", b'{"decision":true}', "req-42", "application/json")
    for accept in ("*/*", "application/json"):
        _same(apps, _post(EVAL, _evaluation(member), key, headers={"HTTP_ACCEPT": accept}), fast=True)
    batches = [
        {"evaluations": [_evaluation(member), _evaluation(member, rid="6"), {"subject": 3}, 7]},
        {**_evaluation(member), "evaluations": [{"resource": {"type": "orders", "id": "6"}}, {}],
         "options": {"evaluations_semantic": "deny_on_first_deny"}},
        {"evaluations": [_evaluation(member, rid="6"), _evaluation(member), _evaluation(member)],
         "options": {"evaluations_semantic": "permit_on_first_permit"}},
        {"evaluations": [_evaluation("nobody")], "options": {"evaluations_semantic": "deny_on_first_deny"}},
        _evaluation(member), {**_evaluation(member), "evaluations": []},
    ]
    for body in batches:
        _same(apps, _post(EVALS, body, key), fast=True)


def test_authzen_invalid_requests_reach_django(apps, world):
    key, member = _bearer(world["key"]), str(world["member"].user_id)
    good = _evaluation(member)
    cases = [
        _post(EVAL, good, {}), _post(EVAL, good, _bearer("sk_unknown")), _post(EVAL, good, _bearer(world["foreign_key"])),
        _post(EVAL, good, _bearer(world["admin_token"])), _post(EVAL, good, {"HTTP_AUTHORIZATION": "Basic eDp5"}),
        _post("/authzen/nope/access/v1/evaluation", good, key), _post(EVAL, good, key, content_type="text/plain"),
        _post(EVAL, good, key, content_type=None), _post(EVAL, b"", key), _post(EVAL, b"{", key),
        _post(EVAL, b"[]", key), _post(EVAL, {"subject": {"type": "user"}}, key), _post(EVAL, b"\xff", key),
        _post(EVAL, good, key, headers={"HTTP_ACCEPT": "text/html"}),
        _post(EVAL, good, key, headers={"HTTP_HOST": "evil.example"}),
        _post(EVAL, good, key, query="format=api"), _post(EVALS, {"evaluations": 3}, key),
        _post(EVALS, {**good, "options": {"evaluations_semantic": "first"}}, key),
        _post("/authzen/acme/access/v1/evaluation/", good, key),
        lambda: {**_environ("GET", EVAL, headers=key)},
    ]
    for make_env in cases:
        _same(apps, make_env, fast=False)
    # the same with the request id given, over-long and missing
    _same(apps, _post(EVAL, b"{", key, headers={"HTTP_X_REQUEST_ID": "x" * 201}), fast=False)


def test_every_certification_evaluation_case_answers_the_same(apps, world):
    """The scenario's evaluation and batch cases (valid and invalid) against the certification fixture."""
    import io as _io

    from django.core.management import call_command

    out = _io.StringIO()
    call_command("authzen", "certification-fixture", "--json", "--base-url", "http://testserver", stdout=out)
    token = json.loads(out.getvalue())["token"]
    path = {"evaluation": "/authzen/authzen-cert/access/v1/evaluation",
            "evaluations": "/authzen/authzen-cert/access/v1/evaluations"}
    answered = 0
    for level in scenario.cases().values():
        for case in level:
            if case.endpoint not in path:
                continue
            raw = case.raw if case.raw is not None else (b"" if case.body is None else json.dumps(case.body).encode())
            headers = {**_bearer(token), **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in case.headers.items()}}
            fast = case.status == 200 and case.content_type == "application/json"
            ct = case.content_type or None
            _same(apps, lambda p=path[case.endpoint], b=raw, c=ct, h=headers: _environ("POST", p, body=b,
                                                                                     content_type=c, headers=h),
                  fast=fast)
            answered += fast
    assert answered >= 10


# --- authz: batch check and /authorized ---------------------------------------------------------------
def _check(subject: Any, action: Any = "get", rtype: Any = "orders", rid: Any = "5") -> dict[str, Any]:
    return {"subject": subject, "action": action, "resource_type": rtype, "resource_id": rid}


def test_batch_check_common_requests_are_answered_by_the_fast_path(apps, world):
    admin, member = _bearer(world["admin_token"]), _bearer(world["member_token"])
    uid, other = world["member"].user_id, world["other"].user_id
    cases = [
        _post(BATCH, {"checks": [_check(uid), _check(uid, rid="6"), _check(other), _check(uid, "cancel")]}, admin),
        _post(BATCH, {"checks": []}, admin), _post(BATCH, {"checks": [_check(uid)], "unknown": 1}, member),
        _post(BATCH, {"checks": [_check(uid, "get", "resources", "1")]}, member,
              content_type="application/json; charset=utf-8"),
    ]
    for make_env in cases:
        _same(apps, make_env, fast=True)
    status, _, body = _same(apps, cases[0], fast=True)
    assert (status, json.loads(body)) == ("200 OK", {"results": [{"allowed": True}, {"allowed": False},
                                                                 {"allowed": False}, {"allowed": False}]})


def test_batch_check_invalid_requests_reach_django(apps, world):
    admin, member = _bearer(world["admin_token"]), _bearer(world["member_token"])
    uid, other = world["member"].user_id, world["other"].user_id
    bad_bodies = [
        {"checks": [_check(other)]},  # a member asking about another: 403
        {"checks": [_check(uid, "fly")]}, {"checks": [_check(uid, "get", "rockets")]}, {"checks": [_check("5")]},
        {"checks": [_check(True)]}, {"checks": [_check(0)]}, {"checks": [_check(2**63)]},
        {"checks": [_check(uid, rid=" 5")]}, {"checks": [_check(uid, rid="x" * 65)]}, {"checks": [_check(uid, rid="")]},
        {"checks": [_check(uid, rid=5)]}, {"checks": [_check(uid, rid="caf\u00e9")]}, {"checks": [{"subject": uid}]},
        {"checks": [3]}, {"checks": {}}, {"checks": "x"}, {}, [], {"checks": [_check(uid)] * 1001},
    ]
    for body in bad_bodies:
        _same(apps, _post(BATCH, body, member), fast=False)
    for make_env in [
        _post(BATCH, b'{"checks": [{"subject": NaN}]}', admin), _post(BATCH, b"{", admin), _post(BATCH, b"", admin),
        _post(BATCH, "\ufeff{}".encode(), admin), _post(BATCH, {"checks": []}, admin, content_type="text/plain"),
        _post(BATCH, {"checks": []}, {}), _post(BATCH, {"checks": []}, _bearer("not.a.token")),
        _post(BATCH, {"checks": []}, _bearer(world["key"])), _post(BATCH, {"checks": []}, {"HTTP_AUTHORIZATION": "Bearer a b"}),
        _post(BATCH, {"checks": []}, admin, headers={"HTTP_ACCEPT": "application/xml"}),
    ]:
        _same(apps, make_env, fast=False)


def _get(query: str, auth: dict[str, str], **headers: str) -> Any:
    return lambda: _environ("GET", AUTHORIZED, query=query, headers={**auth, **headers})


def test_authorized_common_requests_are_answered_by_the_fast_path(apps, world):
    admin = _bearer(world["admin_token"])
    uid = world["member"].user_id
    for query in (f"userId={uid}&resourceName=docs", f"userId={uid}&resourceName=docs-a",
                  f"resourceName=docs&userId={uid}", f"userId={uid}&resourceName=nothing",
                  f"userId={uid}&resourceName=caf%C3%A9", f"userId=1&userId={uid}&resourceName=docs"):
        _same(apps, _get(query, admin), fast=True)
    status, headers, body = _same(apps, _get(f"userId={uid}&resourceName=docs-a", admin), fast=True)
    assert (status, body, headers["allow"]) == ("200 OK", b'{"authorized":true}', "GET, HEAD, OPTIONS")
    status, _, body = _same(apps, _get(f"userId={uid}&resourceName=nothing", admin), fast=True)
    assert (status, body) == ("403 Forbidden", b'{"authorized":false}')


def test_authorized_invalid_requests_reach_django(apps, world):
    admin = _bearer(world["admin_token"])
    uid = world["member"].user_id
    for make_env in [
        _get("resourceName=docs", admin), _get(f"userId={uid}", admin), _get("userId=0&resourceName=docs", admin),
        _get("userId=abc&resourceName=docs", admin), _get(f"userId={uid}&resourceName=" + "x" * 256, admin),
        _get(f"userId={uid}&resourceName=docs&format=json", admin), _get(f"userId={uid}&resourceName=docs", {}),
        _get(f"userId={uid}&resourceName=docs", _bearer(world["key"])),
        _get(f"userId={uid}&resourceName=docs", admin, HTTP_ACCEPT="application/xml"),
        _get(f"userId={uid}&resourceName=docs", _bearer(world["token"](world["admin"], now=0))),  # expired
    ]:
        _same(apps, make_env, fast=False)


def test_revoked_tokens_and_stale_roles_fall_back_to_django(apps, world, django_capture_on_commit_callbacks):
    """The guarantees hold on the fast path: a revoke-all and a demotion refuse the token at once here."""
    uid = world["member"].user_id
    admin_token, admin_profile = world["admin_token"], world["admin"]
    ok = _get(f"userId={uid}&resourceName=docs", _bearer(admin_token))
    _same(apps, ok, fast=True)
    Profile.objects.filter(pk=admin_profile.pk).update(role="clerk")
    from accounts.selectors import standing_forget

    standing_forget(user_id=admin_profile.user_id, instance_id=admin_profile.instance_id)  # as the changefeed does
    status, _, body = _same(apps, ok, fast=False)
    assert (status, json.loads(body)["error"]["code"]) == ("401 Unauthorized", "role_stale")

    member_token = _bearer(world["member_token"])
    own = _post(BATCH, {"checks": [_check(uid)]}, member_token)
    _same(apps, own, fast=True)
    with django_capture_on_commit_callbacks(execute=True):
        user_revoke_all_tokens(user=world["member"].user, reason="test")
    status, _, body = _same(apps, own, fast=False)
    assert (status, json.loads(body)["error"]["code"]) == ("401 Unauthorized", "token_revoked")


def test_revoked_service_key_falls_back_to_django(apps, world, instance):
    from authzen import authentication
    from authzen.models import ServiceKey

    key = _bearer(world["key"])
    request = _post(EVAL, _evaluation(str(world["member"].user_id)), key)
    _same(apps, request, fast=True)
    services.service_key_revoke(key=ServiceKey.objects.get(client__name="gw", client__instance=instance))
    authentication.forget_cached_keys()  # another process would see it within KEY_CACHE_SECONDS
    status, _, body = _same(apps, request, fast=False)
    assert (status, json.loads(body)["error"]["code"]) == ("401 Unauthorized", "service_key_invalid")


def test_fast_path_observes_the_route_latency_metric(apps, world):
    uid = world["member"].user_id
    labels = ("/api/v1/authz/authorized", "GET", "2xx")
    before = HTTP_LATENCY.labels(*labels)._sum.get(), _count(labels)
    _same(apps, _get(f"userId={uid}&resourceName=docs", _bearer(world["admin_token"])), fast=True)
    # one observation by the fast path and one by Django's middleware for the comparison request
    assert _count(labels) == before[1] + 2


def _count(labels: tuple[str, str, str]) -> float:
    for metric in HTTP_LATENCY.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and (sample.labels["route"], sample.labels["method"],
                                                   sample.labels["status"]) == labels:
                return sample.value
    return 0.0


@pytest.mark.django_db(transaction=True)
def test_an_answer_needing_the_database_after_its_connection_was_cut_comes_from_a_new_one(world):
    """The fast path sends neither request_started nor request_finished (their receivers check the thread's
    connections). A warm answer needs no database; a miss whose connection is gone (PostgreSQL restarted, a
    failover) raises, the request goes to Django, which opens a new connection and answers it right."""
    import psycopg
    from django.conf import settings
    from django.db import connection

    from authz.cache import default_cache
    from authzen.authentication import forget_cached_keys
    from saaskit.wsgi import django_application

    spy = Spy(django_application)
    fast = FastPath(spy)
    request = _post(EVAL, _evaluation(str(world["member"].user_id)), _bearer(world["key"]))
    assert _call(fast, request())[::2] == ("200 OK", b'{"decision":true}')
    assert spy.calls == 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (first_pid,) = cursor.fetchone()
    with psycopg.connect(settings.DATABASE_URL, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [first_pid])
    default_cache().clear()  # the next answer must read PostgreSQL
    forget_cached_keys()

    assert _call(fast, request())[::2] == ("200 OK", b'{"decision":true}')
    assert spy.calls == 1  # the fast path's miss failed on the dead connection; Django answered
    assert _call(fast, request())[::2] == ("200 OK", b'{"decision":true}')
    assert spy.calls == 1  # and the fast path is back on the new connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != first_pid
