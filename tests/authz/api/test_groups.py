import pytest

from authz import services
from authz.models import Group, GroupMembership, Policy, Resource
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
B = "/api/v1/authz"


def test_create_and_get_group(admin):
    created = admin.post(f"{B}/group", {"name": "ops", "description": "on call"}, format="json")

    assert created.status_code == 200
    gid = created.json()["id"]
    assert created.json() == {"id": gid, "name": "ops", "description": "on call"}
    assert admin.get(f"{B}/group/{gid}").json() == {"id": gid, "name": "ops", "description": "on call"}


def test_duplicate_group_name_is_400(admin):
    admin.post(f"{B}/group", {"name": "ops"}, format="json")

    response = admin.post(f"{B}/group", {"name": "ops"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "duplicate_name"
    assert Group.objects.count() == 1


def test_list_groups_with_count(admin, clerk, instance, other_instance):
    services.group_create(instance=instance, name="a")
    services.group_create(instance=instance, name="b")
    services.group_create(instance=other_instance, name="c")

    response = clerk.get(f"{B}/group")

    assert response.json()["count"] == 2
    assert [g["name"] for g in response.json()["items"]] == ["a", "b"]


def test_customer_cannot_create_groups(customer):
    assert customer.post(f"{B}/group", {"name": "ops"}, format="json").status_code == 403
    assert Group.objects.count() == 0


def test_add_and_list_group_users(admin, instance, member):
    group = services.group_create(instance=instance, name="ops")

    added = admin.post(f"{B}/group/{group.pk}/user", [{"userId": str(member.pk)}], format="json")

    assert added.status_code == 204
    assert admin.get(f"{B}/group/{group.pk}/user").json() == {"count": 1, "items": [{"userId": str(member.pk)}]}


def test_add_foreign_user_is_400(admin, instance, other_instance):
    group = services.group_create(instance=instance, name="ops")
    outsider = ProfileFactory(instance=other_instance).user

    response = admin.post(f"{B}/group/{group.pk}/user", [{"userId": str(outsider.pk)}], format="json")

    assert response.status_code == 400
    assert GroupMembership.objects.count() == 0


@pytest.mark.parametrize("payload", [{"userId": "1"}, [{"userId": "x"}], [{}], "x"])
def test_add_users_bad_body_is_400(admin, instance, payload):
    group = services.group_create(instance=instance, name="ops")

    assert admin.post(f"{B}/group/{group.pk}/user", payload, format="json").status_code == 400


def test_resources_create_get_list(admin, clerk):
    created = admin.post(f"{B}/resource", {"name": "docs"}, format="json")
    rid = created.json()["id"]
    child = admin.post(f"{B}/resource", {"name": "docs/a", "parentId": rid}, format="json")

    assert created.status_code == 200
    assert created.json() == {"id": rid, "name": "docs", "parentId": None}
    assert child.json()["parentId"] == rid
    assert clerk.get(f"{B}/resource/{rid}").json() == {"id": rid, "name": "docs", "parentId": None}
    assert clerk.get(f"{B}/resource").json()["count"] == 2


def test_authorize_group_and_list_its_resources(admin, instance, member):
    group = services.group_create(instance=instance, name="ops")
    r1 = services.resource_create(instance=instance, name="r1")
    services.resource_create(instance=instance, name="r2")

    response = admin.post(f"{B}/group/{group.pk}/authorize", [{"resourceId": str(r1.pk)}], format="json")

    assert response.status_code == 204
    assert admin.get(f"{B}/group/{group.pk}/resource").json() == {
        "count": 1, "items": [{"id": str(r1.pk), "name": "r1", "parentId": None}]}


def test_authorized(admin, customer, instance, member):
    group = services.group_create(instance=instance, name="ops")
    services.group_add_users(instance=instance, group=group, user_ids=[member.pk])
    folder = services.resource_create(instance=instance, name="folder")
    services.resource_create(instance=instance, name="leaf", parent_id=folder.pk)
    services.resource_create(instance=instance, name="other")
    services.group_authorize(instance=instance, group=group, resource_ids=[folder.pk])

    yes = customer.get(f"{B}/authorized", {"userId": str(member.pk), "resourceName": "leaf"})
    no = customer.get(f"{B}/authorized", {"userId": str(member.pk), "resourceName": "other"})

    assert (yes.status_code, yes.json()) == (200, {"authorized": True})
    assert (no.status_code, no.json()) == (403, {"authorized": False})


@pytest.mark.parametrize("params", [{}, {"userId": "x", "resourceName": "a"}, {"userId": "1"}])
def test_authorized_bad_query_is_400(customer, params):
    assert customer.get(f"{B}/authorized", params).status_code == 400


def test_moving_a_folder_changes_what_is_authorized(admin, customer, instance, member):
    a = services.resource_create(instance=instance, name="a")
    b = services.resource_create(instance=instance, name="b")
    leaf = services.resource_create(instance=instance, name="leaf", parent_id=a.pk)
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:resources:{a.pk}"])

    moved = admin.post(f"{B}/resource/{leaf.pk}/move", {"parentId": str(b.pk)}, format="json")

    assert moved.json()["parentId"] == str(b.pk)
    assert customer.get(f"{B}/authorized", {"userId": str(member.pk), "resourceName": "leaf"}).status_code == 403


def test_delete_resource(admin, instance, member):
    r = services.resource_create(instance=instance, name="r")
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:resources:{r.pk}"])

    assert admin.delete(f"{B}/resource/{r.pk}").status_code == 204
    assert Resource.objects.count() == 0
    assert Policy.objects.count() == 0


# --- cross-instance: every endpoint taking an id answers 404 for foreign, missing and malformed ids ----
@pytest.fixture
def foreign(other_instance):
    group = services.group_create(instance=other_instance, name="theirs")
    resource = services.resource_create(instance=other_instance, name="theirs")
    return group, resource


@pytest.mark.parametrize("method,template,payload", [
    ("get", "group/{g}", None),
    ("get", "group/{g}/user", None),
    ("post", "group/{g}/user", []),
    ("post", "group/{g}/authorize", []),
    ("get", "group/{g}/resource", None),
    ("get", "resource/{r}", None),
    ("delete", "resource/{r}", None),
    ("post", "resource/{r}/move", {"parentId": None}),
])
def test_foreign_and_missing_ids_are_404(admin, foreign, method, template, payload):
    group, resource = foreign
    for g, r in ((group.pk, resource.pk), (999999, 999999), ("abc", "abc"), ("9" * 30, "9" * 30)):
        url = f"{B}/" + template.format(g=g, r=r)
        response = getattr(admin, method)(url, payload, format="json") if payload is not None else \
            getattr(admin, method)(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] in ("group_not_found", "resource_not_found")
    assert Resource.objects.filter(pk=resource.pk).exists()
    assert GroupMembership.objects.count() == 0


def test_authorized_for_a_user_of_another_instance_is_403(customer, instance, other_instance):
    outsider = ProfileFactory(instance=other_instance, role="instance_admin").user
    services.resource_create(instance=instance, name="ours")
    services.resource_create(instance=other_instance, name="ours")

    response = customer.get(f"{B}/authorized", {"userId": str(outsider.pk), "resourceName": "ours"})

    assert (response.status_code, response.json()) == (403, {"authorized": False})


def test_authorized_bad_query_names_the_fields(customer):
    response = customer.get(f"{B}/authorized", {"userId": "0", "resourceName": "x" * 256})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert sorted(response.json()["error"]["fields"]) == ["resourceName", "userId"]
