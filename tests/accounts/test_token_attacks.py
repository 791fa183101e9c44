"""Token attacks in one place, each over HTTP: forged, stale and replayed tokens all get a 401 (or the 404 of an
instance the caller no longer acts for) in the error shape, and none of them reads or writes anything."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from rest_framework.test import APIClient

from accounts import selectors
from accounts.keys import KEY_RING
from accounts.models import Instance, Profile, RefreshToken
from accounts.services.instances import member_change_role, member_remove
from accounts.services.tokens import access_token_issue
from tests.factories import DEFAULT_PASSWORD, ProfileFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-long-unusual-passphrase"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict, claims: dict) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def header_of(token: str) -> dict:
    return jwt.get_unverified_header(token)


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def login(email: str, password: str = DEFAULT_PASSWORD, **extra) -> dict:
    response = APIClient().post("/api/v1/auth/token", {"email": email, "password": password, **extra}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def forget_standing() -> None:
    """What one second does to the per-process caches of users and standings."""
    from accounts import authentication

    authentication._user_cache.clear()
    selectors._standing_cache.clear()


def assert_refused(response, status: int = 401, codes: set[str] | None = None) -> None:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    if codes is not None:
        assert error["code"] in codes
    assert "email" not in response.content.decode()


@pytest.fixture
def clerk() -> Profile:
    return ProfileFactory(role="clerk")


@pytest.fixture
def good(clerk) -> str:
    token = access_token_issue(user_id=clerk.user_id, instance=clerk.instance, role="clerk", profile_role="clerk")
    assert bearer(token).get("/api/v1/me").status_code == 200  # the control: the genuine token works
    return token


def resign_with_our_key(claims: dict, *, kid: str | None = None) -> str:
    key = KEY_RING.signing_key()
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": kid or key.kid})


def forge_alg_none(good: str) -> str:
    return unsigned({"alg": "none", "typ": "JWT", "kid": header_of(good)["kid"]}, claims_of(good)) + "."


def forge_alg_none_uppercase(good: str) -> str:
    return unsigned({"alg": "None", "typ": "JWT", "kid": header_of(good)["kid"]}, claims_of(good)) + "."


def forge_hs256_with_the_public_key(good: str) -> str:
    # The classic confusion: the verifier's public key (PEM, as the JWKS publishes it) used as an HMAC secret.
    kid = header_of(good)["kid"]
    public_pem = KEY_RING.public_key(kid).public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    body = unsigned({"alg": "HS256", "typ": "JWT", "kid": kid}, claims_of(good))
    return body + "." + b64(hmac.new(public_pem, body.encode(), hashlib.sha256).digest())


def forge_unknown_kid(good: str) -> str:
    return resign_with_our_key(claims_of(good), kid="not-a-key-of-ours")


def forge_signed_by_a_stranger(good: str) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return jwt.encode(claims_of(good), Ed25519PrivateKey.generate(), algorithm="EdDSA",
                      headers={"kid": header_of(good)["kid"]})


def forge_expired(good: str) -> str:
    return resign_with_our_key({**claims_of(good), "iat": int(time.time()) - 900, "exp": int(time.time()) - 600})


def forge_not_yet_valid(good: str) -> str:
    return resign_with_our_key({**claims_of(good), "nbf": int(time.time()) + 3600})


def forge_issued_in_the_future(good: str) -> str:
    later = int(time.time()) + 3600
    return resign_with_our_key({**claims_of(good), "iat": later, "exp": later + 300})


def forge_tampered_role(good: str) -> str:
    header, payload, signature = good.split(".")
    claims = {**claims_of(good), "role": "instance_admin", "profile_role": "instance_admin"}
    return f"{header}.{b64(json.dumps(claims).encode())}.{signature}"


def forge_tampered_subject(good: str) -> str:
    header, payload, signature = good.split(".")
    claims = {**claims_of(good), "sub": str(int(claims_of(good)["sub"]) + 1)}
    return f"{header}.{b64(json.dumps(claims).encode())}.{signature}"


def forge_wrong_audience(good: str) -> str:
    return resign_with_our_key({**claims_of(good), "aud": "someone-else"})


def forge_wrong_issuer(good: str) -> str:
    return resign_with_our_key({**claims_of(good), "iss": "https://evil.example"})


def forge_no_expiry(good: str) -> str:
    claims = claims_of(good)
    claims.pop("exp")
    return resign_with_our_key(claims)


def forge_refresh_typ(good: str) -> str:
    return resign_with_our_key({**claims_of(good), "typ": "refresh"})


FORGERIES: dict[str, Callable[[str], str]] = {
    "alg_none": forge_alg_none,
    "alg_None": forge_alg_none_uppercase,
    "hs256_signed_with_the_public_key": forge_hs256_with_the_public_key,
    "unknown_kid": forge_unknown_kid,
    "signed_by_another_ed25519_key": forge_signed_by_a_stranger,
    "expired": forge_expired,
    "not_yet_valid": forge_not_yet_valid,
    "issued_in_the_future": forge_issued_in_the_future,
    "tampered_role": forge_tampered_role,
    "tampered_subject": forge_tampered_subject,
    "wrong_audience": forge_wrong_audience,
    "wrong_issuer": forge_wrong_issuer,
    "no_expiry": forge_no_expiry,
    "not_an_access_token": forge_refresh_typ,
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/orders/", "/api/v1/roles"])
def test_a_forged_or_stale_access_token_is_401_in_the_error_shape(good, forge, path):
    forged = forge(good)

    assert_refused(bearer(forged).get(path), codes={"token_invalid", "token_expired"})
    assert_refused(bearer(forged).get(path), codes={"token_invalid", "token_expired"})  # and not cached


def test_a_forged_token_writes_nothing(good, clerk):
    forged = forge_tampered_role(good)

    response = bearer(forged).post("/api/v1/instances", {"slug": "hijack", "name": "Hijack"}, format="json")

    assert_refused(response)
    assert not Instance.objects.filter(slug="hijack").exists()


def test_a_token_of_a_deactivated_instance_gets_nothing(clerk, good):
    assert bearer(good).get("/api/v1/orders/").status_code == 200
    Instance.objects.filter(pk=clerk.instance_id).update(is_active=False)
    forget_standing()

    response = bearer(good).get("/api/v1/orders/")

    assert_refused(response, status=response.status_code, codes={"instance_not_found", "role_stale"})
    assert response.status_code in (401, 404)


def test_a_token_of_a_removed_member_gets_nothing():
    admin = ProfileFactory(role="instance_admin")
    member = ProfileFactory(role="clerk", instance=admin.instance)
    tokens = login(member.user.email, instance=admin.instance.slug)
    assert bearer(tokens["access"]).get("/api/v1/orders/").status_code == 200

    member_remove(actor=_actor(admin), user_id=member.user_id)
    forget_standing()

    assert_refused(bearer(tokens["access"]).get("/api/v1/orders/"), codes={"role_stale", "token_revoked"})
    refresh = APIClient().post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert_refused(refresh)


def test_a_token_of_a_demoted_admin_no_longer_acts_as_admin():
    admin = ProfileFactory(role="instance_admin")
    other_admin = ProfileFactory(role="instance_admin", instance=admin.instance)
    tokens = login(admin.user.email, instance=admin.instance.slug)
    members = f"/api/v1/instances/{admin.instance.slug}/members"
    assert bearer(tokens["access"]).get(members).status_code == 200

    member_change_role(actor=_actor(other_admin), user_id=admin.user_id, role="customer")
    forget_standing()

    assert_refused(bearer(tokens["access"]).get(members), codes={"role_stale", "token_revoked"})
    invite = bearer(tokens["access"]).post(f"{members}", {"email": "x@example.com", "role": "instance_admin"},
                                           format="json")
    assert invite.status_code in (401, 403)
    assert Profile.objects.get(user_id=admin.user_id, instance=admin.instance).role == "customer"
    refreshed = APIClient().post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    if refreshed.status_code == 200:  # a refresh may go on, but only in the role the profile backs now
        assert claims_of(refreshed.json()["access"])["role"] == "customer"
    else:
        assert_refused(refreshed)


def test_tokens_issued_before_a_password_change_are_dead(django_capture_on_commit_callbacks):
    profile = ProfileFactory(role="clerk")
    tokens = login(profile.user.email)

    with django_capture_on_commit_callbacks(execute=True):
        changed = bearer(tokens["access"]).post("/api/v1/me/password", {"current_password": DEFAULT_PASSWORD,
                                                                         "new_password": NEW_PASSWORD},
                                                format="json")
    assert changed.status_code == 204
    forget_standing()

    assert_refused(bearer(tokens["access"]).get("/api/v1/me"), codes={"token_revoked"})
    assert_refused(APIClient().post("/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json"))


def test_a_reused_refresh_token_revokes_its_whole_family():
    profile = ProfileFactory(role="clerk")
    first = login(profile.user.email)
    client = APIClient()
    second = client.post("/api/v1/auth/token/refresh", {"refresh": first["refresh"]}, format="json")
    assert second.status_code == 200

    reuse = client.post("/api/v1/auth/token/refresh", {"refresh": first["refresh"]}, format="json")

    assert_refused(reuse, codes={"token_reused"})
    assert_refused(client.post("/api/v1/auth/token/refresh", {"refresh": second.json()["refresh"]}, format="json"))
    assert RefreshToken.objects.usable().count() == 0


@pytest.mark.parametrize("refresh", ["", "x" * 5000, str(uuid.uuid4()), "\u0000", "../../etc/passwd"])
def test_junk_refresh_tokens_are_4xx_in_the_error_shape(refresh):
    response = APIClient().post("/api/v1/auth/token/refresh", {"refresh": refresh}, format="json")

    assert response.status_code in (400, 401)
    assert set(response.json()["error"]) == {"code", "message", "fields"}


def _actor(profile: Profile):
    from accounts.selectors import InstanceActor  # noqa: PLC0415

    return InstanceActor(instance=profile.instance, user_id=profile.user_id, role=profile.role)
