"""Thin Celery tasks of the bus. Stable names, JSON arguments (ids), soft time limits."""

from __future__ import annotations

import json
import select
from typing import Any

from celery import shared_task
from celery.signals import task_postrun, task_prerun
from django.conf import settings
from django.db import close_old_connections, connections
from psycopg import pq

from events import services


@task_postrun.connect(weak=False, dispatch_uid="events.close_old_connections")
def _close_old_connections(**kwargs: Any) -> None:
    """With CELERY_DB_REUSE_MAX the worker keeps its DB connection between tasks; drop it when it broke or
    passed CONN_MAX_AGE (what Django does at the end of every request)."""
    close_old_connections()


@task_prerun.connect(weak=False, dispatch_uid="events.health_check_without_a_round_trip")
def _health_check_without_a_round_trip(**kwargs: Any) -> None:
    """CONN_HEALTH_CHECKS pings a reused connection (``SELECT 1``) at the start of every task: a round trip per
    delivery, about a fifth of the bus's own CPU time in a worker (cProfile, bench/events.py). A connection whose
    socket has received nothing since its last statement was not ended by the server (a terminated session, a
    restart or a failover gets a FATAL message and the socket's close), so it counts as checked. One with anything
    to read, or in any doubt, gets Django's ping as before (and a fresh connection when that fails)."""
    for conn in connections.all(initialized_only=True):
        if conn.health_check_enabled and not conn.health_check_done and _quiet(conn.connection):
            conn.health_check_done = True


def _quiet(raw: Any) -> bool:
    """An open, idle psycopg connection with nothing waiting on its socket (looked at without blocking)."""
    if raw is None or raw.closed or raw.broken:
        return False
    pgconn = raw.pgconn
    if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return False
    try:
        readable, _, _ = select.select([pgconn.socket], [], [], 0)
    except Exception:  # psycopg.OperationalError for a bad socket, OSError, ValueError
        return False
    return not readable


@shared_task(bind=True, name="events.deliver", acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             soft_time_limit=settings.EVENTS_TASK_SOFT_TIME_LIMIT,
             time_limit=settings.EVENTS_TASK_SOFT_TIME_LIMIT + 15)
def deliver(self: Any, *args: Any, **kwargs: Any) -> str:
    """Run delivery ``args[0]`` (an int id), optionally carrying its consumer's name and event envelope
    (``args[1]``, ``args[2]``). Anything else is recorded as a rejected message, never raised. A message the broker
    hands out again (its worker died, or it outlived the visibility timeout) runs from the event log, where a run
    that died is counted as a failed attempt."""
    well_formed = (not kwargs and len(args) in (1, 3) and isinstance(args[0], int) and not isinstance(args[0], bool)
                   and (len(args) == 1 or (isinstance(args[1], str) and isinstance(args[2], dict))))
    if not well_formed:
        services.message_reject(task_name="events.deliver", body=json.dumps([args, kwargs], default=repr),
                                reason="expected an integer delivery id, optionally with its consumer and event")
        return "rejected"
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    if len(args) == 3 and not redelivered:
        return services.delivery_run(delivery_id=args[0], consumer=args[1], event=args[2]).outcome
    return services.delivery_run(delivery_id=args[0]).outcome


@shared_task(name="events.sweep", ignore_result=True, soft_time_limit=120, time_limit=150)
def sweep() -> dict[str, int]:
    result = services.bus_sweep()
    return {"resent": result.resent, "retried": result.retried, "woken": result.woken}


@shared_task(name="events.purge", ignore_result=True, soft_time_limit=600, time_limit=660)
def purge() -> int:
    return services.events_purge()


@shared_task(name="events.noop", ignore_result=True)
def noop(mark: str | None = None) -> None:
    """Baseline for bench/events.py: a raw Celery task that does nothing (the last one of a run stamps ``mark``
    in Redis so the bench knows when the worker got there)."""
    if mark:
        import time

        import redis
        from django.conf import settings

        redis.Redis.from_url(settings.REDIS_URL).set(mark, repr(time.time()), ex=3600)
