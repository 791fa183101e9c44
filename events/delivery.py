"""Running one delivery: from its message, or from the event log; and recording failures.

- A message that carries its event runs the consumer at once; the run lock (``events_run_lock``, an advisory lock
  tried, never waited for) goes out with the BEGIN of the consumer's first statement, and the run ends in ONE round
  trip (``_finish``: ``events_finish`` checks the message against the log, checks the delivery is owed, marks it
  done, wakes the deliveries parked for it; then COMMIT). Only a verified success commits that way. Anything else,
  a message with the delivery id alone and a message the broker hands out again run from the log
  (``_delivery_run``): ``events_begin`` (commits that a run began; counts an earlier run that died), then claim
  (run lock, read the event), run the consumer, ``events_finish`` and COMMIT. The SQL is in migrations 0005-0007.
- One lock order on both paths: the run lock, the consumer's rows, the delivery row last. A second run of a
  delivery skips while the first holds the run lock; two runs that both got past it meet at the delivery row,
  where the second waits and is refused.
- Either way it is ONE transaction: the consumer's effects, the events it publishes and ``done`` commit together
  or not at all. A redelivered or duplicated message finds the row done and changes nothing. That transaction
  commits with ``synchronous_commit = off`` when it announces nothing outside after its commit (no on_commit
  callbacks, no parked delivery woken): a PostgreSQL crash may forget its last fraction of a second of those,
  consistently (WAL order), and what it forgot is a delivery back to pending, which the sweep sends again. One that
  announces something (events it published, authz change-feed entries, woken deliveries) commits synchronously.
- A failure (the consumer's or the bus's) rolls the run back and is recorded in a second transaction: retrying
  with exponential backoff and jitter, or dead after ``EVENTS_MAX_ATTEMPTS``. ``NotReady`` parks the delivery
  until what it waits for completes in its correlation.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from psycopg import pq

from events import metrics, relay
from events.choices import DeliveryStatus
from events.clock import DatabaseNow
from events.consumers import NotReady, current_event, get_subscription
from events.envelope import Event, MalformedEvent, checked_event, is_envelope
from events.models import Delivery

logger = logging.getLogger(__name__)


def _backoff_seconds(failures: int) -> float:
    """Exponential backoff with jitter: base * 2^(n-1), capped, then scaled by a random factor in [0.5, 1]."""
    base = float(settings.EVENTS_RETRY_BASE_SECONDS)
    cap = float(settings.EVENTS_RETRY_MAX_SECONDS)
    return min(cap, base * 2 ** max(0, failures - 1)) * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class RunResult:
    outcome: str  # done | parked | retrying | dead | skipped | missing
    detail: str = ""


def _begin_statement(raw: Any) -> str:
    """BEGIN as psycopg would send it for this connection (its isolation level and access mode)."""
    parts = ["BEGIN"]
    if raw.isolation_level is not None:
        parts.append("ISOLATION LEVEL " + psycopg.IsolationLevel(raw.isolation_level).name.replace("_", " "))
    if raw.read_only is not None:
        parts.append("READ ONLY" if raw.read_only else "READ WRITE")
    return " ".join(parts)


def delivery_run(*, delivery_id: int, consumer: str | None = None, event: dict[str, Any] | None = None) -> RunResult:
    """Run one delivery. Given the message's ``consumer`` and ``event`` envelope, first from the message (one
    round trip, see ``_run_from_message``); otherwise, or whenever that path does not end in a verified success,
    from the event log (``_delivery_run``), which decides every other outcome."""
    exclusive = None
    if consumer is not None and event is not None:
        result = _run_from_message(delivery_id, consumer, event)
        if isinstance(result, RunResult):
            return result
        if isinstance(result, _ParkSuspected):
            exclusive = result.correlation_id
    return _delivery_run(delivery_id, exclusive=exclusive)


# --- run from the message ------------------------------------------------------------------------------------
# The relay puts the event envelope in the message, so the consumer can run before the bus has read anything. At
# the end ONE round trip, ``[BEGIN;] SELECT events_finish(...); COMMIT``, locks the delivery, checks the message
# against the event log (the log is the truth: a message that differs is never committed), checks the delivery is
# owed, marks it done and wakes parked deliveries; the function raises rather than answer "no", so the COMMIT
# behind it cannot commit the consumer's writes for a delivery that was not owed. Only a verified success commits
# here; a delivery that is not owed is skipped; anything else (a failing consumer, NotReady, a message that does
# not match, an error of the bus) is rolled back and run again from the log, which records the outcome.

_FINISH_ERRORS = {b"EVD01": "missing", b"EVD02": "mismatch", b"EVD03": "not owed"}


class _ConsumerRolledBack(Exception):
    """The consumer marked its transaction for rollback (``transaction.set_rollback``): that is a failure."""

    def __str__(self) -> str:
        return "the consumer marked its transaction for rollback"


def _run_consumer(sub: Any, event: Event) -> None:
    """Call the consumer inside the delivery's open transaction, with ``event`` as the current event (what it
    publishes is caused by it). A consumer that marked the transaction for rollback has failed."""
    token = current_event.set(event)
    try:
        sub.handler(event)
    finally:
        current_event.reset(token)
    if connection.needs_rollback:
        raise _ConsumerRolledBack()


class _FinishRefused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _event_from_message(envelope: Any) -> Event | None:
    """The message's envelope as an Event, or None when it is not one (the log decides then)."""
    if not isinstance(envelope, dict) or not is_envelope(envelope):
        return None
    instance = envelope["instance"]
    try:
        event_id = uuid.UUID(envelope["id"])
        occurred_at = datetime.fromisoformat(envelope["time"])
        if occurred_at.tzinfo is None:
            return None
        return checked_event(event_id, envelope["name"], envelope["version"], occurred_at,
                      None if instance is None else instance["id"], None if instance is None else instance["slug"],
                      envelope["correlation_id"], envelope["causation_id"], envelope["payload"])
    except (ValueError, MalformedEvent):
        return None


class _RunningElsewhere(Exception):
    """Another run of this delivery holds its run lock: this one steps aside."""


class _RunLockWithBegin:
    """Django execute wrapper for the consumer's statements on the message path: with the consumer's first
    statement, take the delivery's run lock (``events_run_lock``) in the same round trip as the BEGIN psycopg would
    otherwise send alone, so the lock costs nothing. A consumer that runs no statement needs no lock (the finish
    locks the delivery row)."""

    def __init__(self, delivery_id: int, correlation_id: str) -> None:
        self.delivery_id = int(delivery_id)
        self.correlation_id = correlation_id
        self.tried = False

    def __call__(self, execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
        if not self.tried:
            self.tried = True
            raw = connection.connection
            statement = f"SELECT events_run_lock({self.delivery_id}, {_literal(raw, self.correlation_id)})"
            if _in_transaction(statement).get_value(0, 0) != b"t":
                raise _RunningElsewhere()
        return execute(sql, params, many, context)


@dataclass(frozen=True)
class _ParkSuspected:
    """The consumer was not ready: run it again from the log holding its correlation lock, then park it."""
    correlation_id: str


def _run_from_message(delivery_id: int, consumer_name: str,
                      envelope: dict[str, Any]) -> RunResult | _ParkSuspected | None:
    """None: not settled here, run it from the log."""
    event = _event_from_message(envelope)
    sub = get_subscription(consumer_name)
    if event is None or sub is None:
        return None
    outermost = connection.get_autocommit()  # else a caller's transaction (tests): it commits, not us
    try:
        with transaction.atomic():
            with connection.execute_wrapper(_RunLockWithBegin(delivery_id, event.correlation_id)):
                _run_consumer(sub, event)
            woken = _finish(delivery_id, consumer_name, envelope, commit=outermost)
    except _RunningElsewhere:
        return RunResult("skipped", "running")
    except NotReady:
        return _ParkSuspected(event.correlation_id)
    except _FinishRefused as exc:
        if exc.reason == "not owed":
            return RunResult("skipped", str(exc))
        if exc.reason == "mismatch":
            logger.warning("delivery %s: %s; running it from the log", delivery_id, exc)
        return None
    except SoftTimeLimitExceeded as exc:  # no time left to run it again: record it here
        return _record_failure(delivery_id, exc)
    except Exception:
        return None  # the run from the log does it again and records the outcome (or raises if the bus is down)
    metrics.delivery_ended(consumer_name, "done", event.occurred_at)
    relay.send(woken)
    return RunResult("done")


def _finish(delivery_id: int, consumer_name: str, envelope: dict[str, Any] | None, *,
            commit: bool) -> list[tuple[int, str]]:
    db = connections[DEFAULT_DB_ALIAS]  # once (each use of the ``connection`` proxy looks it up again)
    raw = db.connection
    pgconn = raw.pgconn
    call = (f"SELECT events_finish({int(delivery_id)}, {_literal(raw, consumer_name)}, "
            f"{'NULL' if envelope is None else _literal(raw, json.dumps(envelope)) + '::jsonb'}, "
            f"{int(settings.EVENTS_WAKE_BATCH)}, {'true' if db.run_on_commit else 'false'})")  # see _announces
    parts = [call, "COMMIT"] if commit else [call]
    if commit and pgconn.transaction_status == pq.TransactionStatus.IDLE:  # the consumer ran no statement
        parts.insert(0, _begin_statement(raw))
    sql = "; ".join(parts)
    started = time.monotonic()
    with db.wrap_database_errors:
        pgconn.send_query(sql.encode())
        results = []
        while (result := pgconn.get_result()) is not None:
            results.append(result)
        if db.queries_logged:
            db.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
        for result in results:
            if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
                message = (result.get_error_message() or "the finish failed").strip()
                reason = _FINISH_ERRORS.get(result.error_field(pq.DiagnosticField.SQLSTATE) or b"")
                if reason:
                    raise _FinishRefused(reason, message)
                raise psycopg.DatabaseError(message)
    woken = next(r for r in results if r.status == pq.ExecStatus.TUPLES_OK).get_value(0, 0)
    if woken == b"[]":  # nothing parked was woken: the common case
        return []
    return [(pk, queue) for pk, queue in json.loads(woken)]


def _announces() -> bool:
    """Whether the delivery's transaction announces something outside the database after it commits (on_commit
    callbacks: the relay of the events the consumer published, authz change-feed entries, a consumer's own): then
    it must commit synchronously (migration 0007)."""
    return bool(connection.run_on_commit)


def _literal(raw: Any, value: str) -> str:
    """``value`` as an SQL string literal, quoted by libpq (``PQescapeLiteral``, for this connection's encoding and
    settings): psycopg's ``sql.Literal`` went through its Python adapters, two of them a fifth of the message
    path's own CPU time in a worker (cProfile, bench/events.py). PostgreSQL text cannot hold NUL."""
    if "\x00" in value:
        raise ValueError("a string with a NUL character cannot be sent to PostgreSQL")
    return pq.Escaping(raw.pgconn).escape_literal(value.encode()).decode()


# --- run from the log ------------------------------------------------------------------------------------------

# A run from the log costs three round trips to PostgreSQL (it is the path of resends, retries and redelivered
# messages, not of the first delivery): ``events_begin`` (committed at once: counts an earlier run from the log that
# died as a failed attempt, dead-letters the delivery when the attempts are used up, marks this run begun), then
# ``[BEGIN;] SELECT events_claim(...)`` (tries the run lock, reads the event if the delivery is owed), the consumer,
# and ``events_finish(...); COMMIT`` as on the message path. The functions are in migration 0005; no prepared
# statements, so PgBouncer in transaction mode is fine.

@dataclass(frozen=True)
class _Claim:
    was: str | None  # the status before the claim (None: no such delivery; "running": another run holds it)
    consumer: str | None  # set when the delivery is owed and this run holds its run lock
    event_fields: list[Any]


def _exec(sql: str) -> Any:
    """One simple query on the libpq connection beneath Django (so a hand-built BEGIN goes in the same round trip);
    errors become Django's and show in the query log like any other statement. Returns the last result."""
    raw = connection.connection
    started = time.monotonic()
    with connection.wrap_database_errors:
        result = raw.pgconn.exec_(sql.encode())
        if connection.queries_logged:
            connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
        if result.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
            raise psycopg.DatabaseError((result.get_error_message() or "the statement failed").strip())
    return result


def _in_transaction(statement: str) -> Any:
    """``statement`` inside the caller's atomic block; sent with the BEGIN psycopg would have sent on its own."""
    connection.ensure_connection()
    raw = connection.connection
    if raw.pgconn.transaction_status == pq.TransactionStatus.IDLE:
        return _exec(f"{_begin_statement(raw)}; {statement}")
    return _exec(statement)


def _begin_run(delivery_id: int) -> str:
    """``events_begin``: 'go', 'missing', 'running', 'exhausted' (dead-lettered now) or the status of a
    delivery that is not owed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT events_begin(%s, %s)", [int(delivery_id), int(settings.EVENTS_MAX_ATTEMPTS)])
        return cursor.fetchone()[0]


def _claim_for_run(delivery_id: int) -> _Claim:
    """``events_claim`` in one round trip, inside the caller's atomic block."""
    claim = json.loads(_in_transaction(f"SELECT events_claim({int(delivery_id)})").get_value(0, 0))
    run = claim.get("run")
    if run is None:
        return _Claim(was=claim["was"], consumer=None, event_fields=[])
    consumer_name, event_id, name, version, occurred_at, *rest = run
    return _Claim(was=claim["was"], consumer=consumer_name,
                  event_fields=[uuid.UUID(event_id), name, version, datetime.fromisoformat(occurred_at), *rest])


class _Malformed(Exception):
    pass


def _delivery_run(delivery_id: int, *, exclusive: str | None = None) -> RunResult:
    """Run one delivery from the event log in ONE transaction: take its run lock and read the event if it is owed,
    run the consumer, mark it done (``events_finish``), commit. Whatever the consumer wrote or published commits
    with ``done`` or not at all. Any failure (the consumer's or the bus's) rolls it back and is recorded as a
    failed attempt in a second transaction; a run that dies is counted by the next one (``events_begin``).

    A consumer that is not ready runs once more holding its correlation lock exclusively (``exclusive``, the
    correlation id), and is parked in that transaction: no completion can slip between "not ready" and "parked"."""
    began = _begin_run(delivery_id)
    if began == "missing":
        return RunResult("missing")
    if began == "exhausted":
        logger.error("delivery %s dead: its runs from the log did not finish", delivery_id)
        metrics.delivery_ended(Delivery.objects.filter(pk=delivery_id).values_list("consumer", flat=True).first()
                               or "", "dead")
        return RunResult("dead", "its runs did not finish")
    if began != "go":
        return RunResult("skipped", began)
    result = _run_claimed(delivery_id, exclusive)
    if isinstance(result, _ParkSuspected):
        result = _run_claimed(delivery_id, result.correlation_id)
    assert isinstance(result, RunResult)
    return result


def _run_claimed(delivery_id: int, exclusive: str | None) -> RunResult | _ParkSuspected:
    outermost = connection.get_autocommit()
    parked: NotReady | None = None
    try:
        with transaction.atomic():
            if exclusive is not None:
                _in_transaction(f"SELECT events_lock_correlation({_literal(connection.connection, exclusive)}, "
                                f"true)")
            claim = _claim_for_run(delivery_id)
            if claim.consumer is None:
                return RunResult("missing") if claim.was is None else RunResult("skipped", claim.was)
            try:
                event = checked_event(*claim.event_fields)
            except MalformedEvent as exc:
                raise _Malformed(str(exc)) from exc  # roll back, then dead-letter it below
            sub = get_subscription(claim.consumer)
            if sub is None:
                raise LookupError(f"consumer {claim.consumer!r} is not registered in this worker")
            if exclusive is None:
                _run_consumer(sub, event)
            else:
                try:
                    with transaction.atomic():  # a savepoint: the consumer's writes go if it is still not ready
                        _run_consumer(sub, event)
                except NotReady as exc:
                    parked = exc
                    _park(delivery_id, event, exc)
            if parked is None:
                woken = _finish(delivery_id, claim.consumer, None, commit=outermost)
    except _FinishRefused as exc:
        return RunResult("skipped", str(exc))  # a run from the message committed meanwhile
    except _Malformed as exc:
        return _record_malformed(delivery_id, str(exc))
    except NotReady:
        return _ParkSuspected(event.correlation_id)
    except Exception as exc:
        try:  # the consumer's failure or the bus's (a lost connection, a time limit): a failed attempt either way
            return _record_failure(delivery_id, exc)
        except DatabaseError:
            raise exc from None  # the database is gone: the marker left by events_begin counts this run later
    if parked is not None:
        metrics.delivery_ended(claim.consumer, "parked")
        return RunResult("parked", str(parked))
    metrics.delivery_ended(claim.consumer, "done", event.occurred_at)
    relay.send(woken)
    return RunResult("done")


def _park(delivery_id: int, event: Event, exc: NotReady) -> None:
    """In the run's transaction, under the exclusive correlation lock: parked until a delivery of what it waits
    for completes in its correlation (``parked_at`` keeps the first time, for EVENTS_PARK_MAX_SECONDS)."""
    Delivery.objects.filter(pk=delivery_id).update(
        status=DeliveryStatus.PARKED, last_error=f"not ready: {exc}"[:4000], running_since=None,
        updated_at=DatabaseNow(), park_event=exc.waits_for, park_correlation=event.correlation_id,
        parked_at=Coalesce("parked_at", DatabaseNow()))


def _owed() -> Any:
    """Deliveries that are owed, by the one definition of it (``events_owed`` in SQL, migration 0005)."""
    return Delivery.objects.alias(
        owed=RawSQL("events_owed(events_delivery.status, events_delivery.next_attempt_at)", [],
                    output_field=BooleanField())).filter(owed=True)


def _record_malformed(delivery_id: int, reason: str) -> RunResult:
    """A malformed event can never succeed: dead-letter its delivery (if it is still owed) with the reason."""
    changed = _owed().filter(pk=delivery_id).update(
        status=DeliveryStatus.DEAD, running_since=None, last_error=f"malformed event: {reason}"[:4000],
        updated_at=DatabaseNow())
    if not changed:
        return RunResult("skipped", "changed meanwhile")
    logger.warning("delivery %s: malformed event parked as failed: %s", delivery_id, reason)
    return RunResult("dead", reason)


def _record_failure(delivery_id: int, exc: BaseException) -> RunResult:
    """Record a failed run in its own transaction (times from the database's clock)."""
    with transaction.atomic():
        delivery = _owed().select_for_update().filter(pk=delivery_id).first()
        if delivery is None:
            return RunResult("skipped", "changed meanwhile")
        row = Delivery.objects.filter(pk=delivery_id)
        failures = delivery.failures + 1
        error = f"{type(exc).__name__}: {exc}"
        if failures >= settings.EVENTS_MAX_ATTEMPTS:
            row.update(status=DeliveryStatus.DEAD, last_error=error[:4000], failures=failures, running_since=None,
                       updated_at=DatabaseNow())
            logger.error("delivery %s (%s) dead after %s attempts: %s", delivery.pk, delivery.consumer, failures, error)
            metrics.delivery_ended(delivery.consumer, "dead")
            return RunResult("dead", error)
        row.update(status=DeliveryStatus.RETRYING, last_error=error[:4000], failures=failures, running_since=None,
                   updated_at=DatabaseNow(),
                   next_attempt_at=DatabaseNow() + timedelta(seconds=_backoff_seconds(failures)))
        logger.warning("delivery %s (%s) failed (%s), retrying: %s", delivery.pk, delivery.consumer, failures, error)
        metrics.delivery_ended(delivery.consumer, "retrying")
        return RunResult("retrying", error)
