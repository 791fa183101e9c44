"""Process-wide Prometheus metrics that are not the bus's, and the hook through which apps add gauges read at
scrape time. ``GET /metrics`` (``events.api.metrics``) serves them with the bus's.

Kept at the bottom of the layers so every app can count into it. Counters and histograms follow
prometheus-client's multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set (the scrape adds every granian and
Celery process up); scrape-time collectors read PostgreSQL, the truth any web process can answer from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

HTTP_LATENCY = Histogram(
    "saaskit_http_request_duration_seconds",
    "Time to answer an HTTP request, by route pattern, method and status class",
    ["route", "method", "status"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
TOKEN_REFRESHES = Counter("saaskit_token_refreshes", "Refresh-token rotations that issued a new pair")
TOKEN_REUSES = Counter("saaskit_token_reuse_detections", "Reused refresh tokens (their family was revoked)")
AUTHZ_CACHE_HITS = Counter("saaskit_authz_cache_hits", "Checks the authz cache answered from memory")
AUTHZ_CACHE_MISSES = Counter("saaskit_authz_cache_misses", "Subjects the authz cache loaded from PostgreSQL")
AUTHZ_SLOW_CHECKS = Counter("saaskit_authz_slow_checks", "Checks the authz cache's warm path did not answer")
AUTHZ_STALENESS = Gauge("saaskit_authz_cache_staleness_seconds",
                        "Seconds since the authz cache last caught up with the change feed (the largest process)",
                        multiprocess_mode="livemax")  # dead processes dropped at scrape
# The caches that follow the authz change feed beside it (``authz.cache.watcher.follow``), by count name.
AUTHZ_FOLLOWER_COUNTS = {
    "subject_hits": Counter("saaskit_authzen_subject_cache_hits", "AuthZEN subject names resolved from memory"),
    "subject_misses": Counter("saaskit_authzen_subject_cache_misses", "AuthZEN subject names resolved by a query"),
    "key_hits": Counter("saaskit_service_key_cache_hits", "Service keys authenticated from memory"),
    "key_misses": Counter("saaskit_service_key_cache_misses", "Service keys authenticated by a query"),
}

_state_collectors: list[Callable[[], Iterator[Any]]] = []


def register_state_collector(collect: Callable[[], Iterator[Any]]) -> None:
    """Add a function yielding metric families read at scrape time (an app's ``ready()`` calls this)."""
    if collect not in _state_collectors:
        _state_collectors.append(collect)


def collect_state() -> Iterator[Any]:
    for collect in list(_state_collectors):
        yield from collect()


_http_latency_children: dict[tuple[str, str, int], Any] = {}
_HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def http_request_observed(*, route: str, method: str, status: int, seconds: float) -> None:
    """One request into the latency histogram. The labelled child is kept per (route, method, status class):
    ``labels()`` is the same child every time, but finding it (a lock and the label checks) cost as much as
    the observation itself on the decision endpoints' path. Routes are patterns and any other method counts as
    ``other`` (a client may send any token as its method), so the label sets, and the dict, stay small."""
    if method not in _HTTP_METHODS:
        method = "other"
    key = (route, method, status // 100)
    child = _http_latency_children.get(key)
    if child is None:
        child = _http_latency_children[key] = HTTP_LATENCY.labels(route, method, f"{status // 100}xx")
    child.observe(seconds)
