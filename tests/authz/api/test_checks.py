from unittest import mock

import pytest

from accounts.api import base
from authz import services
from tests.authz.api.conftest import client_for
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db


def body(subject, action="get", rtype="orders", rid="1"):
    return {"subject": subject, "action": action, "resource_type": rtype, "resource_id": rid}


def test_check(admin, instance, member):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])

    assert admin.post("/api/v1/authz/check", body(member.pk), format="json").json() == {"allowed": True}
    assert admin.post("/api/v1/authz/check", body(member.pk, rid="2"), format="json").json() == {"allowed": False}


def test_a_customer_may_check_itself(instance):
    profile = ProfileFactory(instance=instance, role="customer")
    services.policies_upsert(instance=instance, policies=[f"{profile.user_id}:get:orders:1"])

    response = client_for(profile).post("/api/v1/authz/check", body(profile.user_id), format="json")

    assert response.status_code == 200
    assert response.json() == {"allowed": True}


@pytest.mark.parametrize("role", ["customer", "clerk", "accountant"])
def test_below_instance_admin_a_check_about_another_subject_is_403(instance, member, role):
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1"])
    caller = client_for(ProfileFactory(instance=instance, role=role))

    single = caller.post("/api/v1/authz/check", body(member.pk), format="json")
    batch = caller.post("/api/v1/authz/check/batch", {"checks": [body(member.pk)]}, format="json")

    for response in (single, batch):
        assert response.status_code == 403
        assert response.json() == {"error": {
            "code": "subject_forbidden", "message": "Only an instance admin may check another subject's permissions.",
            "fields": {}}}


def test_a_batch_mixing_the_caller_and_another_subject_is_403(instance, member):
    profile = ProfileFactory(instance=instance, role="customer")

    response = client_for(profile).post("/api/v1/authz/check/batch", {"checks": [
        body(profile.user_id), body(member.pk)]}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "subject_forbidden"


@pytest.mark.parametrize(("payload", "code"), [
    ({"subject": 1, "action": "fly", "resource_type": "orders", "resource_id": "1"}, "unknown_action"),
    ({"subject": 1, "action": "get", "resource_type": "planes", "resource_id": "1"}, "unknown_resource_type"),
    ({"subject": "x", "action": "get", "resource_type": "orders", "resource_id": "1"}, "invalid"),
    ({"subject": 10**30, "action": "get", "resource_type": "orders", "resource_id": "1"}, "invalid"),
    ({"action": "get", "resource_type": "orders", "resource_id": "1"}, "invalid"),
])
def test_check_bad_input_is_400(admin, payload, code):
    response = admin.post("/api/v1/authz/check", payload, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_check_of_a_unicode_digit_resource_id_is_false_not_500(admin, member):
    response = admin.post("/api/v1/authz/check", body(member.pk, rtype="resources", rid="\u00b2"), format="json")

    assert response.status_code == 200
    assert response.json() == {"allowed": False}


def test_check_in_another_instance_is_false(admin, other_instance, member):
    outsider = ProfileFactory(instance=other_instance, role="instance_admin").user

    assert admin.post("/api/v1/authz/check", body(outsider.pk), format="json").json() == {"allowed": False}


def test_batch_answers_in_order(admin, instance, member):
    clerk_user = ProfileFactory(instance=instance, role="clerk").user
    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:1", f"{member.pk}:cancel:orders:*"])

    response = admin.post("/api/v1/authz/check/batch", {"checks": [
        body(member.pk), body(member.pk, rid="2"), body(member.pk, action="cancel", rid="9"),
        body(clerk_user.pk, action="update", rtype="products"), body(999999), body(member.pk)]}, format="json")

    assert response.status_code == 200
    assert response.json() == {"results": [{"allowed": True}, {"allowed": False}, {"allowed": True},
                                           {"allowed": True}, {"allowed": False}, {"allowed": True}]}


def test_batch_over_the_limit_is_a_400_from_the_serializer(admin, member):
    response = admin.post("/api/v1/authz/check/batch", {"checks": [body(member.pk)] * 1001}, format="json")

    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid", "message": "Invalid input.", "fields": {
        "checks": ["Ensure this field has no more than 1000 elements."]}}}


def test_a_batch_body_too_large_is_refused_before_parsing(admin, member):
    filler = body(member.pk, rid="x" * 64)
    payload = {"checks": [filler] * 1000, "padding": "y" * 200_000}

    with mock.patch("rest_framework.parsers.JSONParser.parse") as parse:
        response = admin.post("/api/v1/authz/check/batch", payload, format="json")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    parse.assert_not_called()


def test_batch_with_a_bad_item_is_400(admin, member):
    response = admin.post("/api/v1/authz/check/batch", {"checks": [body(member.pk), {"subject": 1}]},
                          format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"checks": {"1": {
        "action": ["This field is required."], "resource_type": ["This field is required."],
        "resource_id": ["This field is required."]}}}


def test_batch_with_an_unknown_action_names_the_item(admin, member):
    response = admin.post("/api/v1/authz/check/batch", {"checks": [body(member.pk), body(member.pk, action="fly")]},
                          format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_action"
    assert list(response.json()["error"]["fields"]) == ["checks"]
    assert list(response.json()["error"]["fields"]["checks"]) == ["1"]


def test_batch_is_one_query_for_all_subjects(admin, instance, django_assert_num_queries):
    subjects = [ProfileFactory(instance=instance, role="customer").user_id for _ in range(50)]
    services.policies_upsert(instance=instance, policies=[f"{subjects[7]}:get:orders:3"])
    checks = [body(subject, rid=str(i)) for subject in subjects for i in range(4)]
    base._membership_cache.clear()

    with django_assert_num_queries(2):  # the caller's membership, then every check
        response = admin.post("/api/v1/authz/check/batch", {"checks": checks}, format="json")

    allowed = [i for i, r in enumerate(response.json()["results"]) if r["allowed"]]
    assert allowed == [7 * 4 + 3]


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
