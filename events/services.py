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
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.choices import AuditAction
from audit.services import audit_record
from events import relay
from events.catalogue import BY_NAME
from events.choices import DeliveryStatus
from events.consumers import current_event, subscriptions_for
from events.delivery import RunResult, delivery_run
from events.envelope import Event, MalformedEvent, check_payload, event_from_row
from events.errors import EventError
from events.models import Delivery, OutboxEvent, RejectedMessage

__all__ = [
    "BATCH", "OPEN_STATUSES", "MalformedEvent", "ReplayResult", "RunResult", "SweepResult", "bus_sweep",
    "deliveries_retry", "delivery_run", "event_from_row", "event_publish", "events_purge", "events_replay",
    "message_reject", "queues_with_backlog",
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
        id=event_id, name=name, version=BY_NAME[name].version, occurred_at=timezone.now(),
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
    """ONE statement: the outbox row and, in a data-modifying CTE, its delivery rows (one per subscriber)."""
    values = [row.id, row.name, row.version, row.occurred_at, row.instance_id, row.instance_slug,
              row.correlation_id, row.causation_id, json.dumps(row.payload)]
    with connection.cursor() as cursor:
        if not subs:
            cursor.execute(f"INSERT INTO events_outboxevent ({_OUTBOX_COLUMNS}) "
                           f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)", values)
            return []
        subscribers = ", ".join(["(%s, %s)"] * len(subs))
        cursor.execute(
            f"WITH e AS (INSERT INTO events_outboxevent ({_OUTBOX_COLUMNS}) "
            f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb) RETURNING id, occurred_at) "
            f"INSERT INTO events_delivery (event_id, consumer, queue, status, failures, last_error, sent_at, "
            f"created_at, updated_at) "
            f"SELECT e.id, s.consumer, s.queue, 'pending', 0, '', e.occurred_at, e.occurred_at, e.occurred_at "
            f"FROM e, (VALUES {subscribers}) AS s (consumer, queue) RETURNING id, queue, consumer",
            [*values, *(v for sub in subs for v in (sub.name, sub.queue))])
        return [(pk, queue, consumer) for pk, queue, consumer in cursor.fetchall()]


def _claim(qs: Any, *, limit: int = BATCH, **extra: Any) -> list[tuple[int, str]]:
    """In the caller's transaction: lock open deliveries (skipping ones a running consumer holds) and mark them
    pending and sent now. Returns (id, queue) to send after commit."""
    rows = list(qs.select_for_update(skip_locked=True).order_by("id").values_list("id", "queue")[:limit])
    if rows:
        now = timezone.now()
        Delivery.objects.filter(id__in=[pk for pk, _ in rows]).update(
            status=DeliveryStatus.PENDING, sent_at=now, updated_at=now, **extra)
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


def queues_with_backlog(queues: set[str]) -> set[str]:
    """The queues among ``queues`` that hold messages in the broker (an unreachable broker: none known)."""
    from saaskit.celery import app

    busy: set[str] = set()
    try:
        with app.connection_for_read() as conn:
            channel = conn.default_channel
            for queue in sorted(queues):
                try:
                    count = channel.queue_declare(queue=queue, passive=True).message_count
                except conn.channel_errors:  # never declared: nothing queued there
                    count = 0
                if count > 0:
                    busy.add(queue)
    except Exception:
        logger.warning("could not read queue lengths; resending every overdue delivery", exc_info=True)
        return set()
    return busy


def bus_sweep() -> SweepResult:
    """The periodic safety net: resend deliveries not done within the bound (never sent because the publisher
    died after commit, lost by the broker, stuck unacked), send retries that are due, and wake parked deliveries
    nobody woke for a while."""
    now = timezone.now()
    stale = now - timedelta(seconds=float(settings.EVENTS_REDELIVER_AFTER_SECONDS))
    overdue = Delivery.objects.filter(status=DeliveryStatus.PENDING, sent_at__lt=stale)
    # A queue with a backlog is slow, not lossy: resending its deliveries would only pile duplicates on it.
    # Its overdue deliveries are resent once it drains.
    backlog = queues_with_backlog(set(overdue.values_list("queue", flat=True).distinct()))
    resent = _claim_and_send(overdue.exclude(queue__in=backlog), limit=5000)
    retried = _claim_and_send(Delivery.objects.filter(status=DeliveryStatus.RETRYING, next_attempt_at__lte=now),
                              limit=5000)
    woken = _claim_and_send(Delivery.objects.filter(status=DeliveryStatus.PARKED, updated_at__lt=stale), limit=5000)
    return SweepResult(resent=resent, retried=retried, woken=woken)


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
        rows = _claim(qs, limit=100_000, failures=0, next_attempt_at=None)
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
                [Delivery(event_id=row.id, consumer=s.name, queue=s.queue, sent_at=timezone.now()) for s in missing],
                ignore_conflicts=True)
            created += len(missing)
            owed = list(Delivery.objects.filter(event_id=row.id, consumer__in=[s.name for s in subs])
                        .exclude(status=DeliveryStatus.DEAD).values_list("id", "queue"))
        sent += relay.send(owed)
    return ReplayResult(events=total, created=created, sent=sent)


def events_purge(*, now: datetime | None = None) -> int:
    """Delete events older than the retention whose deliveries are all done (open or dead ones are kept), and
    rejected messages older than the retention."""
    cutoff = (now or timezone.now()) - timedelta(days=float(settings.EVENTS_RETENTION_DAYS))
    RejectedMessage.objects.filter(created_at__lt=cutoff).delete()
    deleted = 0
    while True:
        ids = list(OutboxEvent.objects.filter(occurred_at__lt=cutoff)
                   .exclude(deliveries__status__in=[*OPEN_STATUSES, DeliveryStatus.DEAD])
                   .values_list("id", flat=True)[:BATCH])
        if not ids:
            return deleted
        with transaction.atomic():
            Delivery.objects.filter(event_id__in=ids).delete()
            deleted += OutboxEvent.objects.filter(id__in=ids).delete()[1].get("events.OutboxEvent", 0)


def message_reject(*, task_name: str, body: str, reason: str) -> RejectedMessage:
    logger.warning("rejected message for %s: %s", task_name, reason)
    return RejectedMessage.objects.create(task_name=task_name, body=body[:10000], reason=reason[:4000])
