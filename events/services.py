"""Writes of the bus: publish, sweep, retry, replay, purge. Running a delivery lives in ``events.delivery``, sending
in ``events.relay``; ``delivery_run`` and ``RunResult`` are re-exported here for callers of the bus's writes.

Delivery guarantees:
- ``event_publish`` runs ONE INSERT statement in the caller's transaction: the outbox row (the event log) and,
  in a data-modifying CTE, one ``Delivery`` row per subscriber. A rolled-back transaction leaves nothing.
- After commit (``transaction.on_commit``) the relay hands one Celery message per delivery to the
  subscriber's queue (``events.deliver``, JSON args: the delivery id, the consumer's name and the event envelope).
  If the process dies between commit and send, or the broker loses the message, or it sits in Redis' unacked set,
  the periodic sweep sends again (the delivery id alone) every delivery not done ``EVENTS_REDELIVER_AFTER_SECONDS``
  after its last send.
- A delivery runs in ONE transaction with the consumer's effects and the events it publishes (``events.delivery``),
  so a redelivered or duplicated message changes nothing.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, CharField, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Concat

from audit.choices import AuditAction
from audit.services import audit_record
from events import relay
from events.catalogue import BY_NAME
from events.choices import DeliveryStatus
from events.clock import DatabaseNow
from events.consumers import current_event, get_subscription, subscriptions_for
from events.delivery import RunResult, delivery_run
from events.envelope import Event, MalformedEvent, check_payload, event_from_row
from events.errors import EventError
from events.models import Delivery, OutboxEvent, RejectedMessage

__all__ = [
    "BATCH", "OPEN_STATUSES", "BackfillResult", "MalformedEvent", "ReplayResult", "RunResult", "SweepResult",
    "bus_sweep", "deliveries_backfill", "deliveries_in_broker", "deliveries_retry", "delivery_run", "event_from_row",
    "event_publish", "events_purge", "events_replay", "events_replay_to_consumer",
    "message_reject", "parked_expire",
]

logger = logging.getLogger(__name__)


OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING, DeliveryStatus.PARKED)
BATCH = 500


def _instance_ref(instance: Any) -> tuple[int | None, str | None]:
    if instance is None:
        return None, None
    if isinstance(instance, bool):
        raise EventError(f"instance must be an Instance, an id or None, not {instance!r}")
    if isinstance(instance, int):
        return instance, None
    pk = getattr(instance, "pk", None)
    if not isinstance(pk, int):
        raise EventError(f"instance must be an Instance, an id or None, not {instance!r}")
    return pk, getattr(instance, "slug", None)


def event_publish(*, name: str, payload: dict[str, Any], instance: Any, causation_id: str | None = None,
                  correlation_id: str | None = None) -> OutboxEvent:
    """Validate the event against the catalogue and INSERT its outbox row in the caller's transaction.

    Raises ``UnknownEventError`` / ``PayloadSchemaError`` here, at the call site. Outside ``atomic()`` the row
    is its own transaction. Inside a consumer, cause and correlation default to the event being consumed.
    """
    check_payload(name, payload)
    instance_id, instance_slug = _instance_ref(instance)
    current = current_event.get()
    if causation_id is None and current is not None:
        causation_id = str(current.id)
    if correlation_id is None and current is not None and causation_id == str(current.id):
        correlation_id = current.correlation_id
    for label, value in (("causation_id", causation_id), ("correlation_id", correlation_id)):
        if value is not None and len(str(value)) > 64:
            raise EventError(f"{label} is longer than 64 characters")
    event_id = uuid.uuid4()
    row = OutboxEvent(
        id=event_id, name=name, version=BY_NAME[name].version, occurred_at=None,
        instance_id=instance_id, instance_slug=instance_slug, correlation_id=str(correlation_id or event_id),
        causation_id=None if causation_id is None else str(causation_id), payload=payload,
    )
    inserted = _insert(row, subscriptions_for(name))
    row._state.adding = False
    row._state.db = "default"
    if inserted and settings.EVENTS_RELAY_ON_COMMIT:
        envelope = Event(id=row.id, name=name, version=row.version, occurred_at=row.occurred_at,
                         instance_id=instance_id, instance_slug=instance_slug, correlation_id=row.correlation_id,
                         causation_id=row.causation_id, payload=payload).to_dict()  # checked above; carried along
        messages = [(pk, queue, consumer, envelope) for pk, queue, consumer in inserted]
        transaction.on_commit(partial(relay.send, messages))
    return row


_OUTBOX_COLUMNS = ("id, name, version, occurred_at, instance_id, instance_slug, correlation_id, causation_id, "
                   "payload")


def _insert(row: OutboxEvent, subs: list[Any]) -> list[tuple[int, str, str]]:
    """ONE statement: the outbox row and, in a data-modifying CTE, its delivery rows (one per subscriber). The
    event occurs (and its deliveries are sent) at the database's clock; ``row.occurred_at`` is set from it."""
    values = [row.id, row.name, row.version, row.instance_id, row.instance_slug,
              row.correlation_id, row.causation_id, json.dumps(row.payload)]
    with connection.cursor() as cursor:
        if not subs:
            cursor.execute(f"INSERT INTO events_outboxevent ({_OUTBOX_COLUMNS}) "
                           f"VALUES (%s, %s, %s, clock_timestamp(), %s, %s, %s, %s, %s::jsonb) RETURNING occurred_at",
                           values)
            row.occurred_at = cursor.fetchone()[0]
            return []
        subscribers = ", ".join(["(%s, %s)"] * len(subs))
        cursor.execute(
            f"WITH e AS (INSERT INTO events_outboxevent ({_OUTBOX_COLUMNS}) "
            f"VALUES (%s, %s, %s, clock_timestamp(), %s, %s, %s, %s, %s::jsonb) RETURNING id, occurred_at) "
            f"INSERT INTO events_delivery (event_id, consumer, queue, status, failures, last_error, sent_at, "
            f"created_at, updated_at) "
            f"SELECT e.id, s.consumer, s.queue, 'pending', 0, '', e.occurred_at, e.occurred_at, e.occurred_at "
            f"FROM e, (VALUES {subscribers}) AS s (consumer, queue) RETURNING id, queue, consumer, sent_at",
            [*values, *(v for sub in subs for v in (sub.name, sub.queue))])
        rows = cursor.fetchall()
        row.occurred_at = rows[0][3]
        return [(pk, queue, consumer) for pk, queue, consumer, _ in rows]


def _claim(qs: Any, *, limit: int = BATCH, **extra: Any) -> list[tuple[int, str]]:
    """In the caller's transaction: lock open deliveries (skipping ones a running consumer holds) and mark them
    pending and sent now. Returns (id, queue) to send after commit."""
    rows = list(qs.select_for_update(skip_locked=True).order_by("id").values_list("id", "queue")[:limit])
    if rows:
        Delivery.objects.filter(id__in=[pk for pk, _ in rows]).update(
            status=DeliveryStatus.PENDING, sent_at=DatabaseNow(), updated_at=DatabaseNow(), **extra)
    return rows


def _claim_and_send(qs: Any, *, limit: int = BATCH, **extra: Any) -> int:
    with transaction.atomic():
        rows = _claim(qs, limit=limit, **extra)
    return relay.send(rows)


@dataclass(frozen=True)
class SweepResult:
    resent: int
    retried: int
    woken: int
    expired: int = 0  # parked longer than EVENTS_PARK_MAX_SECONDS: dead-lettered
    skipped: bool = False  # another sweep was running


_ARGS_ID = re.compile(r"^[\[(]\s*(\d+)")


def _message_delivery_id(raw: bytes) -> int | None:
    """The delivery id of a kombu-on-Redis message of ``events.deliver`` (from Celery's ``argsrepr`` header)."""
    try:
        message = json.loads(raw)
        if isinstance(message, list):  # the unacked hash stores [message, exchange, routing key]
            message = message[0]
        headers = message.get("headers") or {}
        if headers.get("task") != "events.deliver":
            return None
        found = _ARGS_ID.match(headers.get("argsrepr") or "")
        return int(found.group(1)) if found else None
    except (ValueError, TypeError, AttributeError, KeyError, IndexError):
        return None


def _database_epoch() -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extract(epoch FROM clock_timestamp())")
        return float(cursor.fetchone()[0])


def deliveries_in_broker(queues: set[str], *, chunk: int = 5000) -> set[int] | None:
    """Ids of the deliveries whose messages wait in ``queues`` or were handed to a worker (unacked) less than
    EVENTS_REDELIVER_AFTER_SECONDS ago: they are slow, not lost. None when the broker cannot be read. Reads every
    message of those queues (LRANGE in chunks), so the sweep does it only for queues that have overdue deliveries."""
    from saaskit.celery import app

    found: set[int] = set()
    try:
        with app.connection_for_read() as conn:
            channel = conn.default_channel
            client = channel.client
            for queue in sorted(queues):
                start = 0
                while batch := client.lrange(queue, start, start + chunk - 1):
                    found.update(i for i in map(_message_delivery_id, batch) if i is not None)
                    start += chunk
            # Held by a worker (unacked) since less than the redelivery age: running or prefetched. Held longer, its
            # worker is likely dead (the broker would hand it out again only after the visibility timeout): resend.
            held_since = _database_epoch() - float(settings.EVENTS_REDELIVER_AFTER_SECONDS)
            tags = client.zrangebyscore(channel.unacked_index_key, held_since, "+inf")
            for start in range(0, len(tags), chunk):
                for raw in client.hmget(channel.unacked_key, tags[start:start + chunk]):
                    delivery_id = _message_delivery_id(raw) if raw else None
                    if delivery_id is not None:
                        found.add(delivery_id)
    except Exception:
        logger.warning("could not read the broker's queues; resending every overdue delivery", exc_info=True)
        return None
    return found


# Periodic jobs run under a transaction-level advisory lock (safe behind PgBouncer in transaction mode), tried and
# never waited for: with beat on several hosts, a second sweep or purge that starts while one runs does nothing.
_PERIODIC_LOCK = 1163281475
_SWEEP, _PURGE = 1, 2


def _periodic_lock(job: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [_PERIODIC_LOCK, job])
        return bool(cursor.fetchone()[0])


def bus_sweep() -> SweepResult:
    """The periodic safety net: resend deliveries not done within the bound (never sent because the publisher
    died after commit, lost by the broker, stuck unacked), send retries that are due, dead-letter deliveries parked
    too long and wake parked deliveries nobody woke for a while. One transaction under the sweep's lock (a second
    sweep meanwhile is ``skipped``); the messages go out after it commits."""
    stale = DatabaseNow() - timedelta(seconds=float(settings.EVENTS_REDELIVER_AFTER_SECONDS))
    with transaction.atomic():
        if not _periodic_lock(_SWEEP):
            return SweepResult(resent=0, retried=0, woken=0, expired=0, skipped=True)
        overdue = Delivery.objects.filter(status=DeliveryStatus.PENDING, sent_at__lt=stale)
        # An overdue delivery whose message still waits in its queue (or is held by a worker) is slow, not lost:
        # resending it would only pile duplicates on a busy queue. Every other one is resent now, whatever the
        # backlog.
        queues = set(overdue.values_list("queue", flat=True).distinct())
        waiting = deliveries_in_broker(queues) if queues else set()
        if waiting:
            overdue = overdue.alias(waiting=RawSQL("events_delivery.id = ANY(%s)", [sorted(waiting)],
                                                   output_field=BooleanField())).filter(waiting=False)
        resend = _claim(overdue, limit=5000)
        due = Delivery.objects.filter(status=DeliveryStatus.RETRYING, next_attempt_at__lte=DatabaseNow())
        retry = _claim(due, limit=5000)
        expired = parked_expire()
        wake = _claim(Delivery.objects.filter(status=DeliveryStatus.PARKED, updated_at__lt=stale), limit=5000)
    return SweepResult(resent=relay.send(resend), retried=relay.send(retry), woken=relay.send(wake),
                       expired=expired)


def parked_expire() -> int:
    """Dead-letter deliveries parked longer than EVENTS_PARK_MAX_SECONDS (by the database's clock): what they wait
    for never arrived."""
    limit = timedelta(seconds=float(settings.EVENTS_PARK_MAX_SECONDS))
    expired = Delivery.objects.filter(status=DeliveryStatus.PARKED, parked_at__lt=DatabaseNow() - limit)
    count = expired.update(status=DeliveryStatus.DEAD, updated_at=DatabaseNow(), last_error=Concat(
        Value("prerequisite never arrived (parked since "), Cast("parked_at", CharField()), Value("): "),
        "last_error", output_field=CharField()))
    if count:
        logger.error("%s parked deliveries dead-lettered: prerequisite never arrived", count)
    return count


@dataclass(frozen=True)
class _InstanceRef:
    """An instance as the outbox row names it (id and slug), for the audit entry."""

    pk: int
    slug: str


def deliveries_retry(*, delivery_ids: list[int] | None = None, all_dead: bool = False, actor: Any = None) -> int:
    """Re-deliver dead-lettered deliveries (by id, or all of them) with a fresh retry budget. Audited
    (``dead_letter_retry``, one entry per instance naming the deliveries) in the transaction that claims them."""
    qs = Delivery.objects.filter(status=DeliveryStatus.DEAD)
    if not all_dead:
        qs = qs.filter(id__in=delivery_ids or [])
    with transaction.atomic():
        rows = _claim(qs, limit=100_000, failures=0, next_attempt_at=None, parked_at=None,
                      running_since=None)
        claimed = (Delivery.objects.filter(id__in=[pk for pk, _ in rows]).order_by("id")
                   .values_list("id", "consumer", "event__instance_id", "event__instance_slug"))
        by_instance: dict[int | None, list[tuple[int, str, str]]] = {}
        for pk, consumer, instance_id, slug in claimed:
            by_instance.setdefault(instance_id, []).append((pk, consumer, slug or ""))
        for instance_id, items in sorted(by_instance.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
            audit_record(action=AuditAction.DEAD_LETTER_RETRY, actor=actor,
                         instance=_InstanceRef(instance_id, items[0][2]) if instance_id is not None else None,
                         target=("events.delivery", ",".join(str(pk) for pk, _, _ in items)[:64]),
                         before={"status": "dead", "deliveries": [pk for pk, _, _ in items]},
                         after={"status": "pending", "consumers": sorted({c for _, c, _ in items})})
    return relay.send(rows)


@dataclass(frozen=True)
class ReplayResult:
    events: int
    created: int
    sent: int


def events_replay(*, since: datetime, name: str | None = None, consumer: str | None = None) -> ReplayResult:
    """Re-deliver events since ``since`` to their current subscribers. Missing deliveries (a consumer
    added later) are created; every matching delivery is sent again and the idempotency record makes that a
    no-op for those already done. Dead ones are left to ``deliveries_retry``."""
    events = OutboxEvent.objects.filter(occurred_at__gte=since)
    if name:
        events = events.filter(name=name)
    return _replay(events, consumer)


def events_replay_to_consumer(*, event_ids: list[Any], consumer: str | None = None) -> ReplayResult:
    """``events_replay`` for the given events only (an operator's pick in the console): to ``consumer``, or to
    every current subscriber of each event when None."""
    return _replay(OutboxEvent.objects.filter(id__in=list(event_ids)), consumer)


def _replay(events: Any, consumer: str | None) -> ReplayResult:
    total = created = sent = 0
    for row in events.order_by("occurred_at").only("id", "name").iterator(chunk_size=BATCH):
        total += 1
        subs = [s for s in subscriptions_for(row.name) if consumer is None or s.name == consumer]
        if not subs:
            continue
        with transaction.atomic():
            existing = set(Delivery.objects.filter(event_id=row.id).values_list("consumer", flat=True))
            missing = [s for s in subs if s.name not in existing]
            Delivery.objects.bulk_create(
                [Delivery(event_id=row.id, consumer=s.name, queue=s.queue) for s in missing], ignore_conflicts=True)
            created += len(missing)
            replayed = Delivery.objects.filter(event_id=row.id, consumer__in=[s.name for s in subs]).exclude(
                status=DeliveryStatus.DEAD)
            owed = list(replayed.values_list("id", "queue"))
            replayed.exclude(status=DeliveryStatus.DONE).update(sent_at=DatabaseNow(), updated_at=DatabaseNow())
        sent += relay.send(owed)
    return ReplayResult(events=total, created=created, sent=sent)


@dataclass(frozen=True)
class BackfillResult:
    created: int
    sent: int


def deliveries_backfill(*, consumer: str, since: datetime) -> BackfillResult:
    """Create and send the deliveries to ``consumer`` (registered in this process) of its events since ``since``
    that have none: subscribers are fixed when an event is published, from the publishing process's registry, so
    during a rolling deploy that adds a consumer the old processes publish without it. Run once the new code runs
    everywhere, with ``since`` the deploy's start; running it again creates nothing."""
    sub = get_subscription(consumer)
    if sub is None:
        raise EventError(f"unknown consumer {consumer!r}")
    created: list[tuple[int, str]] = []
    last_id = None
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "WITH batch AS (SELECT e.id FROM events_outboxevent e WHERE e.name = %s AND e.occurred_at >= %s "
                "AND (%s::uuid IS NULL OR e.id > %s::uuid) ORDER BY e.id LIMIT %s), "
                "made AS (INSERT INTO events_delivery (event_id, consumer, queue, status, failures, last_error, "
                "sent_at, created_at, updated_at) SELECT id, %s, %s, 'pending', 0, '', clock_timestamp(), "
                "clock_timestamp(), clock_timestamp() FROM batch "
                "ON CONFLICT ON CONSTRAINT events_delivery_once_per_consumer DO NOTHING RETURNING id, queue) "
                "SELECT (SELECT max(id::text) FROM batch), coalesce((SELECT json_agg(json_build_array(id, queue)) "
                "FROM made), '[]')",
                [sub.event_name, since, last_id, last_id, BATCH, sub.name, sub.queue])
            last_id, made = cursor.fetchone()
        made = json.loads(made) if isinstance(made, str) else made
        created += [(pk, queue) for pk, queue in made]
        if last_id is None:
            break
    return BackfillResult(created=len(created), sent=relay.send(created))


def events_purge(*, now: datetime | None = None) -> int:
    """Delete events older than the retention whose deliveries are all done (open or dead ones are kept), and
    rejected messages older than the retention."""
    cutoff = (now or DatabaseNow()) - timedelta(days=float(settings.EVENTS_RETENTION_DAYS))
    RejectedMessage.objects.filter(created_at__lt=cutoff).delete()
    deleted = 0
    while True:
        with transaction.atomic():  # batch by batch, each under the purge's lock
            if not _periodic_lock(_PURGE):
                return deleted  # another purge is running
            ids = list(OutboxEvent.objects.filter(occurred_at__lt=cutoff)
                       .exclude(deliveries__status__in=[*OPEN_STATUSES, DeliveryStatus.DEAD])
                       .values_list("id", flat=True)[:BATCH])
            if not ids:
                return deleted
            Delivery.objects.filter(event_id__in=ids).delete()
            deleted += OutboxEvent.objects.filter(id__in=ids).delete()[1].get("events.OutboxEvent", 0)


def message_reject(*, task_name: str, body: str, reason: str) -> RejectedMessage:
    logger.warning("rejected message for %s: %s", task_name, reason)
    return RejectedMessage.objects.create(task_name=task_name, body=body[:10000], reason=reason[:4000])
