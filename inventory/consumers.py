"""inventory's side of the order saga: reserve on order-created, commit on order-approved, release on cancel.

Thin: resolve the event's instance, validate the ids, call one service. Every service is idempotent by itself
(conditional updates and one reservation row per order), so a redelivery changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from accounts.models import Instance
from events.consumers import NotReady, consumer
from inventory.selectors import reservation_for_order
from inventory.services import (
    reservation_commit_for_order,
    reservation_release_for_order,
    reservation_reserve_for_order,
)

logger = logging.getLogger(__name__)


def event_instance(event: Any) -> Instance | None:
    """The tenant the event belongs to, or None (logged) when it is gone: there is nothing left to do then."""
    instance = Instance.objects.filter(pk=event.instance_id).first() if event.instance_id is not None else None
    if instance is None:
        logger.warning("%s %s: instance %s does not exist, skipped", event.name, event.id, event.instance_id)
    return instance


def payload_int(event: Any, key: str) -> int:
    value = event.payload.get(key) if isinstance(event.payload, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{event.name} {event.id}: payload.{key} must be an integer, got {value!r}")  # noqa: TRY004
    return value


@consumer("event-order-created", name="inventory.reserve_for_order")
def reserve_for_order(event: Any) -> None:
    instance = event_instance(event)
    if instance is None:
        return
    order_id, customer_id = payload_int(event, "order_id"), payload_int(event, "customer_id")
    reservation_reserve_for_order(instance=instance, order_id=order_id, customer_id=customer_id,
                                  lines=event.payload.get("lines"), currency=str(event.payload.get("currency", "")),
                                  causation_id=str(event.id))


@consumer("event-order-approved", name="inventory.commit_for_order")
def commit_for_order(event: Any) -> None:
    instance = event_instance(event)
    if instance is None:
        return
    order_id = payload_int(event, "order_id")
    if reservation_for_order(instance=instance, order_id=order_id) is None:
        # Approval overtook order-created: commit once the reservation exists.
        raise NotReady(f"no reservation for order {order_id} yet")
    reservation_commit_for_order(instance=instance, order_id=order_id)


@consumer("event-order-canceled", name="inventory.release_for_order")
def release_for_order(event: Any) -> None:
    instance = event_instance(event)
    if instance is None:
        return
    reservation_release_for_order(instance=instance, order_id=payload_int(event, "order_id"),
                                  reason=str(event.payload.get("reason", "")))
