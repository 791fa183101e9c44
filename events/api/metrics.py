"""``GET /metrics``: the bus's metrics in the Prometheus text format (``events.metrics``).

Allowed with ``Authorization: Bearer <METRICS_BEARER_TOKEN>`` (when that setting is set) or from an address in
METRICS_ALLOWED_ADDRESSES (127.0.0.1 and ::1 by default outside production); anyone else gets 403 in the one
error shape. A plain Django view: it is not part of the REST API (nor of its OpenAPI schema).
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST

from events import metrics as bus_metrics


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "fields": {}}}, status=status)


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_BEARER_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    return request.META.get("REMOTE_ADDR", "") in settings.METRICS_ALLOWED_ADDRESSES


def metrics(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return _error(405, "method_not_allowed", f"method {request.method} is not allowed")
    if not _allowed(request):
        return _error(403, "forbidden", "metrics need the bearer token or an allowed address")
    return HttpResponse(bus_metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
