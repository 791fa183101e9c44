import pytest
from django.contrib.admin.sites import site
from django.test import Client, RequestFactory

from accounts.models import User
from authz.models import Group, GroupMembership, Policy, Resource
from authz.selectors import check
from authz.services import group_add_users, group_create, policies_upsert
from tests.factories import ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", [Policy, Group, GroupMembership, Resource])
def test_admin_is_read_only(model):
    model_admin = site._registry[model]
    request = RequestFactory().get("/")

    assert (model_admin.has_add_permission(request), model_admin.has_change_permission(request),
            model_admin.has_delete_permission(request)) == (False, False, False)


# --- the console's authz pages: bulk grant/revoke, search, explain ---------------------------------

BULK = "/admin/authz/policy/bulk/"
EXPLAIN = "/admin/authz/policy/explain/"


@pytest.fixture
def root_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root@example.com", "x", name="Root"))
    return client


def instance_admin_client(instance) -> Client:
    user = UserFactory(is_staff=True)
    ProfileFactory(user=user, instance=instance, role="instance_admin")
    client = Client()
    client.force_login(user)
    return client


def policies_of(instance) -> list[str]:
    return sorted(p.as_string() for p in Policy.objects.filter(instance=instance))


def test_bulk_grant_then_revoke_through_the_services(root_client, instance, member):
    lines = f"{member.pk}:get:orders:7\n\n{member.pk}:cancel:orders:7\n"
    response = root_client.post(BULK, {"instance": instance.slug, "operation": "grant", "policies": lines})

    assert response.status_code == 302
    assert policies_of(instance) == [f"{member.pk}:cancel:orders:7", f"{member.pk}:get:orders:7"]
    assert check(instance_id=instance.pk, user_id=member.pk, action="cancel", resource_type="orders", resource_id="7")

    response = root_client.post(BULK, {"instance": instance.slug, "operation": "revoke",
                                       "policies": f"{member.pk}:cancel:orders:7"})
    assert response.status_code == 302
    assert policies_of(instance) == [f"{member.pk}:get:orders:7"]


def test_bulk_grant_with_one_bad_line_writes_nothing(root_client, instance, member):
    lines = f"{member.pk}:get:orders:7\n{member.pk}:fly:orders:7"
    response = root_client.post(BULK, {"instance": instance.slug, "operation": "grant", "policies": lines})

    assert response.status_code == 200
    assert "orders has no action &#x27;fly&#x27;" in response.content.decode()
    assert policies_of(instance) == []


def test_an_instance_admin_cannot_grant_in_another_instance(instance, other_instance):
    stranger = ProfileFactory(instance=other_instance, role="customer").user
    client = instance_admin_client(instance)

    response = client.post(BULK, {"instance": other_instance.slug, "operation": "grant",
                                  "policies": f"{stranger.pk}:get:orders:1"})

    assert response.status_code == 200
    assert f"No instance &#x27;{other_instance.slug}&#x27; that you administer." in response.content.decode()
    assert policies_of(other_instance) == []


def test_revoke_selected_policies_action(root_client, instance, member):
    policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1", f"{member.pk}:get:orders:2"])
    first = Policy.objects.get(instance=instance, resource_id="1")

    response = root_client.post("/admin/authz/policy/", {"action": "revoke_selected",
                                                         "_selected_action": [first.pk]})

    assert response.status_code == 302
    assert policies_of(instance) == [f"{member.pk}:get:orders:2"]


def test_policies_are_searched_by_subject_email_or_resource(root_client, instance, member):
    other = ProfileFactory(instance=instance, role="customer").user
    policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:11", f"{other.pk}:get:orders:22"])

    by_subject = root_client.get("/admin/authz/policy/", {"q": member.email})
    by_resource = root_client.get("/admin/authz/policy/", {"q": "22"})

    assert [p.resource_id for p in by_subject.context["cl"].result_list] == ["11"]
    assert [p.user_id for p in by_resource.context["cl"].result_list] == [other.pk]
    assert 'href="/admin/authz/policy/explain/"' in by_subject.content.decode()


def explained(client, instance, user, *, action="get", resource_type="orders", resource_id="5"):
    response = client.get(EXPLAIN, {"instance": instance.slug, "subject": user.email, "action": action,
                                    "resource_type": resource_type, "resource_id": resource_id})
    assert response.status_code == 200
    result = response.context["result"]
    assert result["check"] == result["explanation"].allowed  # explain never disagrees with the check
    return result


def test_explain_names_the_role_the_policy_the_group_or_nothing(root_client, instance, member):
    clerk = ProfileFactory(instance=instance, role="clerk").user
    assert explained(root_client, instance, clerk)["sentence"] == "Allowed: the role clerk allows get on orders 5."

    assert explained(root_client, instance, member)["sentence"] == (
        "Denied: neither the user's role nor any policy (direct, wildcard, group or folder) allows get on orders 5.")

    policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:5"])
    assert explained(root_client, instance, member)["sentence"] == f"Allowed by the policy {member.pk}:get:orders:5."

    buyers = group_create(instance=instance, name="buyers")
    group_add_users(instance=instance, group=buyers, user_ids=[member.pk])
    policies_upsert(instance=instance, policies=[f"group/{buyers.pk}:cancel:orders:*"])
    result = explained(root_client, instance, member, action="cancel")
    assert (result["explanation"].reason, result["sentence"]) == (
        "group", f"Allowed through the group buyers: policy group/{buyers.pk}:cancel:orders:*.")

    outsider = UserFactory()
    assert explained(root_client, instance, outsider)["sentence"] == (
        "Denied: the user is not a member of the instance, so nothing allows get on orders 5.")


def test_explain_in_another_instance_is_refused_to_an_instance_admin(instance, other_instance):
    stranger = ProfileFactory(instance=other_instance, role="clerk").user
    response = instance_admin_client(instance).get(EXPLAIN, {
        "instance": other_instance.slug, "subject": stranger.email, "action": "get", "resource_type": "orders",
        "resource_id": "5"})

    assert response.status_code == 200
    assert response.context["result"] is None
    assert "that you administer" in response.content.decode()


def test_the_authz_pages_are_refused_to_staff_without_an_instance(instance):
    client = Client()
    client.force_login(UserFactory(is_staff=True))
    assert client.get(EXPLAIN).status_code == 403
    assert client.post(BULK, {"instance": instance.slug, "operation": "grant", "policies": "1:get:orders:1"}
                       ).status_code == 403


def test_explain_tells_an_instance_admin_nothing_of_users_outside_their_instance(instance, other_instance):
    stranger = ProfileFactory(instance=other_instance, role="clerk").user
    response = instance_admin_client(instance).get(EXPLAIN, {
        "instance": instance.slug, "subject": stranger.email, "action": "get", "resource_type": "orders",
        "resource_id": "5"})

    assert response.status_code == 200
    assert response.context["result"] is None
    assert response.context["form"].errors["subject"] == [f"No user {stranger.email!r}."]
