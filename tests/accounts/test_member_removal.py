"""Issue 8 item 6: removing a member removes their policies and group memberships in that instance, so a
re-added user starts from their new role alone. HTTP-level against the real URLs."""

import pytest
from django.contrib.auth.models import Group as AuthGroup
from rest_framework.test import APIClient

from accounts.models import Profile
from authz import services as authz_services
from authz.cache import default_cache
from authz.models import GroupMembership, Policy, Resource, ResourceUserObjectPermission
from tests.factories import InstanceFactory, ProfileFactory, context_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_default_cache():
    default_cache().clear()
    yield
    default_cache().clear()


def client_for(profile: Profile) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=profile.user, token=context_for(profile))
    return client


@pytest.fixture
def acme():
    return InstanceFactory(slug="acme")


@pytest.fixture
def globex():
    return InstanceFactory(slug="globex")


@pytest.fixture
def admin(acme):
    return ProfileFactory(instance=acme, role="instance_admin")


@pytest.fixture
def leaver(acme, globex):
    """A clerk of acme holding policies and a group there, and a policy in globex too."""
    profile = ProfileFactory(instance=acme, role="clerk")
    ProfileFactory(user=profile.user, instance=globex, role="customer")
    return profile


def _grant_everything(admin_client: APIClient, acme, globex, user_id: int) -> int:
    folder = admin_client.post("/api/v1/authz/resource", {"name": "books"}, format="json").json()
    group = admin_client.post("/api/v1/authz/group", {"name": "ops"}, format="json").json()
    assert admin_client.post(f"/api/v1/authz/group/{group['id']}/user", [{"userId": str(user_id)}],
                             format="json").status_code == 204
    assert admin_client.post(f"/api/v1/authz/group/{group['id']}/authorize", [{"resourceId": folder["id"]}],
                             format="json").status_code == 204
    assert admin_client.post("/api/v1/authz/policies", {"policies": [
        f"{user_id}:get:orders:*", f"{user_id}:update:resources:{folder['id']}"]}, format="json").status_code == 201
    authz_services.policies_upsert(instance=globex, policies=[f"{user_id}:get:orders:*"])
    return int(group["id"])


def _what_acme_grants(admin_client: APIClient, user_id: int) -> dict[str, object]:
    check = admin_client.post("/api/v1/authz/check", {"subject": user_id, "action": "get", "resource_type": "orders",
                                                      "resource_id": "7"}, format="json").json()
    authorized = admin_client.get("/api/v1/authz/authorized", {"userId": str(user_id), "resourceName": "books"})
    policies = admin_client.get("/api/v1/authz/policies", {"subject": user_id}).json()
    return {"check": check["allowed"], "authorized": authorized.status_code,
            "policies": [row["policy"] for row in policies["results"]]}


def test_a_removed_member_re_added_as_customer_gets_none_of_the_old_permissions(acme, globex, admin, leaver, updates):
    admin_client = client_for(admin)
    user_id = leaver.user_id
    group_id = _grant_everything(admin_client, acme, globex, user_id)
    assert _what_acme_grants(admin_client, user_id) == {
        "check": True, "authorized": 200,
        "policies": [f"{user_id}:get:orders:*", f"{user_id}:update:resources:{Resource.objects.get().pk}"]}
    updates.clear()

    removed = admin_client.delete(f"/api/v1/instances/acme/members/{user_id}")
    invitation = admin_client.post("/api/v1/instances/acme/members", {"email": leaver.user.email,
                                                                      "role": "customer"}, format="json").json()
    rejoined = client_for(leaver).post(f"/api/v1/invitations/{invitation['id']}/accept")  # with a lower role
    after = _what_acme_grants(admin_client, user_id)
    group_users = admin_client.get(f"/api/v1/authz/group/{group_id}/user").json()

    assert removed.status_code == 204
    assert (rejoined.status_code, rejoined.json()) == (201, {"instance": "acme", "role": "customer"})
    assert after == {"check": False, "authorized": 403, "policies": []}
    assert group_users == {"count": 0, "items": []}
    assert not GroupMembership.objects.filter(user_id=user_id).exists()
    assert not AuthGroup.objects.filter(user__pk=user_id).exists()
    assert not ResourceUserObjectPermission.objects.filter(user_id=user_id).exists()
    # the other instance keeps its own grants
    assert list(Policy.objects.filter(user_id=user_id).values_list("instance__slug", flat=True)) == ["globex"]
    assert [(u["instance"], u["subject_ids"]) for u in updates] == [(acme.pk, [user_id])]


@pytest.fixture
def updates():
    from authz.signals import policy_updated

    seen: list[dict] = []

    def receiver(sender, instance, payload, **kwargs):
        seen.append({"instance": instance.pk, **payload})

    policy_updated.connect(receiver, weak=False)
    yield seen
    policy_updated.disconnect(receiver)


def test_an_admin_can_remove_policies_a_former_member_left_behind(acme, admin, updates):
    """Policies left by members removed before removal cleaned them up: DELETE accepts a non-member subject
    (granting to one is still refused)."""
    former = ProfileFactory(instance=acme, role="clerk")
    authz_services.policies_upsert(instance=acme, policies=[f"{former.user_id}:get:orders:*"])
    Profile.objects.filter(pk=former.pk).delete()  # as the old removal did: the policy stays
    updates.clear()

    removed = client_for(admin).delete("/api/v1/authz/policies", {"policy": f"{former.user_id}:get:orders:*"},
                                       format="json")
    granted = client_for(admin).post("/api/v1/authz/policies", {"policy": f"{former.user_id}:get:orders:1"},
                                     format="json")

    assert removed.status_code == 204
    assert (granted.status_code, granted.json()["error"]["code"]) == (400, "unknown_subject")
    assert not Policy.objects.exists()
    assert [(u["instance"], u["subject_ids"]) for u in updates] == [(acme.pk, [former.user_id])]
