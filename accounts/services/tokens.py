"""Access and refresh tokens.

Access tokens: EdDSA-signed JWTs (``accounts.keys``), short-lived, signed and verified through
simplejwt's ``TokenBackend`` (PyJWT underneath) with the key ring; verification needs public keys only.
Refresh tokens: opaque random strings; only their SHA-256 is stored (``RefreshToken``). Each refresh (and
each switch) rotates: the presented token is marked used by a conditional UPDATE (exactly one concurrent
caller wins) and a child in the same family is issued. Presenting a used token again revokes the whole
family. Every write of a user's refresh tokens holds the user's row lock (``_lock_user``), so a refresh
cannot slip past a revocation.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenBackendExpiredToken

from accounts import error_codes
from accounts.keys import ALGORITHM, KEY_RING
from accounts.models import Instance, Profile, RefreshToken, User
from audit.choices import AuditAction
from audit.services import audit_record
from authz.context import ActingContext
from authz.roles import ANONYMOUS, LATTICE, RoleSwitchDenied, switch_to
from saaskit import metrics
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

# A longer token is refused before any parsing (our tokens are about 500 bytes).
ACCESS_TOKEN_MAX_LENGTH = 4096
# Strict base64url is PyJWT's (2.15 refuses characters outside the alphabet and non-canonical encodings,
# GHSA-hxm8-2xgr-2p9m): Python's lenient base64 would make ``sig + "!!!!"`` (or the signature's last character
# spelt 16 ways) verify as new, distinct tokens to fill the cache with. tests/accounts/test_authentication.py
# holds it at the HTTP level, so a downgrade of PyJWT fails there.


class KeyRingTokenBackend(TokenBackend):
    """simplejwt's token backend for EdDSA with our key ring: signs with the newest key and names it in the
    ``kid`` header; verifies with the key the token's ``kid`` names (deleted or retired keys verify nothing).
    JWKS, rotation and retirement stay in ``accounts.keys``."""

    def __init__(self, *, issuer: str, audience: str) -> None:
        super().__init__(ALGORITHM, audience=audience, issuer=issuer)

    def encode(self, payload: dict[str, Any]) -> str:
        key = KEY_RING.signing_key()
        claims = {**payload, "aud": self.audience, "iss": self.issuer}
        return jwt.encode(claims, key.private_key, algorithm=self.algorithm, headers={"kid": key.kid})

    def get_verifying_key(self, token: Any) -> Any:
        header_segment = token.partition(".")[0]
        kid = _verified_headers.get(header_segment)
        if kid is None:
            try:
                kid = jwt.get_unverified_header(token).get("kid")
            except jwt.InvalidTokenError as exc:
                raise TokenBackendError("Token is invalid") from exc
            if not isinstance(kid, str):
                raise TokenBackendError("Token is invalid")
        public_key = KEY_RING.public_key(kid)
        if public_key is None:
            raise TokenBackendError("Token is invalid")
        return public_key


_backends: dict[tuple[str, str], KeyRingTokenBackend] = {}


def _backend() -> KeyRingTokenBackend:
    """The backend for the current issuer and audience settings (tests change them)."""
    names = (settings.JWT_ISSUER, settings.JWT_AUDIENCE)
    backend = _backends.get(names)
    if backend is None:
        backend = _backends[names] = KeyRingTokenBackend(issuer=names[0], audience=names[1])
    return backend


def access_token_issue(*, user_id: int, instance: Instance | None, role: str, profile_role: str,
                       now: float | None = None) -> str:
    moment = now if now is not None else time.time()
    issued = int(moment)
    return _backend().encode({
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
    })


# header segment -> kid, for headers whose signature verified once; bounded.
_verified_headers: dict[str, str] = {}
# SHA-256 of a token -> (claims, kid) for tokens verified in this process; cleared whole when full (cheap, and
# rare). Keyed by a digest so an entry costs the same whatever the token's length.
_VERIFIED_TOKENS_MAX = 20_000
_verified_tokens: dict[bytes, tuple[dict[str, Any], str]] = {}
# A key removed from the ring (pruned, or deleted after a leak) must stop verifying at once, cache or not.
KEY_RING.on_keys_removed(_verified_tokens.clear)
KEY_RING.on_keys_removed(_verified_headers.clear)


def access_token_verify(token: str) -> dict[str, Any]:
    """Verify signature (EdDSA only: ``none`` and HMAC are refused), expiry, issuer, audience and type.

    Returns the claims; raises InvalidToken (401). The signature, expiry, issuer and audience are checked by
    simplejwt's backend (PyJWT underneath, strict base64url); the length before it, our own claims after it.
    A token seen before is answered from a bounded per-process cache of verified tokens, keyed by the
    token's digest (expiry still checked, and its key still in the ring); revocation is checked by the
    caller against the user's not-before stamp, not here.
    """
    if len(token) > ACCESS_TOKEN_MAX_LENGTH:
        raise InvalidToken()
    digest = hashlib.sha256(token.encode()).digest()
    cached = _verified_tokens.get(digest)  # only verified tokens are in it: the same digest, the same token
    if cached is not None:
        claims, kid = cached
        if claims["exp"] > time.time() and KEY_RING.verifies(kid):
            return claims
        _verified_tokens.pop(digest, None)
    backend = _backend()
    try:
        claims = backend.decode(token)
    except TokenBackendExpiredToken:
        raise InvalidToken("The token has expired.", code=error_codes.TOKEN_EXPIRED) from None
    except (TokenBackendError, ValueError, TypeError):
        raise InvalidToken() from None
    if not isinstance(claims, dict):
        raise InvalidToken()
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool) or exp <= time.time():
        raise InvalidToken("The token has expired.", code=error_codes.TOKEN_EXPIRED)
    if claims.get("typ") != "access" or not isinstance(claims.get("sub"), str) or not claims["sub"].isdigit():
        raise InvalidToken()
    header_segment = token.partition(".")[0]
    kid = _verified_headers.get(header_segment)
    if kid is None:
        kid = jwt.get_unverified_header(token)["kid"]
        if len(_verified_headers) < 64:
            _verified_headers[header_segment] = kid
    if len(_verified_tokens) >= _VERIFIED_TOKENS_MAX:
        _verified_tokens.clear()
    _verified_tokens[digest] = (claims, kid)
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


def _lock_user(user_id: int) -> User | None:
    """Take the user's row lock (inside a transaction) and return the fresh row.

    Every write of a user's refresh tokens (rotation, switch, each kind of revocation) takes this lock first,
    so a refresh and a revocation of the same user run one after the other: a revocation sees the child a
    refresh made, and a refresh after a revocation finds its token revoked. FOR NO KEY UPDATE: rows that
    merely reference the user (an order, a profile) are still inserted meanwhile.
    """
    return User.objects.select_for_update(no_key=True).filter(pk=user_id).first()


def _rotate(*, refresh: str, user_id: int | None, issue: Callable[[RefreshToken, User], TokenPair]) -> TokenPair:
    """Mark ``refresh`` used and return ``issue(stored, user)``, under the user's lock, in one transaction.

    Exactly one concurrent caller wins. If ``issue`` raises, nothing is written (the token stays usable).
    A token presented again after it was used revokes its whole family (and raises ``token_reused``).
    ``user_id``, when given, must own the token.
    """
    stored = RefreshToken.objects.filter(token_hash=_hash(refresh)).first()
    if stored is None or (user_id is not None and stored.user_id != user_id):
        raise InvalidToken()
    with transaction.atomic():
        user = _lock_user(stored.user_id)
        now = timezone.now()
        won = user is not None and RefreshToken.objects.filter(
            pk=stored.pk, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now,
        ).update(used_at=now)
        if won:
            assert user is not None
            return issue(stored, user)
        # Used, revoked or expired (or the user is gone).
        stored.refresh_from_db(fields=["used_at", "revoked_at", "expires_at"])
        reused = stored.revoked_at is None and stored.used_at is not None
        if reused:
            revoked = RefreshToken.objects.filter(family=stored.family, revoked_at__isnull=True).update(
                revoked_at=now, revoked_reason="reuse_detected")
            if revoked:  # the system acted (no actor): a stolen token was presented
                _token_audit(action=AuditAction.TOKEN_REVOCATION, actor=None, instance=stored.instance,
                             target=("accounts.refreshtoken_family", stored.family), before=None,
                             after={"user_id": stored.user_id, "revoked": revoked, "reason": "reuse_detected"})
    if reused:
        metrics.TOKEN_REUSES.inc()
        raise InvalidToken("This refresh token was already used; its whole family is revoked.",
                           code=error_codes.TOKEN_REUSED)
    raise InvalidToken()


def _switched(*, user: User, instance_slug: str | None, role: str) -> tuple[Instance | None, str, str]:
    """(instance, role, profile_role) of a switch to ``role``, or ForbiddenError(role_switch_denied)."""
    instance = None
    if instance_slug:
        instance = Instance.objects.filter(slug=instance_slug, is_active=True).first()
        if instance is None:
            raise ForbiddenError("You cannot switch into that instance.", code=error_codes.ROLE_SWITCH_DENIED)
    local = (Profile.objects.filter(user=user, instance=instance).select_related("instance").first()
             if instance is not None else None)
    global_profile = Profile.objects.filter(user=user, instance__isnull=True).first()
    bases = [p for p in (local, global_profile) if p is not None]
    if not bases or not user.is_active:
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
        return (instance if switched.instance_id is not None else None), switched.role, profile.role
    raise ForbiddenError(f"Switch denied: {reason}.", code=error_codes.ROLE_SWITCH_DENIED)


def token_switch(*, user: User, refresh: str, instance_slug: str | None, role: str) -> TokenPair:
    """Rotate ``refresh`` (the caller's current refresh token) into a pair acting in ``role`` (in
    ``instance_slug`` for an instance-bound role), in the same family: a stolen access token alone cannot
    start a session, and a later reuse of ``refresh`` revokes the switched tokens too.

    Allowed only along the lattice's edges (``authz.roles.switch_to``) from the user's profile in that
    instance, or from the global profile of a platform operator (any active instance). Raises
    ApplicationError(role_unknown, 400), InvalidToken (401: not the caller's, used, revoked or expired),
    ApplicationError(role_already_held, 409) or ForbiddenError(role_switch_denied, 403); a refused switch
    writes nothing and leaves ``refresh`` usable.
    """
    if role not in LATTICE.roles:
        raise ApplicationError(f"Unknown role {role!r}.", code=error_codes.ROLE_UNKNOWN,
                               fields={"role": ["Unknown role."]})

    def issue(stored: RefreshToken, locked: User) -> TokenPair:
        instance, switched_role, profile_role = _switched(user=locked, instance_slug=instance_slug, role=role)
        if switched_role == stored.role and (instance.pk if instance else None) == stored.instance_id:
            raise ApplicationError(f"This session already acts as {role!r} here; nothing to switch.",
                                   code=error_codes.ROLE_ALREADY_HELD, status_code=409)
        return token_pair_issue(user=locked, instance=instance, role=switched_role, profile_role=profile_role,
                                family=stored.family, parent=stored)

    return _rotate(refresh=refresh, user_id=user.pk, issue=issue)


def token_refresh(*, refresh: str) -> TokenPair:
    """Rotate ``refresh``. Exactly one concurrent caller wins; a reused token revokes its whole family."""

    def issue(stored: RefreshToken, user: User) -> TokenPair:
        instance = Instance.objects.filter(pk=stored.instance_id).first() if stored.instance_id else None
        acting = _current_role(user=user, instance=instance, role=stored.role)
        if acting is None:  # the user lost the profile (or was deactivated): not a reuse
            raise InvalidToken()
        pair = token_pair_issue(user=user, instance=instance, role=acting[0], profile_role=acting[1],
                                family=stored.family, parent=stored)
        metrics.TOKEN_REFRESHES.inc()
        return pair

    return _rotate(refresh=refresh, user_id=None, issue=issue)


def refresh_token_find(*, refresh: str) -> RefreshToken | None:
    return RefreshToken.objects.filter(token_hash=_hash(refresh)).first()


def _token_audit(*, action: str, actor: User | None, instance: Instance | None, target: Any,
                 before: dict[str, Any] | None, after: dict[str, Any]) -> None:
    audit_record(action=action, actor=actor, instance=instance, target=target, before=before, after=after)


def refresh_token_revoke(*, token: RefreshToken, reason: str, actor: User | None = None,
                         audited: bool = True) -> bool:
    """Revoke one refresh token (idempotent); True when this call revoked it. With ``audited`` (all but the
    owner's own logout) a revocation writes a ``token_revocation`` audit entry in the same transaction."""
    with transaction.atomic():
        _lock_user(token.user_id)
        revoked = bool(RefreshToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_reason=reason[:64]))
        if revoked and audited:
            _token_audit(action=AuditAction.TOKEN_REVOCATION, actor=actor, instance=token.instance, target=token,
                         before={"state": token.state}, after={"state": "revoked", "reason": reason[:64]})
    return revoked


def refresh_token_revoke_family(*, family: uuid.UUID, reason: str, actor: User | None = None) -> int:
    """Revoke every live token of a family; returns how many (an audit entry when any)."""
    first = RefreshToken.objects.filter(family=family).select_related("instance").first()
    if first is None:
        return 0
    with transaction.atomic():
        _lock_user(first.user_id)
        revoked = RefreshToken.objects.filter(family=family, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_reason=reason[:64])
        if revoked:
            _token_audit(action=AuditAction.TOKEN_REVOCATION, actor=actor, instance=first.instance,
                         target=("accounts.refreshtoken_family", family), before=None,
                         after={"user_id": first.user_id, "revoked": revoked, "reason": reason[:64]})
    return revoked


def member_tokens_revoke(*, user_id: int, instance_id: int, reason: str) -> int:
    """Revoke the user's refresh tokens for one instance, under the user's lock; returns how many. Not audited
    here: it is one part of a role change or a removal, which the caller audits."""
    with transaction.atomic():
        _lock_user(user_id)
        return RefreshToken.objects.filter(user_id=user_id, instance_id=instance_id, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_reason=reason[:64])


def user_revoke_all_tokens(*, user: User, reason: str, actor: User | None = None,
                           action: str = AuditAction.TOKEN_REVOCATION, audited: bool = True) -> int:
    """Revoke every refresh token of ``user`` and stop their unexpired access tokens (not-before stamp,
    seen by every process within a second: see ``accounts.authentication``).

    Writes an audit entry (``action``: token_revocation, or password_change from ``User.save``) in the same
    transaction unless ``audited`` is False (a caller that audits the whole change itself, as a lock does).
    """
    with transaction.atomic():
        _lock_user(user.pk)
        # Taken under the lock, so it is later than every token a refresh issued before we got the lock.
        # Compared with a token's ``iat_us``: every token issued before this instant is refused, also one issued
        # earlier in the same second; a token issued right after (a new login) is accepted.
        now = timezone.now()
        User.objects.filter(pk=user.pk).update(tokens_not_before=now)
        revoked = RefreshToken.objects.filter(user=user, revoked_at__isnull=True).update(
            revoked_at=now, revoked_reason=reason[:64])
        if audited:
            _token_audit(action=action, actor=actor, instance=None, target=user,
                         before={"tokens_not_before": user.tokens_not_before},
                         after={"tokens_not_before": now, "revoked": revoked, "reason": reason[:64]})
    user.tokens_not_before = now
    for forget in _on_user_revoked:  # this process sees it at once; others within 0.5 s
        transaction.on_commit(lambda forget=forget: forget(user.pk))
    return revoked


# Callbacks taking a user id, run after a revoke-all commits: ``accounts.authentication`` registers the one that
# drops its cached user row (a registry, so this module does not import the authenticator that imports it).
_on_user_revoked: list[Callable[[int], None]] = []


def on_user_tokens_revoked(callback: Callable[[int], None]) -> None:
    _on_user_revoked.append(callback)


def refresh_tokens_flush_expired(*, grace: timedelta = timedelta(0), now: datetime | None = None,
                                 batch: int = 5000) -> int:
    """Delete refresh tokens that expired more than ``grace`` ago, in batches (short transactions, no long
    lock on a table of a million rows); returns how many went. An expired token is refused anyway; the grace
    keeps a rotated one a little longer so presenting it again still revokes its family. Not audited: nothing
    anybody could use changes."""
    cutoff = (now or timezone.now()) - grace
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(RefreshToken.objects.filter(expires_at__lte=cutoff).order_by("expires_at")
                       .values_list("pk", flat=True)[:batch])
            if not ids:
                return deleted
            count, _ = RefreshToken.objects.filter(pk__in=ids).delete()
        deleted += count
