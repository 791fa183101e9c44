import pytest
from rest_framework.test import APIClient

from authz.roles import LATTICE
from tests.factories import InstanceFactory, ProfileFactory, UserFactory, context_for

pytestmark = pytest.mark.django_db


def test_me_lists_the_global_profile_first_then_instances_by_slug(api_client: APIClient, django_assert_num_queries):
    user = UserFactory(email="me@example.com", name="Me Myself")
    zeta = ProfileFactory(user=user, instance=InstanceFactory(slug="zeta"), role="clerk")
    ProfileFactory(user=user, instance=InstanceFactory(slug="alpha"), role="customer")
    ProfileFactory(user=user, instance=None, role="super_admin")
    ProfileFactory(instance=zeta.instance, role="accountant")  # someone else's profile
    api_client.force_authenticate(user=user, token=context_for(zeta))

    with django_assert_num_queries(2):  # profiles, pending invitations
        response = api_client.get("/api/v1/me")

    assert response.status_code == 200
    assert response.json() == {
        "id": user.pk,
        "email": "me@example.com",
        "name": "Me Myself",
        "profiles": [
            {"instance": None, "role": "super_admin"},
            {"instance": "alpha", "role": "customer"},
            {"instance": "zeta", "role": "clerk"},
        ],
        "invitations": [],
    }


def test_me_of_a_user_without_profiles_has_none(api_client: APIClient):
    user = UserFactory(email="lonely@example.com", name="")
    api_client.force_authenticate(user=user)

    response = api_client.get("/api/v1/me")

    assert response.status_code == 200
    assert response.json() == {"id": user.pk, "email": "lonely@example.com", "name": "", "profiles": [],
                               "invitations": []}


def test_me_needs_authentication(api_client: APIClient):
    response = api_client.get("/api/v1/me")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_me_is_read_only(api_client: APIClient):
    user = UserFactory()
    api_client.force_authenticate(user=user)

    response = api_client.post("/api/v1/me", {}, format="json")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_roles_returns_the_lattice(api_client: APIClient, django_assert_num_queries):
    profile = ProfileFactory(role="customer")
    api_client.force_authenticate(user=profile.user, token=context_for(profile))

    with django_assert_num_queries(0):
        response = api_client.get("/api/v1/roles")

    assert response.status_code == 200
    assert response.json() == LATTICE.as_json()
    assert [role["name"] for role in response.json()] == [
        "super_admin", "instance_admin", "clerk", "accountant", "customer", "anonymous"]
    assert response.json()[0] == {
        "name": "super_admin",
        "instance_bound": False,
        "implies": [],
        "switches_to": ["instance_admin"],
        "description": "Operates the platform; must switch explicitly into an instance to act in it.",
    }


def test_roles_needs_authentication(api_client: APIClient):
    response = api_client.get("/api/v1/roles")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
