"""``/healthz``: 200 when PostgreSQL, Redis and the Celery broker all answer, else 503 naming what is down."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the reason is reported
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_redis() -> str | None:
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_broker() -> str | None:
    from saaskit.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "redis": _check_redis(), "broker": _check_broker()}
    down = sorted(name for name, error in checks.items() if error)
    body = {
        "status": "ok" if not down else "unavailable",
        "checks": {name: ("up" if error is None else "down") for name, error in checks.items()},
        "down": down,
        "errors": {name: error for name, error in checks.items() if error},
    }
    return JsonResponse(body, status=200 if not down else 503)
