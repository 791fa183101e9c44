"""``Authorization: Bearer sk_...``: a service client's API key (DRF authentication).

Views that accept service clients list this class before ``AccessTokenAuthentication``: it answers only
for keys with our prefix and leaves every other bearer token to the JWT class. A key is looked up by its
SHA-256 and the answer cached per process for at most one second, so a revoked, deleted or expired key
stops working everywhere within a second without a query on every request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from authzen import selectors, services

KEY_CACHE_SECONDS = 1.0
TOUCH_EVERY_SECONDS = 60.0
_keys: dict[str, tuple[Any, float]] = {}
_touched: dict[int, float] = {}  # key id -> when this process last recorded its use


@dataclass(frozen=True, slots=True)
class ServiceContext:
    """Who calls with a service key: the client, its role and the one instance it acts for."""

    key_id: int
    client_id: int
    client_name: str
    role: str
    instance_id: int
    instance_slug: str
    expires_at: datetime | None


class ServicePrincipal:
    """``request.user`` of a service client: authenticated, but not a person (no user row)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    pk = None

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def __str__(self) -> str:
        return f"service client {self.ctx.client_name}"


def _lookup(key: str) -> ServiceContext | None:
    now = time.monotonic()
    hit = _keys.get(key)
    if hit is not None and hit[1] > now:
        return hit[0]
    row = selectors.service_key_lookup(key_hash=services.key_hash(key))
    ctx = ServiceContext(*row) if row is not None else None
    if len(_keys) > 10_000:
        _keys.clear()
    _keys[key] = (ctx, now + KEY_CACHE_SECONDS)
    return ctx


def forget_cached_keys() -> None:
    _keys.clear()
    _touched.clear()


class ServiceKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[ServicePrincipal, ServiceContext] | None:
        header = get_authorization_header(request).split()
        if len(header) != 2 or header[0].lower() != self.keyword or not header[1].startswith(b"sk_"):
            return None  # not ours: the JWT class decides
        ctx = _lookup(header[1].decode("ascii", errors="replace"))
        now = timezone.now()
        if ctx is None or (ctx.expires_at is not None and ctx.expires_at <= now):
            raise AuthenticationFailed("The service key is invalid, expired or revoked.", code="service_key_invalid")
        mono = time.monotonic()
        if _touched.get(ctx.key_id, float("-inf")) + TOUCH_EVERY_SECONDS < mono:
            _touched[ctx.key_id] = mono
            services.service_key_touch(key_id=ctx.key_id, now=now, every_seconds=TOUCH_EVERY_SECONDS)
        return ServicePrincipal(ctx), ctx

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
