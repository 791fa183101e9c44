"""Access and refresh tokens.

Access tokens: EdDSA-signed JWTs (``accounts.keys``), short-lived, verified with public keys only.
Refresh tokens: opaque random strings; only their SHA-256 is stored (``RefreshToken``). Each refresh
rotates: the presented token is marked used by a conditional UPDATE (exactly one concurrent caller wins)
and a child in the same family is issued. Presenting a used token again revokes the whole family.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import error_codes
from accounts.keys import ALGORITHM, KEY_RING
from accounts.models import Instance, Profile, RefreshToken, User
from authz.context import ActingContext
from authz.roles import ANONYMOUS, LATTICE, RoleSwitchDenied, switch_to
from saaskit.errors import ApplicationError, ForbiddenError


class InvalidToken(ApplicationError):
    status_code = 401

    def __init__(self, message: str = "The token is invalid or expired.", *,
                 code: str = error_codes.TOKEN_INVALID) -> None:
        super().__init__(message, code=code)


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    refresh_token: RefreshToken


# --- access tokens ----------------------------------------------------------------------------

def access_token_issue(*, user_id: int, instance: Instance | None, role: str, profile_role: str,
                       now: float | None = None) -> str:
    key = KEY_RING.signing_key()
    moment = now if now is not None else time.time()
    issued = int(moment)
    claims = {
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "sub": str(user_id),
        "iat": issued,
        "exp": issued + int(settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
        "jti": uuid.uuid4().hex,
        # iat in microseconds: a revoke-all refuses tokens issued earlier in the same second too.
        "iat_us": int(moment * 1_000_000),
        "typ": "access",
        "instance": instance.slug if instance else None,
        "instance_id": instance.pk if instance else None,
        "role": role,
        "profile_role": profile_role,
    }
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


# header segment -> kid, for headers whose signature verified once; bounded.
_verified_headers: dict[str, str] = {}
# token -> claims for tokens verified in this process; cleared whole when full (cheap, and rare).
_VERIFIED_TOKENS_MAX = 20_000
_verified_tokens: dict[str, dict[str, Any]] = {}
# A key removed from the ring (pruned, or deleted after a leak) must stop verifying at once, cache or not.
KEY_RING.on_keys_removed(_verified_tokens.clear)
KEY_RING.on_keys_removed(_verified_headers.clear)


def access_token_verify(token: str) -> dict[str, Any]:
    """Verify signature (EdDSA only: ``none`` and HMAC are refused), expiry, issuer, audience and type.

    Returns the claims; raises InvalidToken (401). Hand-rolled around ``cryptography`` because this runs on
    every request: a known header is parsed once, then it is one Ed25519 verify and one JSON parse. A token
    seen before is answered from a bounded per-process cache of verified tokens (expiry still checked);
    revocation is checked by the caller against the user's not-before stamp, not here.
    """
    cached = _verified_tokens.get(token)
    if cached is not None:
        if cached["exp"] > time.time():
            return cached
        _verified_tokens.pop(token, None)
    try:
        header_segment, payload_segment, signature_segment = token.split(".")
        kid = _verified_headers.get(header_segment)
        if kid is None:
            header = json.loads(_b64decode(header_segment))
            if not isinstance(header, dict) or header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
                raise InvalidToken()
            kid = header["kid"]
        public_key = KEY_RING.public_key(kid)
        if public_key is None:
            raise InvalidToken()
        public_key.verify(_b64decode(signature_segment), f"{header_segment}.{payload_segment}".encode())
        claims = json.loads(_b64decode(payload_segment))
    except (ValueError, binascii.Error, InvalidSignature, UnicodeDecodeError, TypeError):
        raise InvalidToken() from None
    if header_segment not in _verified_headers and len(_verified_headers) < 64:
        _verified_headers[header_segment] = kid
    if not isinstance(claims, dict):
        raise InvalidToken()
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= time.time():
        raise InvalidToken("The token has expired.", code=error_codes.TOKEN_EXPIRED)
    aud = claims.get("aud")
    if claims.get("iss") != settings.JWT_ISSUER or not (
            aud == settings.JWT_AUDIENCE or (isinstance(aud, list) and settings.JWT_AUDIENCE in aud)):
        raise InvalidToken()
    if claims.get("typ") != "access" or not isinstance(claims.get("sub"), str) or not claims["sub"].isdigit():
        raise InvalidToken()
    if len(_verified_tokens) >= _VERIFIED_TOKENS_MAX:
        _verified_tokens.clear()
    _verified_tokens[token] = claims
    return claims


def acting_context_from_claims(claims: dict[str, Any]) -> ActingContext:
    return ActingContext(
        user_id=int(claims["sub"]),
        instance_id=claims.get("instance_id"),
        instance_slug=claims.get("instance"),
        role=claims.get("role") or ANONYMOUS,
        profile_role=claims.get("profile_role") or ANONYMOUS,
        token_id=claims.get("jti"),
    )


# --- refresh tokens ---------------------------------------------------------------------------

def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_pair_issue(*, user: User, instance: Instance | None, role: str, profile_role: str,
                     family: uuid.UUID | None = None, parent: RefreshToken | None = None) -> TokenPair:
    secret = secrets.token_urlsafe(48)
    now = timezone.now()
    stored = RefreshToken.objects.create(
        user=user, instance=instance, role=role, profile_role=profile_role, family=family or uuid.uuid4(),
        parent=parent, token_hash=_hash(secret), created_at=now, expires_at=now + settings.REFRESH_TOKEN_LIFETIME,
    )
    access = access_token_issue(user_id=user.pk, instance=instance, role=role, profile_role=profile_role)
    return TokenPair(access=access, refresh=secret, refresh_token=stored)


def _operator_profile(*, user: User) -> Profile | None:
    """The user's global profile if its role spans instances (the platform operator), else None."""
    operator = Profile.objects.filter(user=user, instance__isnull=True).only("role").first()
    role = LATTICE.roles.get(operator.role) if operator is not None else None
    return operator if role is not None and role.spans_instances else None


def _current_role(*, user: User, instance: Instance | None, role: str) -> tuple[str, str] | None:
    """(role, profile_role) the user may act in now, re-read from their profiles; None if they lost it.

    The switched ``role`` is kept while the profile in ``instance`` (or, for a platform operator switched
    into an instance, the global profile) may still switch into it; otherwise the profile's own role.
    """
    if not user.is_active or (instance is not None and not instance.is_active):
        return None
    profile = Profile.objects.filter(user=user, instance=instance).only("role").first()
    if profile is not None and (role == profile.role or LATTICE.can_switch(profile.role, role)):
        return role, profile.role
    if instance is not None:
        operator = _operator_profile(user=user)
        if operator is not None and role != operator.role and LATTICE.can_switch(operator.role, role):
            return role, operator.role
    if profile is not None:
        return profile.role, profile.role
    return (ANONYMOUS, ANONYMOUS) if instance is None and role == ANONYMOUS else None


def token_switch(*, user: User, instance_slug: str | None, role: str) -> TokenPair:
    """New tokens acting in ``role`` (in ``instance_slug`` for an instance-bound role).

    Allowed only along the lattice's edges (``authz.roles.switch_to``) from the user's profile in that
    instance, or from the global profile of a platform operator (any active instance). Raises
    ApplicationError(role_unknown, 400) or ForbiddenError(role_switch_denied, 403).
    """
    if role not in LATTICE.roles:
        raise ApplicationError(f"Unknown role {role!r}.", code=error_codes.ROLE_UNKNOWN,
                               fields={"role": ["Unknown role."]})
    instance = None
    if instance_slug:
        instance = Instance.objects.filter(slug=instance_slug, is_active=True).first()
        if instance is None:
            raise ForbiddenError("You cannot switch into that instance.", code=error_codes.ROLE_SWITCH_DENIED)
    local = (Profile.objects.filter(user=user, instance=instance).select_related("instance").first()
             if instance is not None else None)
    global_profile = Profile.objects.filter(user=user, instance__isnull=True).first()
    bases = [p for p in (local, global_profile) if p is not None]
    if not bases:
        raise ForbiddenError("You have no profile to switch from.", code=error_codes.ROLE_SWITCH_DENIED)
    reason = ""
    for profile in bases:
        base = ActingContext(user_id=user.pk, instance_id=profile.instance_id,
                             instance_slug=profile.instance.slug if profile.instance else None,
                             role=profile.role, profile_role=profile.role)
        try:
            switched = switch_to(base, role, instance)
        except RoleSwitchDenied as exc:
            reason = str(exc)
            continue
        with transaction.atomic():
            return token_pair_issue(user=user, instance=instance if switched.instance_id is not None else None,
                                    role=switched.role, profile_role=profile.role)
    raise ForbiddenError(f"Switch denied: {reason}.", code=error_codes.ROLE_SWITCH_DENIED)


def token_refresh(*, refresh: str) -> TokenPair:
    """Rotate ``refresh``. Exactly one concurrent caller wins; a reused token revokes its whole family."""
    stored = RefreshToken.objects.select_related("user", "instance").filter(token_hash=_hash(refresh)).first()
    if stored is None:
        raise InvalidToken()
    now = timezone.now()
    with transaction.atomic():
        won = RefreshToken.objects.filter(
            pk=stored.pk, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now,
        ).update(used_at=now)
        if won:
            acting = _current_role(user=stored.user, instance=stored.instance, role=stored.role)
            if acting is None:  # the user lost the profile (or was deactivated): not a reuse
                raise InvalidToken()
            return token_pair_issue(user=stored.user, instance=stored.instance, role=acting[0],
                                    profile_role=acting[1], family=stored.family, parent=stored)
    # Lost the race, or the token was used, revoked or expired, or the user lost the role.
    stored.refresh_from_db(fields=["used_at", "revoked_at", "expires_at"])
    if stored.revoked_at is None and stored.used_at is not None:
        refresh_token_revoke_family(family=stored.family, reason="reuse_detected")
        raise InvalidToken("This refresh token was already used; its whole family is revoked.",
                           code=error_codes.TOKEN_REUSED)
    raise InvalidToken()


def refresh_token_find(*, refresh: str) -> RefreshToken | None:
    return RefreshToken.objects.filter(token_hash=_hash(refresh)).first()


def refresh_token_revoke(*, token: RefreshToken, reason: str) -> None:
    RefreshToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=reason[:64])


def refresh_token_revoke_family(*, family: uuid.UUID, reason: str) -> int:
    return RefreshToken.objects.filter(family=family, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=reason[:64])


def user_revoke_all_tokens(*, user: User, reason: str) -> int:
    """Revoke every refresh token of ``user`` and stop their unexpired access tokens (not-before stamp,
    seen by every process within a second: see ``accounts.authentication``)."""
    now = timezone.now()
    # Compared with a token's ``iat_us``: every token issued before this instant is refused, also one issued
    # earlier in the same second; a token issued right after (a new login) is accepted.
    not_before = now
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(tokens_not_before=not_before)
        revoked = RefreshToken.objects.filter(user=user, revoked_at__isnull=True).update(
            revoked_at=now, revoked_reason=reason[:64])
    user.tokens_not_before = not_before
    from accounts.authentication import forget_cached_user  # this process sees it at once; others within 0.5 s

    transaction.on_commit(lambda: forget_cached_user(user.pk))
    return revoked
