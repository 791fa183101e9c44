"""Writes of the bus: publish (outbox row), relay (outbox -> deliveries -> broker), run a delivery, sweep, purge,
retry, replay.

Delivery guarantees:
- ``event_publish`` only INSERTs an outbox row in the caller's transaction; a rolled-back transaction leaves
  nothing to send. After commit, the row is relayed at once (``transaction.on_commit``); if that process dies or
  the broker is down, the periodic sweep relays it.
- Relaying creates one ``Delivery`` per subscriber in the same transaction that marks the row relayed, then
  sends one Celery message per delivery (``events.deliver`` on the subscriber's queue). A delivery not done
  ``EVENTS_REDELIVER_AFTER_SECONDS`` after its last send is sent again by the sweep (a lost or stuck message).
- ``delivery_run`` locks the delivery row, runs the consumer in a savepoint and marks the row done, all in one
  transaction: a redelivered or duplicated message finds it done and changes nothing.
"""

from __future__ import annotations

import contextvars
import logging
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events.catalogue import BY_NAME
from events.choices import DeliveryStatus
from events.consumers import NotReady, get_subscription, subscriptions_for
from events.envelope import Event, check_payload
from events.errors import EventError
from events.models import Delivery, OutboxEvent, RejectedMessage

logger = logging.getLogger(__name__)

# The event whose consumer is running: events published meanwhile default to it as cause and share its
# correlation id.
_current_event: contextvars.ContextVar[Event | None] = contextvars.ContextVar("events_current_event", default=None)

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
    current = _current_event.get()
    if causation_id is None and current is not None:
        causation_id = str(current.id)
    if correlation_id is None and current is not None and causation_id == str(current.id):
        correlation_id = current.correlation_id
    event_id = uuid.uuid4()
    row = OutboxEvent(
        id=event_id, name=name, version=BY_NAME[name].version, occurred_at=timezone.now(),
        instance_id=instance_id, instance_slug=instance_slug, correlation_id=str(correlation_id or event_id),
        causation_id=None if causation_id is None else str(causation_id), payload=payload,
    )
    row.save(force_insert=True)
    if settings.EVENTS_RELAY_ON_COMMIT:
        transaction.on_commit(lambda: _relay_quietly([event_id]))
    return row


def _relay_quietly(event_ids: list[uuid.UUID]) -> None:
    try:
        events_relay(event_ids=event_ids)
    except Exception:  # the sweep relays it later; the caller's commit already succeeded
        logger.exception("relay after commit failed for %s; the sweep will retry", event_ids)


def _send(deliveries: Iterable[tuple[int, str]]) -> int:
    """Hand messages to the broker; a failure is logged and left to the sweep (the rows say what is owed)."""
    from events.tasks import deliver

    sent = 0
    for delivery_id, queue in deliveries:
        try:
            deliver.apply_async(args=[delivery_id], queue=queue)
            sent += 1
        except Exception:
            logger.exception("could not send delivery %s to queue %s; the sweep will resend it", delivery_id, queue)
    return sent


def events_relay(*, event_ids: list[uuid.UUID] | None = None, limit: int = BATCH) -> int:
    """Turn committed, unrelayed outbox rows into deliveries and send them. Returns how many events it relayed."""
    with transaction.atomic():
        qs = OutboxEvent.objects.select_for_update(skip_locked=True).filter(relayed_at__isnull=True)
        if event_ids is not None:
            qs = qs.filter(id__in=event_ids)
        rows = list(qs.order_by("occurred_at").only("id", "name")[:limit])
        if not rows:
            return 0
        now = timezone.now()
        deliveries = Delivery.objects.bulk_create([
            Delivery(event_id=row.id, consumer=sub.name, queue=sub.queue, sent_at=now)
            for row in rows for sub in subscriptions_for(row.name)
        ])
        OutboxEvent.objects.filter(id__in=[row.id for row in rows]).update(relayed_at=now)
        to_send = [(d.pk, d.queue) for d in deliveries]
    _send(to_send)
    return len(rows)


def _backoff_seconds(failures: int) -> float:
    """Exponential backoff with jitter: base * 2^(n-1), capped, then scaled by a random factor in [0.5, 1]."""
    base = float(settings.EVENTS_RETRY_BASE_SECONDS)
    cap = float(settings.EVENTS_RETRY_MAX_SECONDS)
    return min(cap, base * 2 ** max(0, failures - 1)) * random.uniform(0.5, 1.0)


class MalformedEvent(Exception):  # noqa: N818
    pass


def event_from_row(row: OutboxEvent) -> Event:
    """Rebuild and re-check the envelope; ``MalformedEvent`` says what is wrong."""
    if row.name not in BY_NAME:
        raise MalformedEvent(f"unknown event {row.name!r}")
    if row.version != BY_NAME[row.name].version:
        raise MalformedEvent(f"{row.name} version {row.version} is not the catalogued {BY_NAME[row.name].version}")
    try:
        check_payload(row.name, row.payload)
    except EventError as exc:
        raise MalformedEvent(str(exc)) from exc
    return Event(id=row.id, name=row.name, version=row.version, occurred_at=row.occurred_at,
                 instance_id=row.instance_id, instance_slug=row.instance_slug, correlation_id=row.correlation_id,
                 causation_id=row.causation_id, payload=row.payload)


@dataclass(frozen=True)
class RunResult:
    outcome: str  # done | parked | retrying | dead | skipped | missing
    detail: str = ""


def delivery_run(*, delivery_id: int) -> RunResult:
    """Run one delivery: lock its row, skip it unless it is owed, run the consumer in a savepoint and record the
    outcome, all in one transaction. After a success, parked deliveries are woken."""
    with transaction.atomic():
        delivery = (Delivery.objects.select_for_update(of=("self",)).select_related("event")
                    .filter(pk=delivery_id).first())
        if delivery is None:
            return RunResult("missing")
        now = timezone.now()
        if delivery.status in (DeliveryStatus.DONE, DeliveryStatus.DEAD, DeliveryStatus.PARKED):
            return RunResult("skipped", delivery.status)
        if delivery.status == DeliveryStatus.RETRYING and delivery.next_attempt_at and delivery.next_attempt_at > now:
            return RunResult("skipped", "backing off")
        result = _run_locked(delivery, now)
    if result.outcome == "done":
        deliveries_wake_parked()
    return result


def _run_locked(delivery: Delivery, now: datetime) -> RunResult:
    try:
        event = event_from_row(delivery.event)
    except MalformedEvent as exc:
        _record(delivery, status=DeliveryStatus.DEAD, error=f"malformed event: {exc}")
        logger.warning("delivery %s: malformed event parked as failed: %s", delivery.pk, exc)
        return RunResult("dead", str(exc))
    sub = get_subscription(delivery.consumer)
    token = _current_event.set(event)
    try:
        if sub is None:
            raise LookupError(f"consumer {delivery.consumer!r} is not registered in this worker")
        with transaction.atomic():
            sub.handler(event)
    except NotReady as exc:
        _record(delivery, status=DeliveryStatus.PARKED, error=f"not ready: {exc}")
        return RunResult("parked", str(exc))
    except Exception as exc:
        failures = delivery.failures + 1
        error = f"{type(exc).__name__}: {exc}"
        if failures >= settings.EVENTS_MAX_ATTEMPTS:
            _record(delivery, status=DeliveryStatus.DEAD, error=error, failures=failures)
            logger.error("delivery %s (%s) dead after %s attempts: %s", delivery.pk, delivery.consumer, failures, error)
            return RunResult("dead", error)
        _record(delivery, status=DeliveryStatus.RETRYING, error=error, failures=failures,
                next_attempt_at=now + timedelta(seconds=_backoff_seconds(failures)))
        logger.warning("delivery %s (%s) failed (%s), retrying: %s", delivery.pk, delivery.consumer, failures, error)
        return RunResult("retrying", error)
    finally:
        _current_event.reset(token)
    _record(delivery, status=DeliveryStatus.DONE, error="", done_at=timezone.now())
    return RunResult("done")


def _record(delivery: Delivery, *, status: str, error: str, **fields: Any) -> None:
    delivery.status = status
    delivery.last_error = error[:4000]
    for key, value in fields.items():
        setattr(delivery, key, value)
    delivery.save(update_fields=["status", "last_error", "updated_at", *fields])


def _claim_and_send(qs: Any, *, limit: int = BATCH, **extra: Any) -> int:
    """Lock open deliveries (skipping ones a running consumer holds), mark them pending and sent now, send them."""
    with transaction.atomic():
        rows = list(qs.select_for_update(skip_locked=True).order_by("id").values_list("id", "queue")[:limit])
        if not rows:
            return 0
        Delivery.objects.filter(id__in=[pk for pk, _ in rows]).update(
            status=DeliveryStatus.PENDING, sent_at=timezone.now(), updated_at=timezone.now(), **extra)
    return _send(rows)


def deliveries_wake_parked() -> int:
    """Send every parked delivery again. Called after each completed delivery, so parked ones are retried until a
    round completes none (a delivery that is still not ready parks again without waking anyone)."""
    return _claim_and_send(Delivery.objects.filter(status=DeliveryStatus.PARKED))


@dataclass(frozen=True)
class SweepResult:
    relayed: int
    resent: int
    retried: int
    woken: int


def bus_sweep() -> SweepResult:
    """The periodic safety net: relay forgotten outbox rows, resend deliveries not done within the bound (lost
    or stuck messages), send retries that are due, and wake parked deliveries nobody woke for a while."""
    relayed = 0
    while (n := events_relay()) > 0:
        relayed += n
    now = timezone.now()
    stale = now - timedelta(seconds=float(settings.EVENTS_REDELIVER_AFTER_SECONDS))
    resent = _claim_and_send(Delivery.objects.filter(status=DeliveryStatus.PENDING, sent_at__lt=stale), limit=5000)
    retried = _claim_and_send(Delivery.objects.filter(status=DeliveryStatus.RETRYING, next_attempt_at__lte=now),
                              limit=5000)
    woken = _claim_and_send(Delivery.objects.filter(status=DeliveryStatus.PARKED, updated_at__lt=stale), limit=5000)
    return SweepResult(relayed=relayed, resent=resent, retried=retried, woken=woken)


def deliveries_retry(*, delivery_ids: list[int] | None = None, all_dead: bool = False) -> int:
    """Re-deliver dead-lettered deliveries (by id, or all of them) with a fresh retry budget."""
    qs = Delivery.objects.filter(status=DeliveryStatus.DEAD)
    if not all_dead:
        qs = qs.filter(id__in=delivery_ids or [])
    return _claim_and_send(qs, limit=100_000, failures=0, next_attempt_at=None)


@dataclass(frozen=True)
class ReplayResult:
    events: int
    created: int
    sent: int


def events_replay(*, since: datetime, name: str | None = None, consumer: str | None = None) -> ReplayResult:
    """Re-deliver relayed events since ``since`` to their current subscribers. Missing deliveries (a consumer
    added later) are created; every matching delivery is sent again and the idempotency record makes that a
    no-op for those already done. Dead ones are left to ``deliveries_retry``."""
    events = OutboxEvent.objects.filter(occurred_at__gte=since, relayed_at__isnull=False)
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
        sent += _send(owed)
    return ReplayResult(events=total, created=created, sent=sent)


def events_purge(*, now: datetime | None = None) -> int:
    """Delete events older than the retention whose deliveries are all done (open or dead ones are kept)."""
    cutoff = (now or timezone.now()) - timedelta(days=float(settings.EVENTS_RETENTION_DAYS))
    deleted = 0
    while True:
        ids = list(OutboxEvent.objects.filter(occurred_at__lt=cutoff, relayed_at__isnull=False)
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
