"""Property: for the same inputs, authz's check API, its batch check, seed 004's ``/authorized`` and the
AuthZEN evaluation endpoint give the same decisions (built-in types; roles, direct, ``*``, group and
folder policies; members and strangers)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authz import services as authz_services
from authz.registry import RESOURCE_TYPES
from tests.factories import InstanceFactory, ProfileFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(instance, admin_profile):
    roles = ["clerk", "accountant", "customer", "customer"]
    members = [admin_profile] + [ProfileFactory(instance=instance, role=role) for role in roles]
    stranger = ProfileFactory(instance=InstanceFactory(slug="globex"), role="customer")
    clerk, accountant, cust1, cust2 = members[1:]
    docs = authz_services.resource_create(instance=instance, name="docs")
    child = authz_services.resource_create(instance=instance, name="docs-a", parent_id=docs.pk)
    leaf = authz_services.resource_create(instance=instance, name="docs-a-b", parent_id=child.pk)
    other = authz_services.resource_create(instance=instance, name="other")
    group = authz_services.group_create(instance=instance, name="readers")
    authz_services.group_add_users(instance=instance, group=group, user_ids=[cust2.user_id])
    authz_services.policies_upsert(instance=instance, policies=[
        f"{cust1.user_id}:get:orders:5", f"{cust1.user_id}:cancel:orders:*", f"{cust1.user_id}:update:products:7",
        f"group/{group.pk}:get:resources:{docs.pk}", f"group/{group.pk}:delete:wallets:3",
        f"{cust1.user_id}:get:resources:{other.pk}", f"{clerk.user_id}:delete:orders:9",
        f"{accountant.user_id}:update:resources:{child.pk}"])
    resources = {str(r.pk): r.name for r in (docs, child, leaf, other)}
    subjects = [p.user_id for p in members] + [stranger.user_id]
    return subjects, resources


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_check_apis_authorized_and_authzen_agree(world, admin, pep, data):
    subjects, resources = world
    user_id = data.draw(st.sampled_from(subjects), label="subject")
    rtype = data.draw(st.sampled_from(sorted(RESOURCE_TYPES)), label="type")
    action = data.draw(st.sampled_from(sorted(RESOURCE_TYPES[rtype].actions)), label="action")
    ids = sorted(resources) if rtype == "resources" else ["3", "5", "7", "9", "15"]
    resource_id = data.draw(st.sampled_from(ids), label="id")

    check = admin.post("/api/v1/authz/check", {"subject": user_id, "action": action, "resource_type": rtype,
                                               "resource_id": resource_id}, format="json").json()["allowed"]
    batch = admin.post("/api/v1/authz/check/batch", {"checks": [
        {"subject": user_id, "action": action, "resource_type": rtype, "resource_id": resource_id}]},
        format="json").json()["results"][0]["allowed"]
    authzen = pep.post("/authzen/acme/access/v1/evaluation", {
        "subject": {"type": "user", "id": str(user_id)}, "action": {"name": action},
        "resource": {"type": rtype, "id": resource_id}}, format="json").json()["decision"]

    assert check == batch == authzen
    if rtype == "resources" and action == "get":
        authorized = admin.get("/api/v1/authz/authorized",
                               {"userId": user_id, "resourceName": resources[resource_id]}).json()["authorized"]
        assert authorized == authzen
