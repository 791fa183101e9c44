import pytest

from authz import services
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db


def body(subject, action="get", rtype="orders", rid="1"):
    return {"subject": subject, "action": action, "resource_type": rtype, "resource_id": rid}


def test_check(customer, instance, member):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])

    assert customer.post("/api/v1/authz/check", body(member.pk), format="json").json() == {"allowed": True}
    assert customer.post("/api/v1/authz/check", body(member.pk, rid="2"), format="json").json() == {"allowed": False}


@pytest.mark.parametrize(("payload", "code"), [
    ({"subject": 1, "action": "fly", "resource_type": "orders", "resource_id": "1"}, "unknown_action"),
    ({"subject": 1, "action": "get", "resource_type": "planes", "resource_id": "1"}, "unknown_resource_type"),
    ({"subject": "x", "action": "get", "resource_type": "orders", "resource_id": "1"}, "invalid"),
    ({"subject": 10**30, "action": "get", "resource_type": "orders", "resource_id": "1"}, "invalid"),
    ({"action": "get", "resource_type": "orders", "resource_id": "1"}, "invalid"),
])
def test_check_bad_input_is_400(customer, payload, code):
    response = customer.post("/api/v1/authz/check", payload, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_check_in_another_instance_is_false(customer, other_instance, member):
    outsider = ProfileFactory(instance=other_instance, role="instance_admin").user

    assert customer.post("/api/v1/authz/check", body(outsider.pk), format="json").json() == {"allowed": False}


def test_batch_answers_in_order(customer, instance, member):
    clerk_user = ProfileFactory(instance=instance, role="clerk").user
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1", f"{member.pk}:cancel:orders:*"])

    response = customer.post("/api/v1/authz/check/batch", {"checks": [
        body(member.pk), body(member.pk, rid="2"), body(member.pk, action="cancel", rid="9"),
        body(clerk_user.pk, action="update", rtype="products"), body(999999)]}, format="json")

    assert response.status_code == 200
    assert response.json() == {"results": [{"allowed": True}, {"allowed": False}, {"allowed": True},
                                           {"allowed": True}, {"allowed": False}]}


def test_batch_over_the_limit_is_400(customer, member):
    response = customer.post("/api/v1/authz/check/batch", {"checks": [body(member.pk)] * 1001}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many_checks"


def test_batch_with_a_bad_item_is_400(customer, member):
    response = customer.post("/api/v1/authz/check/batch", {"checks": [body(member.pk), {"subject": 1}]},
                             format="json")

    assert response.status_code == 400
    assert "checks[1]" in response.json()["error"]["fields"]


def test_batch_uses_a_bounded_number_of_queries(customer, instance, member, django_assert_max_num_queries):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])

    with django_assert_max_num_queries(4):
        response = customer.post("/api/v1/authz/check/batch",
                                 {"checks": [body(member.pk, rid=str(i)) for i in range(500)]}, format="json")
    assert response.json()["results"][1] == {"allowed": True}


def test_explain(admin, instance, member):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:*"])

    response = admin.post("/api/v1/authz/explain", body(member.pk, rid="5"), format="json")

    assert response.json() == {"allowed": True, "reason": "wildcard", "policy": f"{member.pk}:get:orders:*",
                               "role": None, "group_id": None, "folder_id": None}


def test_explain_needs_instance_admin(customer, member):
    assert customer.post("/api/v1/authz/explain", body(member.pk), format="json").status_code == 403


def test_subject_objects(admin, instance, member):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:{i}" for i in (3, 1, 2)])

    response = admin.get(f"/api/v1/authz/subjects/{member.pk}/objects", {"action": "get", "resource_type": "orders",
                                                                        "limit": 2})

    assert response.json()["count"] == 3
    assert response.json()["results"] == [{"resource_id": "1"}, {"resource_id": "2"}]


def test_subject_objects_of_a_foreign_subject_is_404(admin, other_instance):
    outsider = ProfileFactory(instance=other_instance).user

    for subject in (outsider.pk, 999999, "abc", "9" * 30):
        response = admin.get(f"/api/v1/authz/subjects/{subject}/objects",
                             {"action": "get", "resource_type": "orders"})
        assert response.status_code == 404


def test_subject_objects_needs_action_and_type(admin, member):
    assert admin.get(f"/api/v1/authz/subjects/{member.pk}/objects").status_code == 400


def test_object_subjects(admin, admin_profile, instance, member, other_instance):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:7"])
    outsider = ProfileFactory(instance=other_instance).user
    services.policies_upsert(instance=other_instance, policies=[f"{outsider.pk}:get:orders:7"])

    response = admin.get("/api/v1/authz/objects/orders/7/subjects", {"action": "get"})

    # the member by its policy, the instance admin by its role; nobody of the other instance
    assert response.json()["results"] == [{"subject": pk} for pk in sorted([member.pk, admin_profile.user_id])]


def test_object_subjects_unknown_type_is_404(admin):
    assert admin.get("/api/v1/authz/objects/planes/7/subjects", {"action": "get"}).status_code == 404
