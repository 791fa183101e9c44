"""BOLA matrix: every endpoint whose URL takes an id or a slug, found from the URL patterns (a new one is covered
without editing this file, or fails here until its parameter has a value below), called with every method its
view has:

- by an instance admin of instance B, with the ids and slug of instance A's objects (a user of another instance);
- by a customer of instance A holding no policy on anything, with the ids of A's objects that are not theirs.

Each call must be a 401/403/404 in the error shape, carry none of the object's data, and leave every table as it
was (all rows of every model compared before and after).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.selectors import InstanceActor
from accounts.services.instances import member_invite
from authz.services import group_create, resource_create
from authzen.services import policy_create, resource_type_create, service_client_create
from tests.factories import ProfileFactory
from tests.support.hostile import World, bearer, build_world, token_for

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")
# A body a write would accept if authorization let it through: the refusal must come first.
WRITE_BODY = {"quantity": 5, "amount": "10.00", "reason": "bola", "role": "instance_admin", "name": "bola",
              "email": "bola@example.com", "external_id": "bola", "properties": {"x": 1}, "parentId": None,
              "description": "bola", "currency": "USD", "lines": [], "users": [], "resources": []}
# Public by their standard, whoever asks: the AuthZEN PDP metadata (links only, no data of the instance).
PUBLIC = {("MetadataApi", "get")}
# Tables a refused request may touch without that being a side effect of the request's target.
VOLATILE = {"django_session"}


@dataclass(frozen=True)
class Route:
    route: str
    view: type
    params: tuple[str, ...]


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def routes_with_object_parameters() -> list[Route]:
    found = []
    for route, pattern in _walk(get_resolver().url_patterns):
        view = getattr(pattern.callback, "view_class", None)
        if route.startswith("admin/") or view is None or not pattern.pattern.converters:
            continue
        found.append(Route(route=route, view=view, params=tuple(pattern.pattern.converters)))
    return found


ROUTES = routes_with_object_parameters()


def test_the_matrix_finds_the_object_endpoints():
    names = {r.view.__name__ for r in ROUTES}
    assert {"OrderDetailApi", "OrderCancelApi", "ProductDetailApi", "ProductRestockApi", "WalletTopUpApi",
            "WalletAdjustApi", "WalletEntriesApi", "InstanceMemberDetailApi", "ServiceClientDetailApi",
            "GroupDetailApi", "ResourceDetailApi"} <= names
    assert len(ROUTES) >= 25


@pytest.fixture
def world(db, settings) -> World:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return build_world()


@dataclass
class Target:
    """The parameter values naming objects of the victim instance."""

    values: dict[str, str]


def _objects_of(world: World, *, victim_user_id: int) -> Target:
    a = world.a
    admin = a.members["instance_admin"]
    actor = InstanceActor(instance=a.instance, user_id=admin.user_id, role="instance_admin")
    invitation = member_invite(actor=actor, email="invited@example.com", role="clerk")
    client, key, _ = service_client_create(instance=a.instance, name="pdp-client", role="clerk")
    group = group_create(instance=a.instance, name="staff")
    resource = resource_create(instance=a.instance, name="folder")
    rtype = resource_type_create(instance=a.instance, name="document", actions=["read"])
    policy = policy_create(instance=a.instance, subject=str(victim_user_id), rtype=rtype, action="read")
    return Target(values={
        "slug": a.instance.slug, "order_id": str(a.order_id), "product_id": str(a.product_id),
        "wallet_id": str(a.wallet_id), "user_id": str(victim_user_id), "invitation_id": str(invitation.pk),
        "client_id": str(client.pk), "prefix": key.prefix, "group_id": str(group.pk),
        "resource_id": str(resource.pk), "resource_type": "document", "name": "document",
        "subject_id": str(victim_user_id), "policy_id": str(policy.pk),
    })


def _url(route: Route, values: dict[str, str]) -> str:
    missing = [p for p in route.params if p not in values]
    assert not missing, f"{route.route}: give the BOLA matrix a value for {missing} (an object of instance A)"
    url = "/" + route.route
    for name in route.params:
        for converter in ("int", "str", "slug", "uuid", "path", ""):
            url = url.replace(f"<{converter}:{name}>" if converter else f"<{name}>", values[name])
    return url


def snapshot() -> dict[str, list]:
    rows = {}
    for model in apps.get_models():
        table = model._meta.db_table
        if table in VOLATILE or not model._meta.managed:
            continue
        rows[table] = sorted(json.dumps(r, sort_keys=True, default=str) for r in model.objects.values())
    return rows


# Query parameters a read would accept, so that its refusal cannot hide behind a 400.
READ_QUERY = {"action": "get", "resource_type": "orders"}


def _call(client, method: str, url: str):
    if method == "get":
        return client.get(url, READ_QUERY)
    if method == "delete":
        return client.delete(url)
    return getattr(client, method)(url, WRITE_BODY, format="json")


def _assert_denied(response, *, secrets: list[str], label: str) -> None:
    assert response.status_code in (401, 403, 404), f"{label}: {response.status_code} {response.content[:300]!r}"
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}, label
    body = response.content.decode()
    for secret in secrets:
        assert secret not in body, f"{label}: the answer names {secret!r}"


def _run_matrix(world: World, caller_token: str, target: Target, secrets: list[str],
                skip: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    client = bearer(caller_token)
    called = []
    for route in ROUTES:
        url = _url(route, target.values)
        for method in METHODS:
            if not hasattr(route.view, method) or (route.view.__name__, method) in skip | PUBLIC:
                continue
            before = snapshot()
            response = _call(client, method, url)
            label = f"{method.upper()} {url} ({route.view.__name__})"
            _assert_denied(response, secrets=secrets, label=label)
            after = snapshot()
            changed = [t for t in before if before[t] != after[t]]
            assert not changed, f"{label}: a refused call changed {changed}"
            called.append(label)
    return called


def test_a_user_of_another_instance_gets_nothing_and_changes_nothing(world):
    victim = world.a.members["customer"]
    target = _objects_of(world, victim_user_id=victim.user_id)
    intruder = world.b.members["instance_admin"]

    called = _run_matrix(world, token_for(intruder.user, intruder), target,
                         secrets=[victim.user.email, "invited@example.com", "pdp-client"])

    assert len(called) >= len(ROUTES)


# What any member may read in its own instance, whoever owns it: the catalogue,
# and the member list (tests/accounts/test_instances_api.py::test_a_customer_may_list_members).
MEMBER_READABLE = frozenset({("ProductDetailApi", "get"), ("InstanceMemberListCreateApi", "get")})


def test_a_member_without_a_policy_gets_nothing_of_others_and_changes_nothing(world):
    victim = world.a.members["customer"]
    target = _objects_of(world, victim_user_id=victim.user_id)
    nobody = ProfileFactory(instance=world.a.instance, role="customer")

    called = _run_matrix(world, token_for(nobody.user, nobody), target,
                         secrets=[victim.user.email, "invited@example.com", "pdp-client"], skip=MEMBER_READABLE)

    assert len(called) >= len(ROUTES)


def test_the_member_readable_exceptions_show_only_the_catalogue(world):
    nobody = ProfileFactory(instance=world.a.instance, role="customer")
    response = bearer(token_for(nobody.user, nobody)).get(f"/api/v1/products/{world.a.product_id}/")

    assert response.status_code == 200
    assert set(response.json()) >= {"id", "sku", "name", "price"}
    assert str(uuid.UUID(int=0)) not in response.content.decode()
