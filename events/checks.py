"""System checks: the broker settings the bus's at-least-once delivery relies on (``manage.py check``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register


@register("events")
def check_delivery_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    if not getattr(settings, "CELERY_TASK_ACKS_LATE", False):
        problems.append(Error("CELERY_TASK_ACKS_LATE must be True: a message is acked before its delivery is done.",
                              id="events.E001"))
    if not getattr(settings, "CELERY_TASK_REJECT_ON_WORKER_LOST", False):
        problems.append(Error("CELERY_TASK_REJECT_ON_WORKER_LOST must be True: a killed pool child acks its "
                              "message.", id="events.E002"))
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        problems.append(Error("CELERY_TASK_ALWAYS_EAGER runs consumers inside the publisher's request.",
                              id="events.E003"))
    if getattr(settings, "CELERY_WORKER_PREFETCH_MULTIPLIER", 4) != 1:
        problems.append(Warning("CELERY_WORKER_PREFETCH_MULTIPLIER should be 1: prefetched messages wait unacked "
                                "behind a slow consumer.", id="events.W001"))
    redeliver = float(settings.EVENTS_REDELIVER_AFTER_SECONDS)
    if redeliver <= settings.EVENTS_TASK_SOFT_TIME_LIMIT:
        problems.append(Warning("EVENTS_REDELIVER_AFTER_SECONDS should exceed EVENTS_TASK_SOFT_TIME_LIMIT, or the "
                                "sweep resends deliveries that are still running (harmless, wasteful).",
                                id="events.W002"))
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    if visibility <= settings.EVENTS_TASK_SOFT_TIME_LIMIT:
        problems.append(Warning("The broker's visibility_timeout should exceed EVENTS_TASK_SOFT_TIME_LIMIT, or Redis "
                                "hands running deliveries to another worker.", id="events.W003"))
    location = settings.CACHES.get("default", {}).get("LOCATION")
    if "redis" in settings.CACHES.get("default", {}).get("BACKEND", "").lower() and location in (
            settings.REDIS_URL, settings.CELERY_BROKER_URL):
        problems.append(Warning("The cache shares the broker's Redis database: cache.clear() (FLUSHDB) or an eviction "
                                "drops queued messages. Give it its own (REDIS_CACHE_URL).", id="events.W004"))
    if not settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("socket_timeout"):
        problems.append(Warning("The broker has no socket_timeout: with Redis paused or partitioned away, a request "
                                "that publishes hangs (REDIS_SOCKET_TIMEOUT).", id="events.W005"))
    return problems
