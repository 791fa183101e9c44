from __future__ import annotations

import pytest

from authzen.models import Policy, ResourceObject, ResourceType
from tests.authzen.conftest import client_for
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def record(admin):
    assert admin.post("/api/v1/authz/types", {"name": "record", "actions": ["write", "read", "read"]},
                      format="json").status_code == 201
    return ResourceType.objects.get(name="record")


def test_an_admin_defines_a_type_with_its_actions(admin, record):
    assert admin.get("/api/v1/authz/types").json() == {"items": [{"name": "record", "actions": ["read", "write"]}]}


@pytest.mark.parametrize("name", ["orders", "products", "wallets", "resources"])
def test_built_in_types_cannot_be_redefined(admin, name):
    response = admin.post("/api/v1/authz/types", {"name": name, "actions": ["read"]}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "builtin_resource_type"
    assert not ResourceType.objects.exists()


def test_objects_are_registered_with_stored_properties_and_replaced(admin, record):
    url = "/api/v1/authz/types/record/objects"
    admin.post(url, {"id": "record-1", "properties": {"status": "active"}}, format="json")
    admin.post(url, {"id": "record-1", "properties": {"status": "archived"}}, format="json")

    assert admin.get(url).json() == {"items": [{"id": "record-1", "properties": {"status": "archived"}}]}


def test_a_condition_that_does_not_compile_is_a_400_naming_the_error_and_nothing_is_written(admin, record):
    response = admin.post("/api/v1/authz/conditional-policies",
                          {"subject": "*", "action": "read", "resource_type": "record",
                           "condition": 'resource.properties.status == "x" &&'}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_condition"
    assert "Syntax error" in response.json()["error"]["fields"]["condition"][0]
    assert not Policy.objects.exists()


def test_policies_name_a_member_or_everyone_and_an_action_of_the_type(admin, admin_profile, record):
    url = "/api/v1/authz/conditional-policies"
    made = admin.post(url, {"subject": str(admin_profile.user_id), "action": "write", "resource_type": "record",
                            "resource_id": "record-1", "condition": "context.ok == true"}, format="json")
    everyone = admin.post(url, {"subject": "*", "action": "read", "resource_type": "record"}, format="json")
    bad_action = admin.post(url, {"subject": "*", "action": "fly", "resource_type": "record"}, format="json")
    stranger = admin.post(url, {"subject": "999999", "action": "read", "resource_type": "record"}, format="json")

    assert made.status_code == 201 and everyone.status_code == 201
    assert (bad_action.status_code, bad_action.json()["error"]["code"]) == (400, "unknown_action")
    assert (stranger.status_code, stranger.json()["error"]["code"]) == (400, "unknown_subject")
    assert [p["subject"] for p in admin.get(url).json()["items"]] == [str(admin_profile.user_id), "*"]
    assert admin.delete(f"{url}/{made.json()['id']}").status_code == 204
    assert list(Policy.objects.values_list("action", flat=True)) == ["read"]


def test_another_instances_types_and_policies_are_not_found(admin, record, other_instance):
    foreign = client_for(ProfileFactory(instance=other_instance, role="instance_admin"))
    policy = admin.post("/api/v1/authz/conditional-policies",
                        {"subject": "*", "action": "read", "resource_type": "record"}, format="json").json()

    assert foreign.get("/api/v1/authz/types/record/objects").status_code == 404
    assert foreign.post("/api/v1/authz/types/record/objects", {"id": "x"}, format="json").status_code == 404
    assert foreign.delete(f"/api/v1/authz/conditional-policies/{policy['id']}").status_code == 404
    assert not ResourceObject.objects.exists() and Policy.objects.count() == 1


def test_a_clerk_may_not_define_types(instance):
    clerk = client_for(ProfileFactory(instance=instance, role="clerk"))

    assert clerk.post("/api/v1/authz/types", {"name": "record", "actions": ["read"]}, format="json").status_code == 403
    assert not ResourceType.objects.exists()


def test_members_external_ids_are_unique_per_instance(admin, instance):
    one, two = ProfileFactory(instance=instance), ProfileFactory(instance=instance)
    url = "/api/v1/instances/acme/members/{}/external-id"

    assert admin.put(url.format(one.user_id), {"external_id": "alice"}, format="json").json() == {
        "user_id": one.user_id, "external_id": "alice"}
    taken = admin.put(url.format(two.user_id), {"external_id": "alice"}, format="json")
    assert (taken.status_code, taken.json()["error"]["code"]) == (400, "external_id_taken")
    assert admin.put(url.format(one.user_id), {"external_id": None}, format="json").json()["external_id"] is None
    two.refresh_from_db()
    assert two.external_id is None


def test_an_admin_stores_a_members_properties_and_not_a_strangers(admin, instance, other_instance):
    member, stranger = ProfileFactory(instance=instance), ProfileFactory(instance=other_instance)

    stored = admin.put(f"/api/v1/authz/subjects/{member.user_id}/properties", {"properties": {"role": "admin"}},
                       format="json")
    refused = admin.put(f"/api/v1/authz/subjects/{stranger.user_id}/properties", {"properties": {"x": 1}},
                        format="json")

    assert stored.json() == {"user_id": member.user_id, "properties": {"role": "admin"}}
    assert refused.status_code == 404
    from authzen.models import SubjectProperties
    assert list(SubjectProperties.objects.values_list("user_id", flat=True)) == [member.user_id]
