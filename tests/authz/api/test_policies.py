import pytest

from authz.models import Policy

pytestmark = pytest.mark.django_db
URL = "/api/v1/authz/policies"


def strings():
    return sorted(p.as_string() for p in Policy.objects.all())


def test_post_one_policy(admin, member, updates):
    response = admin.post(URL, {"policy": f"{member.pk}:get:orders:15"}, format="json")

    assert response.status_code == 201
    assert response.json() == {"policies": [f"{member.pk}:get:orders:15"]}
    assert strings() == [f"{member.pk}:get:orders:15"]
    assert len(updates) == 1


def test_post_many_is_atomic(admin, member, updates):
    response = admin.post(URL, {"policies": [f"{member.pk}:get:orders:1", f"{member.pk}:get:planes:2"]},
                          format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_resource_type"
    assert "Invalid resource_type in policies[1]" in response.json()["error"]["message"]
    assert strings() == []
    assert updates == []


@pytest.mark.parametrize(("policy", "code", "part"), [
    ("1:get:orders", "invalid_policy", "policy"),
    ("x:get:orders:1", "invalid_policy", "subject"),
    ("{member}:fly:orders:1", "unknown_action", "action"),
    ("{member}:get:orders:a/b", "invalid_resource_id", "resource_id"),
    ("999999:get:orders:1", "unknown_subject", "subject"),
])
def test_post_invalid_string_names_the_part(admin, member, policy, code, part):
    response = admin.post(URL, {"policy": policy.format(member=member.pk)}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"].startswith(f"Invalid {part} in policy")
    assert strings() == []


@pytest.mark.parametrize("body", [{}, {"policy": "1:get:orders:1", "policies": ["1:get:orders:1"]},
                                  {"policies": []}, {"policies": "nope"}, ["x"]])
def test_post_malformed_body_is_400(admin, body):
    response = admin.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_post_too_many_is_400(admin, member):
    response = admin.post(URL, {"policies": [f"{member.pk}:get:orders:{i}" for i in range(1001)]}, format="json")

    assert response.status_code == 400
    assert strings() == []


def test_only_instance_admin_writes(clerk, member, updates):
    response = clerk.post(URL, {"policy": f"{member.pk}:get:orders:15"}, format="json")

    assert response.status_code == 403
    assert strings() == []
    assert updates == []


def test_delete_policies(admin, member):
    admin.post(URL, {"policies": [f"{member.pk}:get:orders:1", f"{member.pk}:get:orders:2"]}, format="json")

    response = admin.delete(URL, {"policies": [f"{member.pk}:get:orders:1"]}, format="json")

    assert response.status_code == 204
    assert strings() == [f"{member.pk}:get:orders:2"]


def test_delete_with_a_bad_string_removes_none(admin, member):
    admin.post(URL, {"policies": [f"{member.pk}:get:orders:1"]}, format="json")

    response = admin.delete(URL, {"policies": [f"{member.pk}:get:orders:1", "nope"]}, format="json")

    assert response.status_code == 400
    assert strings() == [f"{member.pk}:get:orders:1"]


def test_list_is_filtered_and_paginated(admin, member, instance):
    admin.post(URL, {"policies": [f"{member.pk}:get:orders:{i}" for i in range(3)] + [f"{member.pk}:get:wallets:1"]},
               format="json")

    response = admin.get(URL, {"subject": member.pk, "resource_type": "orders", "limit": 2})

    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 3
    assert [r["policy"] for r in body["results"]] == [f"{member.pk}:get:orders:0", f"{member.pk}:get:orders:1"]
    assert body["results"][0] == {"policy": f"{member.pk}:get:orders:0", "subject": member.pk, "group": None,
                                  "action": "get", "resource_type": "orders", "resource_id": "0"}


def test_list_bad_filter_is_400(admin):
    assert admin.get(URL, {"subject": "abc"}).status_code == 400


def test_list_shows_only_the_callers_instance(admin, foreign_admin, member):
    admin.post(URL, {"policy": f"{member.pk}:get:orders:1"}, format="json")

    response = foreign_admin.get(URL)

    assert response.json()["count"] == 0


def test_foreign_admin_cannot_grant_on_our_member(foreign_admin, member):
    response = foreign_admin.post(URL, {"policy": f"{member.pk}:get:orders:1"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_subject"
    assert strings() == []


def test_unauthenticated_is_rejected(api_client):
    assert api_client.get(URL).status_code in (401, 403)


def test_list_uses_a_fixed_number_of_queries(admin, member, instance, django_assert_num_queries):
    from authz import services

    services.policies_upsert(instance=instance, policies=[f"{member.pk}:get:orders:{i}" for i in range(20)])
    admin.get(URL)  # warms the membership cache of the tenant base view

    with django_assert_num_queries(2):  # count + page
        response = admin.get(URL, {"limit": 20})
    assert len(response.json()["results"]) == 20
