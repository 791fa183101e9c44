"""``/healthz``: 200 when PostgreSQL, Redis and the Celery broker all answer, else 503 naming what is down.

The answer names components and says "up" or "down", nothing more: why a component is down (which can
hold host names, users or paths) goes to the log, never to the anonymous caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_redis() -> None:
    import redis

    redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()


def _check_broker() -> None:
    from saaskit.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=1)


CHECKS: dict[str, Callable[[], None]] = {"database": _check_database, "redis": _check_redis,
                                         "broker": _check_broker}


def _is_up(name: str, probe: Callable[[], None]) -> bool:
    try:
        probe()
    except Exception:  # noqa: BLE001 - any failure means "down"; the reason is logged, not shown
        logger.exception("healthz: %s is down", name)
        return False
    return True


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {name: "up" if _is_up(name, probe) else "down" for name, probe in CHECKS.items()}
    down = sorted(name for name, state in checks.items() if state == "down")
    body = {"status": "ok" if not down else "unavailable", "checks": checks, "down": down}
    return JsonResponse(body, status=200 if not down else 503)
