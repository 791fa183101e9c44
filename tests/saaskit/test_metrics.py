"""The metrics beside the bus's on ``GET /metrics`` (issue 13): HTTP latency per route, token refreshes and reuse
detections, the authz cache's misses and staleness, orders per status and needing attention."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from authz import cache as authz_cache
from orders.models import Order
from tests.factories import DEFAULT_PASSWORD, InstanceFactory, ProfileFactory

pytestmark = pytest.mark.django_db


def samples() -> dict[str, float]:
    response = Client().get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in response.content.decode().splitlines() if line and not line.startswith("#")}


def test_http_requests_are_timed_by_route_pattern_not_raw_path():
    before = samples()
    Client().get("/healthz")
    Client().get("/api/v1/orders/12345/")  # unauthenticated: 401, still one route
    after = samples()

    healthz = 'saaskit_http_request_duration_seconds_count{method="GET",route="/healthz",status="2xx"}'
    order = 'saaskit_http_request_duration_seconds_count{method="GET",route="/api/v1/orders/<int:order_id>/",status="4xx"}'
    assert after[healthz] - before.get(healthz, 0) == 1
    assert after.get(order, 0) - before.get(order, 0) == 1
    assert not any("12345" in name for name in after)


def test_a_method_outside_http_s_usual_ones_is_counted_as_other():
    """A client may send any token as its method: each must not become a label set of its own."""
    before = samples()
    Client().generic("FROBNICATE123", "/healthz")
    after = samples()

    other = 'saaskit_http_request_duration_seconds_count{method="other",route="/healthz",status="2xx"}'
    assert after.get(other, 0) - before.get(other, 0) == 1
    assert not any("FROBNICATE123" in name for name in after)


def test_refreshes_and_reuse_detections_are_counted(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    ProfileFactory(instance=InstanceFactory(slug="acme"), role="customer", user__email="c@acme.test")
    pair = APIClient().post("/api/v1/auth/token", {"email": "c@acme.test", "password": DEFAULT_PASSWORD},
                            format="json").json()
    before = samples()

    assert APIClient().post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json").status_code == 200
    assert APIClient().post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json").status_code == 401
    after = samples()

    assert after["saaskit_token_refreshes_total"] - before.get("saaskit_token_refreshes_total", 0) == 1
    assert after["saaskit_token_reuse_detections_total"] - before.get("saaskit_token_reuse_detections_total", 0) == 1


def test_orders_per_status_and_needing_attention_are_read_when_scraped():
    acme = InstanceFactory(slug="acme")
    Order.objects.create(instance=acme, currency="EUR", status="approved")
    Order.objects.create(instance=acme, currency="EUR", status="canceled", needs_attention=True)

    after = samples()

    assert after['saaskit_orders{status="approved"}'] == 1
    assert after['saaskit_orders{status="canceled"}'] == 1
    assert after['saaskit_orders{status="pending"}'] == 0
    assert after["saaskit_orders_needing_attention"] == 1


def test_authz_cache_misses_and_staleness_reach_prometheus():
    acme = InstanceFactory(slug="acme")
    member = ProfileFactory(instance=acme, role="customer")
    cache = authz_cache.AuthzCache()
    before = samples()

    cache.warm(acme.pk, member.user_id)  # a load from PostgreSQL, or (watcher not caught up) none yet
    authz_cache.watcher.metrics_flush()
    after = samples()

    assert after["saaskit_authz_cache_misses_total"] - before.get("saaskit_authz_cache_misses_total", 0) == cache.loads
    assert "saaskit_authz_cache_staleness_seconds" in after
    assert after["saaskit_authz_cache_staleness_seconds"] >= 0
