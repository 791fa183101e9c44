"""Test-only consumers on queue ``events_test``; their effects go to a plain table, so double applies show.

Registered by the ``test_consumers`` fixture in the test process, and at import in worker subprocesses started
with EVENTS_TEST_CONSUMERS=1 and EVENTS_EXTRA_CONSUMER_MODULES=tests.events.consumers_for_tests.

``event-suspicious-activity`` drives behaviour through ``payload.kind`` (``detail`` is the argument):
record, sleep (seconds), hold (seconds: like sleep, after a first statement, so the run holds its run lock),
kill (SIGKILLs its own worker process, every time), boom (always fails), flaky (fails the first N tries), step ("<chain>:<i>", needs
step i-1 first, else NotReady; publish the steps of a chain with one correlation id, the chain's name), chain (records and publishes a follow-up), chain-boom (publishes, then fails).
Every other catalogued event gets a sink ``tests.sink.<event>`` that records it.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import redis
from django.conf import settings
from django.db import connection

from events import publish
from events.catalogue import CATALOGUE
from events.consumers import NotReady, consumer, unregister

QUEUE = "events_test"
ACTIVITY = "tests.activity"
EFFECTS_DDL = ("CREATE TABLE IF NOT EXISTS events_test_effect (id bigserial PRIMARY KEY, consumer text NOT NULL, "
               "event_id uuid NOT NULL, event_name text NOT NULL, detail text NOT NULL)")


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def record(consumer_name: str, event: Any, detail: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO events_test_effect (consumer, event_id, event_name, detail) "
                       "VALUES (%s, %s, %s, %s)",
                       [consumer_name, str(event.id), event.name, detail])


def effects(consumer_name: str | None = None) -> list[tuple[str, str, str]]:
    """(consumer, event name, detail) of every recorded effect, in insertion order."""
    sql = "SELECT consumer, event_name, detail FROM events_test_effect"
    params: list[str] = []
    if consumer_name:
        sql += " WHERE consumer = %s"
        params.append(consumer_name)
    with connection.cursor() as cursor:
        cursor.execute(sql + " ORDER BY id", params)
        return [tuple(row) for row in cursor.fetchall()]


def reset_effects() -> None:
    with connection.cursor() as cursor:
        cursor.execute(EFFECTS_DDL)
        cursor.execute("TRUNCATE events_test_effect")


def _step_done(detail: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM events_test_effect WHERE consumer = %s AND detail = %s", [ACTIVITY, detail])
        return cursor.fetchone() is not None


def on_activity(event: Any) -> None:
    kind, detail = event.payload["kind"], event.payload["detail"]
    if kind == "record":
        record(ACTIVITY, event, detail)
    elif kind == "sleep":
        redis_client().set(f"events-test:started:{event.id}", os.getpid())
        time.sleep(float(detail))
        record(ACTIVITY, event, detail)
    elif kind == "hold":
        record(ACTIVITY, event, detail)  # the first statement: the run lock is taken with its BEGIN
        redis_client().set(f"events-test:started:{event.id}", os.getpid())
        time.sleep(float(detail))
    elif kind == "kill":
        redis_client().incr(f"events-test:killed:{event.id}")
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "boom":
        raise RuntimeError(f"boom {detail}")
    elif kind == "flaky":
        tries = redis_client().incr(f"events-test:flaky:{event.id}")
        if tries <= int(detail):
            raise RuntimeError(f"flaky try {tries}")
        record(ACTIVITY, event, f"{detail} after {tries - 1} failures")
    elif kind == "step":
        chain, _, index = detail.rpartition(":")
        if int(index) > 1 and not _step_done(f"{chain}:{int(index) - 1}"):
            raise NotReady(f"{chain}:{int(index) - 1} not applied yet", waits_for="event-suspicious-activity")
        record(ACTIVITY, event, detail)
    elif kind in ("chain", "chain-boom"):
        record(ACTIVITY, event, detail)
        publish("event-suspicious-activity", {"kind": "record", "detail": f"{detail}/next", "user_id": None},
                instance=event.instance_id)
        if kind == "chain-boom":
            raise RuntimeError("failed after publishing")
    else:
        raise ValueError(f"unknown test kind {kind!r}")


def _sink(event_name: str) -> Any:
    def sink(event: Any) -> None:
        record(f"tests.sink.{event_name}", event, event.instance_slug or "")

    sink.__name__ = f"sink_{event_name.replace('-', '_')}"
    return sink


SINK_EVENTS = [spec.name for spec in CATALOGUE if spec.name != "event-suspicious-activity"]


def register() -> None:
    consumer("event-suspicious-activity", name=ACTIVITY, queue=QUEUE)(on_activity)
    for name in SINK_EVENTS:
        consumer(name, name=f"tests.sink.{name}", queue=QUEUE)(_sink(name))


def unregister_all() -> None:
    unregister(ACTIVITY)
    for name in SINK_EVENTS:
        unregister(f"tests.sink.{name}")


if os.environ.get("EVENTS_TEST_CONSUMERS") == "1":
    register()
