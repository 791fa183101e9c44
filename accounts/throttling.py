"""Failed-login throttling counted in Redis, per account and per client address.

A window opens at the first failure and lasts one period (the counter's TTL), so there is no clock
boundary at which an attacker's count resets early.

Only failures count, so successful logins and every other endpoint stay unthrottled. Rates come from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (``login_failures_account``, ``login_failures_address``).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import Throttled

_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def _rate(scope: str) -> tuple[int, int]:
    raw = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope]
    count, _, period = raw.partition("/")
    return int(count), _PERIODS[period]


def _keys(*, email: str, address: str) -> list[tuple[str, int, int]]:
    keys = []
    for scope, who in (("login_failures_account", email.strip().lower()), ("login_failures_address", address)):
        limit, period = _rate(scope)
        digest = hashlib.sha256(who.encode()).hexdigest()[:32]
        keys.append((f"throttle:{scope}:{digest}", limit, period))
    return keys


def login_failures_check(*, email: str, address: str) -> None:
    """Raise Throttled (429) if this account or address has used up its failed-login allowance."""
    for key, limit, period in _keys(email=email, address=address):
        if (cache.get(key) or 0) >= limit:
            raise Throttled(wait=period, detail="Too many failed logins; try again later.")


def login_failure_record(*, email: str, address: str) -> None:
    for key, _limit, period in _keys(email=email, address=address):
        cache.add(key, 0, timeout=period)  # opens the window; a no-op while one is open
        try:
            cache.incr(key)
        except ValueError:  # the window closed between add and incr
            cache.add(key, 1, timeout=period)
