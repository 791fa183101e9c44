"""An order's saga as a picture: every bus event of the order and every consumer's delivery of it, read from the
event log (outbox, deliveries, the saga's dead-letter records), laid out on one time axis as a server-rendered SVG
(no JavaScript, nothing from a CDN).

Drawn by hand: no maintained Python library renders a small Gantt-like SVG with our own classes and data
attributes (which the tests and the stylesheet rely on); the whole layout is a few scale computations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Max, Q
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from events.choices import DeliveryStatus
from events.models import Delivery, OutboxEvent
from orders.models import DeadLetter, Order

# Events whose consumers undo earlier steps (stock released, charge refunded): drawn as compensations.
COMPENSATING_EVENTS = frozenset({"event-order-canceled"})
# Events that report a failed step and lead to a compensation.
FAILURE_EVENTS = frozenset({"event-err-reserving-product"})
# The order's events are looked for from a little before it was placed until the longest a delivery reacting to
# its last known change (timeline entry, dead-letter record) may take through every retry: a bounded range of the
# outbox's occurred_at index, never a scan of the whole log (the outbox has no index on correlation_id; adding
# one would cost every publish).
WINDOW_BEFORE = timedelta(minutes=1)


def window_after() -> timedelta:
    return timedelta(seconds=settings.EVENTS_MAX_ATTEMPTS * settings.EVENTS_RETRY_MAX_SECONDS + 300)

LABEL_WIDTH = 270
PLOT_WIDTH = 520
RIGHT_MARGIN = 150
ROW_HEIGHT = 22
TOP = 34


@dataclass(frozen=True)
class TracedDelivery:
    id: int
    consumer: str
    status: str
    failures: int
    last_error: str
    created_at: datetime
    sent_at: datetime | None
    done_at: datetime | None
    updated_at: datetime
    dead_letter_action: str | None  # what the saga sweep did about it (orders.DeadLetter), if dead-lettered
    event_occurred_at: datetime

    @property
    def took(self) -> str:
        """From the event's publication to done (or to the delivery's last change while not done)."""
        return format_duration((self.done_at or self.updated_at) - self.event_occurred_at)


@dataclass(frozen=True)
class TracedEvent:
    id: str
    name: str
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None
    payload: dict[str, Any]
    deliveries: tuple[TracedDelivery, ...]

    @property
    def compensation(self) -> bool:
        return self.name in COMPENSATING_EVENTS

    @property
    def failure(self) -> bool:
        return self.name in FAILURE_EVENTS or (self.name == "event-payment" and self.payload.get("status") == "failed")


def order_saga_events(*, order: Order) -> list[TracedEvent]:
    """The bus events of ``order`` in time order with their deliveries: the events naming it
    (``payload.order_id``) and every event sharing their correlation id (the steps they caused)."""
    last_change = max(filter(None, [
        order.created_at, order.updated_at,
        order.timeline.aggregate(last=Max("created_at"))["last"],
        DeadLetter.objects.filter(order=order).aggregate(last=Max("created_at"))["last"],
    ]))
    window = OutboxEvent.objects.filter(occurred_at__gte=order.created_at - WINDOW_BEFORE,
                                        occurred_at__lte=last_change + window_after())
    naming = window.filter(payload__order_id=order.pk)
    if order.instance_id is not None:
        window = window.filter(Q(instance_id=order.instance_id) | Q(instance_id__isnull=True))
    rows = list(window.filter(Q(payload__order_id=order.pk)
                              | Q(correlation_id__in=naming.values("correlation_id")))
                .order_by("occurred_at", "id"))
    deliveries: dict[Any, list[Delivery]] = {}
    for delivery in Delivery.objects.filter(event_id__in=[row.id for row in rows]).order_by("id"):
        deliveries.setdefault(delivery.event_id, []).append(delivery)
    actions = dict(DeadLetter.objects.filter(
        delivery_id__in=[d.pk for ds in deliveries.values() for d in ds]).values_list("delivery_id", "action"))
    return [
        TracedEvent(
            id=str(row.id), name=row.name, occurred_at=row.occurred_at, correlation_id=row.correlation_id,
            causation_id=row.causation_id, payload=row.payload if isinstance(row.payload, dict) else {},
            deliveries=tuple(
                TracedDelivery(id=d.pk, consumer=d.consumer, status=d.status, failures=d.failures,
                               last_error=d.last_error, created_at=d.created_at, sent_at=d.sent_at,
                               done_at=d.done_at, updated_at=d.updated_at, dead_letter_action=actions.get(d.pk),
                               event_occurred_at=row.occurred_at)
                for d in deliveries.get(row.id, [])),
        )
        for row in rows
    ]


def format_duration(delta: timedelta) -> str:
    ms = delta.total_seconds() * 1000
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def _delivery_end(delivery: TracedDelivery) -> datetime:
    return delivery.done_at or delivery.updated_at


def draw_saga(events: list[TracedEvent]) -> SafeString:
    """The SVG: one row per event (a dot at the time it was published), under it one row per delivery (a bar
    from publication to done, or to its last change when not done) with its duration, retries and outcome."""
    if not events:
        return format_html('<svg class="saga-timeline empty" xmlns="http://www.w3.org/2000/svg" width="{}" '
                           'height="40" role="img" aria-label="saga timeline"><text x="8" y="24">No bus events '
                           'recorded for this order.</text></svg>', LABEL_WIDTH + PLOT_WIDTH)
    start = events[0].occurred_at
    end = max([e.occurred_at for e in events] + [_delivery_end(d) for e in events for d in e.deliveries])
    span = max((end - start).total_seconds(), 0.001)

    def x(moment: datetime) -> float:
        return round(LABEL_WIDTH + PLOT_WIDTH * max((moment - start).total_seconds(), 0.0) / span, 1)

    parts: list[SafeString] = []
    y = TOP
    for event in events:
        kind = "compensation" if event.compensation else "failure" if event.failure else "step"
        parts.append(format_html(
            '<g class="event {}" data-event="{}" data-id="{}"><title>{} at {} (correlation {})</title>'
            '<text class="label" x="6" y="{}">{}</text>'
            '<line class="lane" x1="{}" y1="{}" x2="{}" y2="{}"></line>'
            '<circle cx="{}" cy="{}" r="5"></circle>'
            '<text class="offset" x="{}" y="{}">+{}</text></g>',
            kind, event.name, event.id, event.name, event.occurred_at.isoformat(), event.correlation_id,
            y + 4, event.name, LABEL_WIDTH, y, LABEL_WIDTH + PLOT_WIDTH, y,
            x(event.occurred_at), y, LABEL_WIDTH + PLOT_WIDTH + 10, y + 4,
            format_duration(event.occurred_at - start)))
        y += ROW_HEIGHT
        for delivery in event.deliveries:
            x1, x2 = x(event.occurred_at), x(_delivery_end(delivery))
            took = delivery.took
            notes = [took if delivery.status == DeliveryStatus.DONE else f"{delivery.status} after {took}"]
            if delivery.failures:
                notes.append(f"{delivery.failures} retr{'y' if delivery.failures == 1 else 'ies'}")
            if delivery.dead_letter_action:
                notes.append(f"saga: {delivery.dead_letter_action}")
            ticks = format_html_join(
                "", '<line class="retry" x1="{}" y1="{}" x2="{}" y2="{}"></line>',
                ((round(x1 + (x2 - x1) * (i + 1) / (delivery.failures + 1), 1), y - 6,
                  round(x1 + (x2 - x1) * (i + 1) / (delivery.failures + 1), 1), y + 6)
                 for i in range(min(delivery.failures, 20))))
            marker = (format_html('<path class="dead-mark" d="M {} {} l 8 8 m 0 -8 l -8 8"></path>', x2 - 4, y - 4)
                      if delivery.status == DeliveryStatus.DEAD else SafeString(""))
            parts.append(format_html(
                '<g class="delivery status-{}{}" data-consumer="{}" data-status="{}" data-failures="{}" '
                'data-delivery="{}"><title>{} on {}: {}{}</title>'
                '<text class="label consumer" x="22" y="{}">{}</text>'
                '<rect x="{}" y="{}" width="{}" height="10" rx="2"></rect>{}{}'
                '<text class="duration" x="{}" y="{}">{}</text></g>',
                delivery.status, " compensation" if event.compensation else "", delivery.consumer,
                delivery.status, delivery.failures, delivery.id, delivery.consumer, event.name, delivery.status,
                f" - {delivery.last_error[:300]}" if delivery.last_error else "",
                y + 4, delivery.consumer, x1, y - 5, max(round(x2 - x1, 1), 2.0), ticks, marker,
                LABEL_WIDTH + PLOT_WIDTH + 10, y + 4, ", ".join(notes)))
            y += ROW_HEIGHT
    height = y + 4
    width = LABEL_WIDTH + PLOT_WIDTH + RIGHT_MARGIN
    axis = format_html(
        '<g class="axis"><line x1="{}" y1="14" x2="{}" y2="14"></line>'
        '<text x="{}" y="10">0</text><text class="end" x="{}" y="10">{}</text></g>',
        LABEL_WIDTH, LABEL_WIDTH + PLOT_WIDTH, LABEL_WIDTH, LABEL_WIDTH + PLOT_WIDTH, format_duration(end - start))
    return format_html(
        '<svg class="saga-timeline" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="saga timeline" '
        'width="{}" height="{}" viewBox="0 0 {} {}">{}{}</svg>',
        width, height, width, height, axis, SafeString("".join(parts)))
