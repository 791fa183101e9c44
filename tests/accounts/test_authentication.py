"""AccessTokenAuthentication: the Bearer header, the acting context, and the not-before stamp of revoke-all
compared at microsecond precision (a token issued earlier in the same second is refused too)."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import pytest
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIClient, APIRequestFactory

from accounts.authentication import AccessTokenAuthentication, authenticate_access_token
from accounts.models import User
from accounts.services.tokens import access_token_issue, user_revoke_all_tokens
from authz.context import ActingContext
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db


def token_for(profile, *, now: float | None = None) -> str:
    return access_token_issue(user_id=profile.user_id, instance=profile.instance, role=profile.role,
                              profile_role=profile.role, now=now)


def stamp(user_id: int, moment: float) -> None:
    User.objects.filter(pk=user_id).update(tokens_not_before=datetime.fromtimestamp(moment, UTC))


def authenticate(header: str | None):
    request = APIRequestFactory().get("/", **({"HTTP_AUTHORIZATION": header} if header is not None else {}))
    return AccessTokenAuthentication().authenticate(request)


def test_a_valid_token_gives_the_user_and_the_acting_context():
    profile = ProfileFactory(role="clerk")
    access = token_for(profile)

    user, ctx = authenticate(f"Bearer {access}")

    assert user.pk == profile.user_id
    assert isinstance(ctx, ActingContext)
    assert (ctx.user_id, ctx.instance_id, ctx.instance_slug, ctx.role, ctx.profile_role) == (
        profile.user_id, profile.instance_id, profile.instance.slug, "clerk", "clerk")
    assert isinstance(ctx.token_id, str) and len(ctx.token_id) == 32


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwYXNz", "Token abc"])
def test_no_bearer_header_is_not_this_authenticators_business(header):
    assert authenticate(header) is None


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer not-a-jwt", "Bearer a.b.c"])
def test_a_malformed_bearer_header_is_refused(header):
    with pytest.raises(AuthenticationFailed) as raised:
        authenticate(header)
    assert raised.value.get_codes() == "token_invalid"


def test_a_token_of_a_deactivated_user_is_refused():
    profile = ProfileFactory(role="clerk")
    User.objects.filter(pk=profile.user_id).update(is_active=False)

    with pytest.raises(AuthenticationFailed) as raised:
        authenticate_access_token(token_for(profile))
    assert raised.value.get_codes() == "token_invalid"


def test_a_token_of_a_deleted_user_is_refused():
    profile = ProfileFactory(role="clerk")
    access = token_for(profile)
    User.objects.filter(pk=profile.user_id).delete()

    with pytest.raises(AuthenticationFailed):
        authenticate_access_token(access)


def test_a_token_issued_earlier_in_the_same_second_as_the_stamp_is_refused():
    profile = ProfileFactory(role="clerk")
    second = math.floor(time.time()) - 2
    access = token_for(profile, now=second + 0.25)
    stamp(profile.user_id, second + 0.5)

    with pytest.raises(AuthenticationFailed) as raised:
        authenticate_access_token(access)
    assert raised.value.get_codes() == "token_revoked"


def test_a_token_issued_later_in_the_same_second_as_the_stamp_is_accepted():
    profile = ProfileFactory(role="clerk")
    second = math.floor(time.time()) - 2
    access = token_for(profile, now=second + 0.75)
    stamp(profile.user_id, second + 0.5)

    user, _ctx = authenticate_access_token(access)

    assert user.pk == profile.user_id


def test_revoke_all_refuses_every_access_token_issued_before_it_and_accepts_the_next_login():
    profile = ProfileFactory(role="clerk")
    before = [token_for(profile) for _ in range(3)]  # most likely in the same second as the revocation

    user_revoke_all_tokens(user=profile.user, reason="test")
    after = token_for(profile)

    for access in before:
        with pytest.raises(AuthenticationFailed) as raised:
            authenticate_access_token(access)
        assert raised.value.get_codes() == "token_revoked"
    assert authenticate_access_token(after)[0].pk == profile.user_id


def test_logout_all_kills_the_access_token_it_was_called_with(api_client: APIClient):
    profile = ProfileFactory(role="clerk")
    access = token_for(profile)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert api_client.get("/api/v1/me").status_code == 200

    assert api_client.post("/api/v1/auth/logout-all").status_code == 204

    response = api_client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_revoked"


# --- the token's shape, length and the verified-token cache (issue 8, item 5) -------------------------

def get_me(access: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.get("/api/v1/me")


def test_junk_appended_to_a_signature_is_refused_before_and_after_the_token_is_cached():
    profile = ProfileFactory(role="clerk")
    access = token_for(profile)
    fresh = [get_me(access + "!!!!").status_code, get_me(access + "=").status_code]

    cached = get_me(access).status_code  # the genuine token is now verified and cached
    after = [get_me(access + "!!!!").status_code, get_me(access + "~~").status_code]

    assert (fresh, cached, after) == ([401, 401], 200, [401, 401])


def test_another_spelling_of_the_signatures_last_character_is_refused():
    """64 signature bytes take 86 base64url characters; the last carries 2 bits, so 15 other characters
    decode to the same bytes in a lenient decoder."""
    profile = ProfileFactory(role="clerk")
    access = token_for(profile)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(access[-1])
    same_bits = [c for c in alphabet if alphabet.index(c) >> 4 == last >> 4 and c != access[-1]]

    statuses = {get_me(access[:-1] + c).status_code for c in same_bits}

    assert len(same_bits) == 15
    assert statuses == {401}
    assert get_me(access).status_code == 200


def test_a_token_longer_than_4kb_is_refused_without_parsing(monkeypatch):
    from accounts.services import tokens

    profile = ProfileFactory(role="clerk")
    access = token_for(profile)
    monkeypatch.setattr(tokens.KeyRingTokenBackend, "decode", lambda *a, **k: pytest.fail("parsed"))

    response = get_me(access + "A" * (4097 - len(access)))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"


def test_the_verified_token_cache_holds_a_digest_of_each_token_not_the_token():
    import hashlib

    from accounts.services import tokens

    profile = ProfileFactory(role="clerk")
    access = token_for(profile)

    assert get_me(access).status_code == 200

    assert list(tokens._verified_tokens) == [hashlib.sha256(access.encode()).digest()]


def test_access_tokens_are_verified_by_simplejwts_token_backend(monkeypatch):
    from rest_framework_simplejwt.backends import TokenBackend

    from accounts.services import tokens

    profile = ProfileFactory(role="clerk")
    access = token_for(profile)
    seen = []
    real_decode = TokenBackend.decode
    monkeypatch.setattr(TokenBackend, "decode", lambda self, token, verify=True: seen.append(token) or
                        real_decode(self, token, verify))

    assert get_me(access).status_code == 200

    assert seen == [access]
    assert isinstance(tokens._backend(), TokenBackend)
