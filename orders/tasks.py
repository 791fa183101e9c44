"""orders' periodic task: the saga sweep (deadline and dead letters). Scheduled by beat (CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from orders import services


@shared_task(name="orders.saga_sweep", ignore_result=True, soft_time_limit=120, time_limit=150)
def saga_sweep() -> dict[str, Any]:
    result = services.saga_sweep()
    return {"deadline": len(result.deadline), **result.dead_letters}
