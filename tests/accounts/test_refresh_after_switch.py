"""Refreshing tokens issued by a role switch: the switched role survives rotation while the profile still
allows it, including a platform operator acting inside an instance from the global profile. Losing the
profile is a plain 401 that changes nothing (it is not a reuse)."""

from __future__ import annotations

import jwt
import pytest
from rest_framework.test import APIClient

from accounts.models import Instance, Profile, RefreshToken
from tests.factories import DEFAULT_PASSWORD, InstanceFactory, ProfileFactory

pytestmark = pytest.mark.django_db


def claims_of(access: str) -> dict:
    return jwt.decode(access, options={"verify_signature": False})


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def login(email: str, **extra) -> dict:
    response = APIClient().post("/api/v1/auth/token", {"email": email, "password": DEFAULT_PASSWORD, **extra},
                                format="json")
    assert response.status_code == 200, response.content
    return response.json()


def switch(pair: dict, **body) -> dict:
    """Switch the session of ``pair`` (its access token authenticates, its refresh token is rotated)."""
    response = bearer(pair["access"]).post("/api/v1/auth/switch", {"refresh": pair["refresh"], **body},
                                           format="json")
    assert response.status_code == 200, response.content
    return response.json()


def refresh(token: str):
    return APIClient().post("/api/v1/auth/token/refresh", {"refresh": token}, format="json")


def token_states() -> list[tuple[bool, bool, str]]:
    return [(t.used_at is not None, t.revoked_at is not None, t.revoked_reason)
            for t in RefreshToken.objects.order_by("created_at")]


@pytest.fixture
def acme() -> Instance:
    return InstanceFactory(slug="acme")


@pytest.fixture
def operator() -> Profile:
    return ProfileFactory(instance=None, role="super_admin")


def test_an_operator_switched_into_an_instance_refreshes_and_keeps_acting_there(operator, acme):
    ProfileFactory(instance=acme, role="clerk")
    switched = switch(login(operator.user.email), instance="acme", role="instance_admin")

    response = refresh(switched["refresh"])

    assert response.status_code == 200
    claims = claims_of(response.json()["access"])
    assert (claims["instance"], claims["instance_id"], claims["role"], claims["profile_role"]) == (
        "acme", acme.pk, "instance_admin", "super_admin")
    members = bearer(response.json()["access"]).get("/api/v1/instances/acme/members")
    assert members.status_code == 200


def test_an_operator_who_lost_the_global_profile_cannot_refresh_and_nothing_changes(operator, acme):
    switched = switch(login(operator.user.email), instance="acme", role="instance_admin")
    before = token_states()
    operator.delete()

    response = refresh(switched["refresh"])

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"
    assert token_states() == before


def test_an_operator_switched_into_a_deactivated_instance_cannot_refresh(operator, acme):
    switched = switch(login(operator.user.email), instance="acme", role="instance_admin")
    Instance.objects.filter(pk=acme.pk).update(is_active=False)

    response = refresh(switched["refresh"])

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"


def test_an_instance_admin_switched_down_keeps_the_switched_role_on_refresh(acme):
    admin = ProfileFactory(instance=acme, role="instance_admin")
    switched = switch(login(admin.user.email), role="accountant")

    response = refresh(switched["refresh"])

    assert response.status_code == 200
    claims = claims_of(response.json()["access"])
    assert (claims["instance"], claims["role"], claims["profile_role"]) == ("acme", "accountant", "instance_admin")


def test_a_switched_role_the_new_profile_role_cannot_reach_falls_back_to_the_profile_role(acme):
    admin = ProfileFactory(instance=acme, role="instance_admin")
    switched = switch(login(admin.user.email), role="accountant")
    Profile.objects.filter(pk=admin.pk).update(role="clerk")  # a clerk cannot switch to accountant

    response = refresh(switched["refresh"])

    assert response.status_code == 200
    claims = claims_of(response.json()["access"])
    assert (claims["role"], claims["profile_role"]) == ("clerk", "clerk")


def test_losing_the_profile_is_a_plain_401_not_a_reuse_and_changes_nothing(acme):
    clerk = ProfileFactory(instance=acme, role="clerk")
    tokens = login(clerk.user.email)
    before = token_states()
    clerk.delete()

    response = refresh(tokens["refresh"])

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"
    assert token_states() == before == [(False, False, "")]


# --- an operator who is also a member somewhere ------------------------------------------------------

def test_an_operator_who_is_a_customer_in_an_instance_still_switches_in_as_instance_admin(operator, acme):
    ProfileFactory(user=operator.user, instance=acme, role="customer")

    switched = switch(login(operator.user.email), instance="acme", role="instance_admin")

    claims = claims_of(switched["access"])
    assert (claims["instance"], claims["role"], claims["profile_role"]) == ("acme", "instance_admin", "super_admin")
    refreshed = refresh(switched["refresh"])
    assert refreshed.status_code == 200
    claims = claims_of(refreshed.json()["access"])
    assert (claims["instance"], claims["role"], claims["profile_role"]) == ("acme", "instance_admin", "super_admin")


def test_an_operator_who_is_a_customer_in_an_instance_switches_to_customer_from_that_profile(operator, acme):
    ProfileFactory(user=operator.user, instance=acme, role="customer")

    switched = switch(login(operator.user.email), instance="acme", role="customer")

    claims = claims_of(switched["access"])
    assert (claims["instance"], claims["role"], claims["profile_role"]) == ("acme", "customer", "customer")


def test_a_member_who_is_not_an_operator_cannot_climb_and_gets_no_tokens(acme):
    customer = ProfileFactory(instance=acme, role="customer")
    pair = login(customer.user.email)
    before = token_states()

    response = bearer(pair["access"]).post("/api/v1/auth/switch", {"refresh": pair["refresh"], "instance": "acme",
                                                                   "role": "instance_admin"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "role_switch_denied"
    assert token_states() == before == [(False, False, "")]
