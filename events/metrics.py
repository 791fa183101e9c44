"""The bus's Prometheus metrics, served by ``GET /metrics`` (``events.api.metrics``).

Counters and the latency histogram are counted where deliveries end, in whichever process runs them (Celery
workers, granian workers); with ``PROMETHEUS_MULTIPROC_DIR`` set (prometheus-client's multiprocess mode, one
directory shared by the host's processes, emptied when they start) the scrape adds every process up. The gauges
are read from PostgreSQL when scraped (the database is the truth, and any web process can answer).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

DELIVERIES = Counter("saaskit_events_deliveries", "Deliveries that ended a run, by consumer and outcome "
                     "(done, retrying, dead, parked)", ["consumer", "outcome"])
LATENCY = Histogram("saaskit_events_delivery_latency_seconds", "From the event's occurrence to its consumer done",
                    ["consumer"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800))


_children: dict[tuple[str, str], tuple[Any, Any]] = {}  # (consumer, outcome) -> labelled counter, histogram


def delivery_ended(consumer: str, outcome: str, occurred_at: datetime | None = None) -> None:
    """Count a run's outcome (``done`` with the event's occurrence time: the latency, by this host's clock)."""
    children = _children.get((consumer, outcome))
    if children is None:
        children = _children[(consumer, outcome)] = (DELIVERIES.labels(consumer, outcome), LATENCY.labels(consumer))
    children[0].inc()
    if outcome == "done" and occurred_at is not None:
        children[1].observe(max(0.0, time.time() - occurred_at.timestamp()))


class BusStateCollector:
    """Gauges read from the database at scrape time."""

    def collect(self) -> Iterator[Any]:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT status, queue, count(*), extract(epoch FROM clock_timestamp() - min(sent_at)) "
                "FROM events_delivery WHERE status <> 'done' GROUP BY status, queue")
            rows = cursor.fetchall()
        open_ = GaugeMetricFamily("saaskit_events_open_deliveries", "Deliveries not done, by status and queue",
                                  labels=["status", "queue"])
        oldest = GaugeMetricFamily("saaskit_events_oldest_pending_seconds",
                                   "Age of the oldest pending delivery's last send, by queue", labels=["queue"])
        parked = GaugeMetricFamily("saaskit_events_parked_deliveries", "Deliveries parked (waiting for an event)")
        dead = GaugeMetricFamily("saaskit_events_dead_deliveries", "Dead-lettered deliveries")
        unsent = GaugeMetricFamily("saaskit_events_outbox_unsent",
                                   "Pending deliveries whose message was never handed to the broker or is overdue "
                                   "(not done EVENTS_REDELIVER_AFTER_SECONDS after their last send)")
        counts = {"parked": 0, "dead": 0}
        for status, queue, count, age in rows:
            open_.add_metric([status, queue], count)
            counts[status] = counts.get(status, 0) + count
            if status == "pending":
                oldest.add_metric([queue], float(age or 0))
        parked.add_metric([], counts["parked"])
        dead.add_metric([], counts["dead"])
        unsent.add_metric([], _overdue_count())
        yield from (open_, oldest, parked, dead, unsent)


def _overdue_count() -> int:
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM events_delivery WHERE status = 'pending' AND sent_at < "
                       "clock_timestamp() - make_interval(secs => %s)",
                       [float(settings.EVENTS_REDELIVER_AFTER_SECONDS)])
        return int(cursor.fetchone()[0])


class _Forward:
    """A registry's metrics, as a collector of another registry."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()


class _AppState:
    """The gauges other apps register at scrape time (``saaskit.metrics.register_state_collector``)."""

    def collect(self) -> Iterator[Any]:
        from saaskit.metrics import collect_state

        yield from collect_state()


def _forget_dead_processes(directory: str) -> None:
    """Drop the live-mode gauge files of processes of this host that no longer exist. gunicorn's ``child_exit``
    hook is where prometheus-client expects ``mark_process_dead``; granian has no such hook, and a SIGKILLed
    worker runs none, so the scrape does it (the directory is per host, so are the pids)."""
    pids = set()
    for name in os.listdir(directory):
        if name.startswith("gauge_live") and name.endswith(".db"):
            pid = name[:-3].rsplit("_", 1)[-1]
            if pid.isdigit():
                pids.add(int(pid))
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, directory)
        except PermissionError:  # alive, another user's
            pass


def exposition() -> bytes:
    """The text format: this process's counters (in multiprocess mode: every process's) and the gauges."""
    from prometheus_client import REGISTRY

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _forget_dead_processes(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        MultiProcessCollector(registry)
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(BusStateCollector())
    registry.register(_AppState())
    return generate_latest(registry)
