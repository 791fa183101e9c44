"""inventory's side of the order saga: reserve on order-created, commit on order-approved, release on cancel.

Thin: resolve the event's instance, validate the ids, call one service. Every service is idempotent by itself
(conditional updates and one reservation row per order), so a redelivery changes nothing.
"""

from __future__ import annotations

from typing import Any

from events.consumers import NotReady, consumer, event_instance, payload_int
from inventory.selectors import reservation_for_order
from inventory.services import (
    reservation_commit_for_order,
    reservation_release_for_order,
    reservation_reserve_for_order,
)


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
    if not reservation_commit_for_order(instance=instance, order_id=order_id) and reservation_for_order(
            instance=instance, order_id=order_id) is None:
        # Approval overtook order-created: commit once the reservation exists (the commit changed nothing).
        raise NotReady(f"no reservation for order {order_id} yet")


@consumer("event-order-canceled", name="inventory.release_for_order")
def release_for_order(event: Any) -> None:
    instance = event_instance(event)
    if instance is None:
        return
    reservation_release_for_order(instance=instance, order_id=payload_int(event, "order_id"),
                                  reason=str(event.payload.get("reason", "")))
