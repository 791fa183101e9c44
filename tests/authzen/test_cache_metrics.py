"""``GET /metrics`` counts the decision path's caches: authz cache hits and misses, AuthZEN subject names and
service keys answered from memory or by a query (plain counters on the hot path, handed to Prometheus off it)."""

from __future__ import annotations

import pytest
from django.test import Client

from authz.cache import watcher

pytestmark = pytest.mark.django_db

NAMES = ["saaskit_authz_cache_hits_total", "saaskit_authz_cache_misses_total", "saaskit_authz_slow_checks_total",
         "saaskit_authzen_subject_cache_hits_total", "saaskit_authzen_subject_cache_misses_total",
         "saaskit_service_key_cache_hits_total", "saaskit_service_key_cache_misses_total"]


def samples() -> dict[str, float]:
    response = Client().get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in response.content.decode().splitlines() if line and not line.startswith("#")}


def test_metrics_show_the_decision_caches_hits_and_misses(synced, pep, admin_profile):
    body = {"subject": {"type": "user", "id": str(admin_profile.user_id)}, "action": {"name": "get"},
            "resource": {"type": "orders", "id": "1"}}
    watcher.metrics_flush()
    before = samples()

    for _ in range(3):
        assert pep.post("/authzen/acme/access/v1/evaluation", body, format="json").json() == {"decision": True}
    watcher.metrics_flush()
    after = samples()

    delta = {name: after.get(name, 0) - before.get(name, 0) for name in NAMES}
    assert delta == {
        "saaskit_authz_cache_hits_total": 2, "saaskit_authz_cache_misses_total": 1,  # one load, then memory
        "saaskit_authz_slow_checks_total": 1,
        "saaskit_authzen_subject_cache_hits_total": 2, "saaskit_authzen_subject_cache_misses_total": 1,
        "saaskit_service_key_cache_hits_total": 2, "saaskit_service_key_cache_misses_total": 1,
    }
