"""Running one delivery: from its message in one round trip, or from the event log; and recording failures.

- A message that carries its event runs the consumer at once and ends in ONE round trip (``_finish``: check the
  message against the log, check the delivery is owed, mark it done, COMMIT); only a verified success commits
  that way. Anything else, and a message with the delivery id alone, runs from the log (``_delivery_run``): claim
  the delivery (one prepared statement sent with BEGIN), run the consumer, COMMIT.
- Either way it is ONE transaction: the consumer's effects, the events it publishes and ``done`` commit together
  or not at all. A redelivered or duplicated message finds the row done and changes nothing. That transaction
  commits with ``synchronous_commit = off``: a PostgreSQL crash may forget its last fraction of a second of them,
  consistently (WAL order), and what it forgot is a delivery back to pending, which the sweep sends again.
- A failure rolls the run back and is recorded in a second transaction: parked (``NotReady``), retrying with
  exponential backoff and jitter, or dead after ``EVENTS_MAX_ATTEMPTS``.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
import psycopg.sql
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg import pq

from events import relay
from events.choices import DeliveryStatus
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
    if consumer is not None and event is not None:
        result = _run_from_message(delivery_id, consumer, event)
        if result is not None:
            return result
    try:
        return _delivery_run(delivery_id)
    except _ClaimStatementLost:
        return _delivery_run(delivery_id)


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


def _run_from_message(delivery_id: int, consumer_name: str, envelope: dict[str, Any]) -> RunResult | None:
    """None: not settled here, run it from the log."""
    event = _event_from_message(envelope)
    sub = get_subscription(consumer_name)
    if event is None or sub is None:
        return None
    outermost = connection.get_autocommit()  # else a caller's transaction (tests): it commits, not us
    try:
        with transaction.atomic():
            _run_consumer(sub, event)
            woken = _finish(delivery_id, consumer_name, envelope, commit=outermost)
    except _FinishRefused as exc:
        if exc.reason == "not owed":
            return RunResult("skipped", str(exc))
        if exc.reason == "mismatch":
            logger.warning("delivery %s: %s; running it from the log", delivery_id, exc)
        return None
    except SoftTimeLimitExceeded as exc:  # no time left to run it again: record it here
        return _record_failure(delivery_id, exc, parked=False)
    except Exception:
        return None  # the run from the log does it again and records the outcome (or raises if the bus is down)
    relay.send(woken)
    return RunResult("done")


def _finish(delivery_id: int, consumer_name: str, envelope: dict[str, Any], *, commit: bool) -> list[tuple[int, str]]:
    raw = connection.connection
    pgconn = raw.pgconn
    call = (f"SELECT events_finish({int(delivery_id)}, {_literal(raw, consumer_name)}, "
            f"{_literal(raw, json.dumps(envelope))}::jsonb, {int(settings.EVENTS_WAKE_BATCH)})")
    parts = [call, "COMMIT"] if commit else [call]
    if commit and pgconn.transaction_status == pq.TransactionStatus.IDLE:  # the consumer ran no statement
        parts.insert(0, _begin_statement(raw))
    sql = "; ".join(parts)
    started = time.monotonic()
    with connection.wrap_database_errors:
        pgconn.send_query(sql.encode())
        results = []
        while (result := pgconn.get_result()) is not None:
            results.append(result)
        if connection.queries_logged:
            connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
        for result in results:
            if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
                message = (result.get_error_message() or "the finish failed").strip()
                reason = _FINISH_ERRORS.get(result.error_field(pq.DiagnosticField.SQLSTATE) or b"")
                if reason:
                    raise _FinishRefused(reason, message)
                raise psycopg.DatabaseError(message)
    woken = next(r for r in results if r.status == pq.ExecStatus.TUPLES_OK).get_value(0, 0)
    return [(pk, queue) for pk, queue in json.loads(woken)]


def _literal(raw: Any, value: str) -> str:
    return psycopg.sql.Literal(value).as_string(raw)


# --- run from the log ------------------------------------------------------------------------------------------

# The run from the log costs two round trips to PostgreSQL, the claim and COMMIT. The claim is ONE prepared
# statement (planning this statement costs more than running it): it marks the delivery done if it is owed, claims
# the parked deliveries its completion wakes and returns the event; if the consumer then fails, the transaction
# rolls back and ``done`` with it. It goes out as one simple query, ``[PREPARE ...;] BEGIN; EXECUTE ...``, on the
# libpq connection under Django's atomic block: psycopg reads the transaction status from libpq, so it sends no
# BEGIN of its own and Django's COMMIT commits this transaction. The arguments are ints formatted into the text.
_CLAIM_STATEMENT = "events_claim_v1"
_CLAIM_SQL = (
    "WITH claimed AS (UPDATE events_delivery SET status = 'done', done_at = clock_timestamp(), "
    "updated_at = clock_timestamp(), last_error = '' WHERE id = $1 AND (status = 'pending' OR "
    "(status = 'retrying' AND (next_attempt_at IS NULL OR next_attempt_at <= clock_timestamp()))) "
    "RETURNING consumer, event_id), "
    "parked AS (SELECT id FROM events_delivery WHERE status = 'parked' AND EXISTS (SELECT FROM claimed) "
    "ORDER BY updated_at, id LIMIT $2 FOR UPDATE SKIP LOCKED), "
    "woken AS (UPDATE events_delivery d SET status = 'pending', sent_at = now(), updated_at = now() "
    "FROM parked WHERE d.id = parked.id RETURNING d.id, d.queue) "
    "SELECT json_build_object("
    "'was', (SELECT status FROM events_delivery WHERE id = $1), "
    "'run', (SELECT json_build_array(c.consumer, e.id, e.name, e.version, e.occurred_at, e.instance_id, "
    "e.instance_slug, e.correlation_id, e.causation_id, e.payload) "
    "FROM claimed c JOIN events_outboxevent e ON e.id = c.event_id), "
    "'woken', (SELECT coalesce(json_agg(json_build_array(id, queue)), '[]') FROM woken))::text, "
    "set_config('synchronous_commit', 'off', true)"
)
# The psycopg connections on which the claim is prepared (a prepared statement lives as long as its session).
_claim_prepared: weakref.WeakSet[Any] = weakref.WeakSet()


@dataclass(frozen=True)
class _Claim:
    was: str | None  # the status before the claim (None: no such delivery)
    consumer: str | None  # set when the delivery was owed and is now done in this transaction
    event_fields: list[Any]
    woken: list[tuple[int, str]]


class _ClaimStatementLost(Exception):
    """The session lost the prepared claim (``DISCARD ALL`` by a pooler, say): prepare it again and retry."""


def _claim_for_run(delivery_id: int) -> _Claim:
    """The claim (see ``_CLAIM_SQL``) in one round trip, inside the caller's atomic block."""
    connection.ensure_connection()
    raw = connection.connection
    pgconn = raw.pgconn
    args = (int(delivery_id), int(settings.EVENTS_WAKE_BATCH))
    prepared = settings.EVENTS_PREPARED_CLAIM
    parts = []
    if prepared and raw not in _claim_prepared:
        parts.append(f"PREPARE {_CLAIM_STATEMENT} (bigint, integer) AS {_CLAIM_SQL}")
    if pgconn.transaction_status == pq.TransactionStatus.IDLE:
        parts.append(_begin_statement(raw))
    if prepared:
        parts.append(f"EXECUTE {_CLAIM_STATEMENT}({args[0]}, {args[1]})")
    else:  # planned every time: for poolers that do not keep a session's prepared statements
        parts.append(_CLAIM_SQL.replace("$1", str(args[0])).replace("$2", str(args[1])))
    sql = "; ".join(parts)
    started = time.monotonic()
    with connection.wrap_database_errors:  # errors become Django's, and mark a broken connection for closing
        result = pgconn.exec_(sql.encode())
        if connection.queries_logged:  # visible to DEBUG and CaptureQueriesContext like any other statement
            connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
        if result.status != pq.ExecStatus.TUPLES_OK:
            if result.error_field(pq.DiagnosticField.SQLSTATE) == b"26000":  # invalid_sql_statement_name
                _claim_prepared.discard(raw)
                raise _ClaimStatementLost()
            raise psycopg.DatabaseError((result.get_error_message() or "the claim failed").strip())
    if prepared:
        _claim_prepared.add(raw)
    claim = json.loads(result.get_value(0, 0))
    run = claim["run"]
    woken = [(pk, queue) for pk, queue in claim["woken"]]
    if run is None:
        return _Claim(was=claim["was"], consumer=None, event_fields=[], woken=woken)
    consumer_name, event_id, name, version, occurred_at, *rest = run
    return _Claim(was=claim["was"], consumer=consumer_name, woken=woken,
                  event_fields=[uuid.UUID(event_id), name, version, datetime.fromisoformat(occurred_at), *rest])


class _Malformed(Exception):
    pass




def _delivery_run(delivery_id: int) -> RunResult:
    """Run one delivery in ONE transaction: claim it if it is owed (marking it done and claiming the parked
    deliveries to wake), run the consumer, commit. Whatever the consumer wrote or published commits with ``done``
    or not at all. On an error the transaction is rolled back and the outcome (parked, retrying, dead) is recorded
    in a second one."""
    handler_started = False
    try:
        with transaction.atomic():
            claim = _claim_for_run(delivery_id)
            if claim.consumer is None:
                return RunResult("missing") if claim.was is None else RunResult("skipped", claim.was)
            try:
                event = checked_event(*claim.event_fields)
            except MalformedEvent as exc:
                raise _Malformed(str(exc)) from exc  # roll the claim back, then dead-letter it below
            sub = get_subscription(claim.consumer)
            handler_started = True
            if sub is None:
                raise LookupError(f"consumer {claim.consumer!r} is not registered in this worker")
            _run_consumer(sub, event)
    except _Malformed as exc:
        return _record_malformed(delivery_id, str(exc))
    except NotReady as exc:
        return _record_failure(delivery_id, exc, parked=True)
    except Exception as exc:
        if not handler_started:
            raise  # the bus itself failed (database gone): the message is retried by the broker or the sweep
        return _record_failure(delivery_id, exc, parked=False)
    relay.send(claim.woken)
    return RunResult("done")


def _record_malformed(delivery_id: int, reason: str) -> RunResult:
    """A malformed event can never succeed: dead-letter its delivery (if it is still owed) with the reason."""
    owed = Delivery.objects.filter(pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING])
    changed = owed.update(status=DeliveryStatus.DEAD, last_error=f"malformed event: {reason}"[:4000],
                          updated_at=timezone.now())
    if not changed:
        return RunResult("skipped", "changed meanwhile")
    logger.warning("delivery %s: malformed event parked as failed: %s", delivery_id, reason)
    return RunResult("dead", reason)


def _is_owed(status: str, next_attempt_at: datetime | None, now: datetime) -> bool:
    if status in (DeliveryStatus.DONE, DeliveryStatus.DEAD, DeliveryStatus.PARKED):
        return False  # parked ones wait to be woken (set back to pending) by a completion or the sweep
    return not (status == DeliveryStatus.RETRYING and next_attempt_at and next_attempt_at > now)


def _record_failure(delivery_id: int, exc: BaseException, *, parked: bool) -> RunResult:
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None or not _is_owed(delivery.status, delivery.next_attempt_at, timezone.now()):
            return RunResult("skipped", "changed meanwhile")
        if parked:
            _record(delivery, status=DeliveryStatus.PARKED, error=f"not ready: {exc}")
            return RunResult("parked", str(exc))
        failures = delivery.failures + 1
        error = f"{type(exc).__name__}: {exc}"
        if failures >= settings.EVENTS_MAX_ATTEMPTS:
            _record(delivery, status=DeliveryStatus.DEAD, error=error, failures=failures)
            logger.error("delivery %s (%s) dead after %s attempts: %s", delivery.pk, delivery.consumer, failures, error)
            return RunResult("dead", error)
        _record(delivery, status=DeliveryStatus.RETRYING, error=error, failures=failures,
                next_attempt_at=timezone.now() + timedelta(seconds=_backoff_seconds(failures)))
        logger.warning("delivery %s (%s) failed (%s), retrying: %s", delivery.pk, delivery.consumer, failures, error)
        return RunResult("retrying", error)


def _record(delivery: Delivery, *, status: str, error: str, **fields: Any) -> None:
    delivery.status = status
    delivery.last_error = error[:4000]
    for key, value in fields.items():
        setattr(delivery, key, value)
    delivery.save(update_fields=["status", "last_error", "updated_at", *fields])
