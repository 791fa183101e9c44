"""Attempt throttling counted in Redis: failed logins and registrations, per account (email) and per address.

An attempt is *taken* before any work is done: one Lua script checks every counter of the attempt and,
only if all are under their limits, increments them all (the first increment opens the window, the
counter's TTL). So the check and the count are one atomic step, and N parallel attempts cannot all pass
the check before any of them is counted: at most ``limit`` ever reach the password check.

A window opens at the first attempt and lasts one period, so there is no clock boundary at which an
attacker's count resets early. Logins give the attempt back when they succeed (only failures count);
registrations keep every attempt, so ``email_taken`` answers no more often than the throttle allows.

Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (``login_failures_account``,
``login_failures_address``, ``register_account``, ``register_address``). Emails are counted in their
normal form (``accounts.emails.normalize_email``), addresses as ``saaskit.client_address`` found them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import redis
from django.conf import settings
from rest_framework.exceptions import Throttled

from accounts.emails import normalize_email

_PERIODS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}

# KEYS: the counters; ARGV: limit1, period1, limit2, period2, ...
# Returns 0 when the attempt was counted, else the seconds until the first full counter's window ends.
_TAKE = """
for i, key in ipairs(KEYS) do
  local used = tonumber(redis.call('GET', key) or '0')
  if used >= tonumber(ARGV[2 * i - 1]) then
    local ttl = redis.call('TTL', key)
    if ttl < 0 then
      redis.call('EXPIRE', key, ARGV[2 * i])
      ttl = tonumber(ARGV[2 * i])
    end
    return ttl
  end
end
for i, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then
    redis.call('EXPIRE', key, ARGV[2 * i])
  end
end
return 0
"""

# Gives one attempt back on each counter that still exists (a window that closed meanwhile stays closed).
_GIVE_BACK = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 and tonumber(redis.call('GET', key)) > 0 then
    redis.call('DECR', key)
  end
end
return 0
"""

_client: redis.Redis | None = None
_client_pid: int | None = None


def _redis() -> redis.Redis:
    """A per-process client (recreated after fork); Django's cache API has no atomic check-and-count."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        # The counters live beside the cache (REDIS_CACHE_URL: keys with a TTL, never the broker's database), with
        # the request path's short timeouts.
        _client = redis.Redis.from_url(settings.REDIS_CACHE_URL, socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
                                       socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT)
        _client_pid = os.getpid()
    return _client


def _rate(scope: str) -> tuple[int, int]:
    raw = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope]
    count, _, period = raw.partition("/")
    return int(count), _PERIODS[period]


@dataclass(frozen=True, slots=True)
class Attempt:
    """The counters one attempt was counted on (to give it back after a success)."""

    keys: tuple[str, ...]


def _counters(pairs: tuple[tuple[str, str], ...]) -> tuple[list[str], list[int]]:
    prefix = settings.CACHES["default"].get("KEY_PREFIX") or "saaskit"
    keys: list[str] = []
    args: list[int] = []
    for scope, who in pairs:
        limit, period = _rate(scope)
        digest = hashlib.sha256(who.encode()).hexdigest()[:32]
        keys.append(f"{prefix}:throttle:{scope}:{digest}")
        args += [limit, period]
    return keys, args


def attempt_take(pairs: tuple[tuple[str, str], ...], *, message: str) -> Attempt:
    """Count one attempt on every ``(scope, who)`` counter, atomically, or raise Throttled (429) and count
    nothing when any of them is used up."""
    keys, args = _counters(pairs)
    wait = int(_redis().eval(_TAKE, len(keys), *keys, *args))
    if wait:
        raise Throttled(wait=wait, detail=message)
    return Attempt(tuple(keys))


def attempt_give_back(attempt: Attempt) -> None:
    _redis().eval(_GIVE_BACK, len(attempt.keys), *attempt.keys)


def login_attempt_take(*, email: str, address: str) -> Attempt:
    """Before a login checks a password: count it as a failure unless given back (``attempt_give_back``)."""
    return attempt_take((("login_failures_account", normalize_email(email)), ("login_failures_address", address)),
                        message="Too many failed logins; try again later.")


def register_attempt_take(*, email: str, address: str) -> Attempt:
    """Before a registration looks at the email: every attempt counts, successful or not."""
    return attempt_take((("register_account", normalize_email(email)), ("register_address", address)),
                        message="Too many registration attempts; try again later.")


# Counts one event in a window opened by the first one (INCR, and EXPIRE when it opened it). Returns the count.
_COUNT = """
local used = redis.call('INCR', KEYS[1])
if used == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return used
"""


def failures_count(*, scope: str, who: str, window_seconds: int) -> int:
    """Count one failure of ``who`` in a window of ``window_seconds`` opened by its first failure; returns how
    many the window holds now (1 for the first). Separate from the throttle's counters: those give back."""
    prefix = settings.CACHES["default"].get("KEY_PREFIX") or "saaskit"
    key = f"{prefix}:failures:{scope}:{hashlib.sha256(who.encode()).hexdigest()[:32]}"
    return int(_redis().eval(_COUNT, 1, key, max(1, int(window_seconds))))
