"""Failed-login throttling: fixed windows counted in Redis, per account and per client address.

Only failures count, so successful logins and every other endpoint stay unthrottled. Rates come from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (``login_failures_account``, ``login_failures_address``).
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import Throttled

_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def _rate(scope: str) -> tuple[int, int]:
    raw = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope]
    count, _, period = raw.partition("/")
    return int(count), _PERIODS[period]


def _keys(*, email: str, address: str) -> list[tuple[str, int, int]]:
    now = int(time.time())
    keys = []
    for scope, who in (("login_failures_account", email.strip().lower()), ("login_failures_address", address)):
        limit, period = _rate(scope)
        window = now - now % period
        digest = hashlib.sha256(who.encode()).hexdigest()[:32]
        keys.append((f"throttle:{scope}:{digest}:{window}", limit, window + period - now))
    return keys


def login_failures_check(*, email: str, address: str) -> None:
    """Raise Throttled (429) if this account or address has used up its failed-login allowance."""
    for key, limit, remaining in _keys(email=email, address=address):
        if (cache.get(key) or 0) >= limit:
            raise Throttled(wait=remaining, detail="Too many failed logins; try again later.")


def login_failure_record(*, email: str, address: str) -> None:
    for key, _limit, remaining in _keys(email=email, address=address):
        if not cache.add(key, 1, timeout=remaining + 1):
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=remaining + 1)
