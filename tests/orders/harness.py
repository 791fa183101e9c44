"""An in-process delivery harness for the saga's consumers (no broker): signals -> events -> consumers.

What the domain signals sent becomes envelope-like events; each is delivered to every consumer of its name in
its own transaction, in an order the test chooses (in order, shuffled, each delivered twice). ``NotReady``
parks the delivery until some other delivery succeeds, like the bus does. This checks the domain's own
idempotency and convergence; the real bus (outbox, Celery, idempotency records) is tested with a worker in
test_saga_integration.py.
"""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from events.envelope import Event
from tests.inventory.support import Sent, SignalRecorder

SIGNAL_TO_EVENT = {
    "order_created": "event-order-created",
    "order_canceled": "event-order-canceled",
    "order_approved": "event-order-approved",
    "product_reserved": "event-product-reserved",
    "product_reservation_failed": "event-err-reserving-product",
    "payment_processed": "event-payment",
    "suspicious_activity": "event-suspicious-activity",
    "order_suspicious_activity": "event-suspicious-activity",
    "policy_upsert_requested": "event-upsert-policy",
    "policy_remove_requested": "event-remove-policy",
}


def make_event(name: str, payload: dict[str, Any], instance_id: int | None, *,
              causation_id: str | None = None) -> Event:
    """A real ``events.envelope.Event`` as the bus would hand it to a consumer (fresh id, own correlation)."""
    event_id = uuid.uuid4()
    return Event(id=event_id, name=name, version=1, occurred_at=datetime.now(UTC), instance_id=instance_id,
                 instance_slug=None, correlation_id=str(event_id), causation_id=causation_id, payload=payload)


def event_from(sent: Sent) -> Event:
    return make_event(name=SIGNAL_TO_EVENT[sent.signal], payload=sent.payload, instance_id=sent.instance_id,
                     causation_id=sent.causation_id)


SAGA_QUEUES = ("orders", "inventory", "payments")


def saga_consumers() -> dict[str, list[Any]]:
    """The live ``@consumer`` registry, restricted to the saga's queues: event name -> handlers."""
    from events.consumers import all_subscriptions

    found: dict[str, list[Any]] = {}
    for sub in all_subscriptions():
        if sub.queue in SAGA_QUEUES:
            found.setdefault(sub.event_name, []).append(sub.handler)
    return found


def call_consumer(handler: Any, event: Any) -> None:
    """Run one consumer the way the bus does: in one transaction."""
    with transaction.atomic():
        handler(event)


class Harness:
    def __init__(self, recorder: SignalRecorder, *, seed: int | None = None, duplicate: bool = False,
                 lifo: bool = False) -> None:
        from events.consumers import NotReady

        self.not_ready = NotReady
        self.recorder = recorder
        self.consumers = saga_consumers()
        self.rng = random.Random(seed) if seed is not None else None
        self.duplicate = duplicate
        self.lifo = lifo
        self.pending: list[tuple[Any, Event]] = []
        self.parked: list[tuple[Any, Event]] = []
        self.seen = 0
        self.delivered: list[tuple[str, str]] = []
        self.parked_count = 0

    def _collect(self) -> None:
        for sent in self.recorder.sent[self.seen:]:
            event = event_from(sent)
            for handler in self.consumers.get(event.name, []):
                copies = 2 if self.duplicate else 1
                self.pending.extend([(handler, event)] * copies)
        self.seen = len(self.recorder.sent)

    def run(self, *, max_steps: int = 1000, before_step: Any = None) -> None:
        """Deliver until nothing is pending; fail if something stays parked.

        ``before_step(n)`` runs before the n-th delivery attempt (e.g. a customer acting mid-saga)."""
        for step in itertools.count():
            if before_step is not None:
                before_step(step)
            self._collect()
            if not self.pending:
                break
            assert len(self.delivered) < max_steps, "saga did not settle"
            if self.rng:
                index = self.rng.randrange(len(self.pending))
            else:
                index = len(self.pending) - 1 if self.lifo else 0
            handler, event = self.pending.pop(index)
            try:
                call_consumer(handler, event)
            except self.not_ready:
                self.parked.append((handler, event))
                self.parked_count += 1
                continue
            self.delivered.append((event.name, getattr(handler, "__name__", repr(handler))))
            self.pending.extend(self.parked)
            self.parked.clear()
        assert self.parked == [], f"still parked: {self.parked}"
