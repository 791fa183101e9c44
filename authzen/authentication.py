"""``Authorization: Bearer sk_...``: a service client's API key (DRF authentication).

Views that accept service clients list this class before ``AccessTokenAuthentication``: it answers only
for keys with our prefix and leaves every other bearer token to the JWT class. A key is looked up by its
SHA-256: warm, that is one dict lookup per process (``ServiceKeys``: digest -> the client it authenticates,
or None for an unknown, revoked or deactivated one). The entries are trusted until the authz change feed
says a key, a client or the instance changed (``authzen.receivers`` and the services publish ``key`` and
``instance`` changes; the watcher of ``authz.cache`` applies them), and only while that watcher is in sync,
so a revoked or deleted key, or a key of a deactivated instance, stops working everywhere within a second.
Expiry is checked on every request against the wall clock; the last-used time is written at most once per
``TOUCH_EVERY_SECONDS`` per key and process.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from authz import changefeed
from authz.cache import memory_ok, watcher
from authzen import selectors, services

TOUCH_EVERY_SECONDS = 60.0
_MISSING = object()
_sha256 = hashlib.sha256
_wall = time.time


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
    expires_ts: float = field(default=float("inf"), compare=False)  # expires_at as a Unix time (hot path)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> ServiceContext:
        expires_at = row[6]
        return cls(*row, expires_ts=expires_at.timestamp() if expires_at is not None else float("inf"))


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


class ServiceKeys:
    """Per process: key digest -> ServiceContext, or None (unknown, revoked, or its instance inactive).
    Bounded (oldest first out); emptied by any ``key`` or ``instance`` change in the feed (both are rare,
    and a refill costs one query per key in use)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self.entries: dict[str, ServiceContext | None] = {}
        self.touched: dict[int, float] = {}  # key id -> when this process last recorded its use (monotonic)
        self.hits = 0
        self.misses = 0

    def on_change(self, change: changefeed.Change) -> None:
        if change.kind in (changefeed.KEY, changefeed.INSTANCE):
            self.entries.clear()

    def on_clear(self) -> None:
        self.entries.clear()

    def counts(self) -> dict[str, int]:
        return {"key_hits": self.hits, "key_misses": self.misses}

    def store(self, digest: str, ctx: ServiceContext | None, generation: int) -> None:
        with watcher.lock:
            if watcher.generation != generation:
                return
            while len(self.entries) >= self.max_entries:
                del self.entries[next(iter(self.entries))]
            self.entries[digest] = ctx


service_keys = ServiceKeys()
watcher.follow(service_keys)
_key_of = service_keys.entries.get


def _lookup(key: str) -> ServiceContext | None:
    """The client a key authenticates (expiry not checked here), or None."""
    digest = _sha256(key.encode()).hexdigest()
    if memory_ok[0]:
        ctx = _key_of(digest, _MISSING)
        if ctx is not _MISSING:
            service_keys.hits += 1
            return ctx  # type: ignore[return-value]
    service_keys.misses += 1
    watcher.ensure_started()
    generation = watcher.generation
    row = selectors.service_key_lookup(key_hash=digest)
    ctx = ServiceContext.from_row(row) if row is not None else None
    if memory_ok[0]:
        service_keys.store(digest, ctx, generation)
    return ctx


def authenticate_key(key: str) -> ServiceContext | None:
    """The context of a usable key (known, not revoked, not expired, its instance active), or None; records
    its use at most once per ``TOUCH_EVERY_SECONDS`` per process. For DRF below and for lean HTTP paths."""
    ctx = _lookup(key)
    if ctx is None or ctx.expires_ts <= _wall():
        return None
    mono = time.monotonic()
    if service_keys.touched.get(ctx.key_id, float("-inf")) + TOUCH_EVERY_SECONDS < mono:
        service_keys.touched[ctx.key_id] = mono
        services.service_key_touch(key_id=ctx.key_id, now=timezone.now(), every_seconds=TOUCH_EVERY_SECONDS)
    return ctx


def forget_cached_keys() -> None:
    with watcher.lock:
        service_keys.on_clear()
    service_keys.touched.clear()


class ServiceKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[ServicePrincipal, ServiceContext] | None:
        header = get_authorization_header(request).split()
        if len(header) != 2 or header[0].lower() != self.keyword or not header[1].startswith(b"sk_"):
            return None  # not ours: the JWT class decides
        ctx = authenticate_key(header[1].decode("ascii", errors="replace"))
        if ctx is None:
            raise AuthenticationFailed("The service key is invalid, expired or revoked.", code="service_key_invalid")
        return ServicePrincipal(ctx), ctx

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
