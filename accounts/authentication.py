"""DRF authentication from a Bearer access token.

Verification needs only public keys. The user row is cached per process for half a second, which is how a
revoke-all (``User.tokens_not_before``) and a deactivation reach every process within a second without a
query on every request.
"""

from __future__ import annotations

import time
from typing import Any

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from accounts import error_codes
from accounts.models import User
from accounts.selectors import acting_context_backed
from accounts.services.tokens import (
    InvalidToken,
    access_token_verify,
    acting_context_from_claims,
    on_user_tokens_revoked,
)
from authz.context import ActingContext

USER_CACHE_SECONDS = 0.5
_user_cache: dict[int, tuple[User | None, float]] = {}


def _cached_user(user_id: int) -> User | None:
    now = time.monotonic()
    hit = _user_cache.get(user_id)
    if hit is not None and hit[1] > now:
        return hit[0]
    user = User.objects.filter(pk=user_id).first()
    if len(_user_cache) > 50_000:
        _user_cache.clear()
    _user_cache[user_id] = (user, now + USER_CACHE_SECONDS)
    return user


def _issued_us(claims: dict[str, Any]) -> int:
    """When the token was issued, in microseconds (``iat_us``; whole seconds for a token without it)."""
    issued_us = claims.get("iat_us")
    if isinstance(issued_us, int) and not isinstance(issued_us, bool):
        return issued_us
    issued = claims.get("iat")
    return int(issued) * 1_000_000 if isinstance(issued, int | float) and not isinstance(issued, bool) else 0


def _not_before_us(user: User) -> int:
    stamp = user.tokens_not_before
    assert stamp is not None
    return int(stamp.timestamp()) * 1_000_000 + stamp.microsecond


def authenticate_access_token(token: str) -> tuple[User, ActingContext]:
    """The user and acting context of a valid access token, or AuthenticationFailed (401)."""
    try:
        claims = access_token_verify(token)
    except InvalidToken as exc:
        raise AuthenticationFailed(exc.message, code=exc.code) from None
    ctx = acting_context_from_claims(claims)
    user = _cached_user(ctx.user_id)
    if user is None or not user.is_active:
        raise AuthenticationFailed("The token is invalid or expired.", code=error_codes.TOKEN_INVALID)
    if user.tokens_not_before is not None and _issued_us(claims) < _not_before_us(user):
        raise AuthenticationFailed("The token was revoked.", code=error_codes.TOKEN_REVOKED)
    backed = acting_context_backed(ctx)  # the role the caller's profile backs now (re-read within 1 s)
    if backed is None:
        raise AuthenticationFailed("Your role or membership has changed; sign in again.", code=error_codes.ROLE_STALE)
    return user, backed


class AccessTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[User, ActingContext] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise AuthenticationFailed("Malformed Authorization header.", code=error_codes.TOKEN_INVALID)
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Malformed Authorization header.", code=error_codes.TOKEN_INVALID) from None
        return authenticate_access_token(token)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def forget_cached_user(user_id: Any) -> None:
    _user_cache.pop(user_id, None)


on_user_tokens_revoked(forget_cached_user)
