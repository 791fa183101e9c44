"""orders' periodic task: the saga sweep (deadline, dead letters, expired Idempotency-Key records).

Scheduled by beat (``CELERY_BEAT_SCHEDULE["orders-saga-sweep"]``, the saga block of saaskit/settings.py)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from orders import services
from payments.idempotency import idempotency_records_purge


@shared_task(name="orders.saga_sweep", ignore_result=True, soft_time_limit=120, time_limit=150)
def saga_sweep() -> dict[str, Any]:
    result = services.saga_sweep()
    purged = idempotency_records_purge()  # Idempotency-Key records past their 24 h
    return {"deadline": len(result.deadline), **result.dead_letters, "idempotency_purged": purged}
