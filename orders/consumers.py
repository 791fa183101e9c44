"""orders' side of the saga: approve on a succeeded payment, cancel on a failed one or on a failed reservation.

An event about an order this instance does not have yet raises ``NotReady``: the bus parks it and retries
after later events. Transitions are conditional, so redelivery and late events change nothing.
"""

from __future__ import annotations

from typing import Any

from events.consumers import NotReady, consumer, event_instance, payload_int
from orders.choices import CancelReason
from orders.selectors import order_exists
from orders.services import order_approve, order_cancel_pending


def _require_order(instance: Any, order_id: int) -> None:
    """After a transition that changed nothing: an order that does not exist yet is NotReady (checked only then,
    so the common case costs no extra query)."""
    if not order_exists(instance=instance, order_id=order_id):
        raise NotReady(f"order {order_id} does not exist yet")


@consumer("event-payment", name="orders.apply_payment")
def apply_payment(event: Any) -> None:
    instance = event_instance(event)
    if instance is None:
        return
    order_id = payload_int(event, "order_id")
    status = event.payload.get("status")
    if status == "succeeded":
        amount = event.payload.get("amount")
        changed = order_approve(instance=instance, order_id=order_id, causation_id=str(event.id),
                                charged=amount if isinstance(amount, str) else None)
    elif status == "failed":
        changed = order_cancel_pending(instance=instance, order_id=order_id, reason=CancelReason.PAYMENT_FAILED,
                                       cause=str(event.payload.get("reason") or ""), causation_id=str(event.id))
    else:
        raise ValueError(f"event-payment {event.id}: unknown status {status!r}")
    if not changed:
        _require_order(instance, order_id)


@consumer("event-err-reserving-product", name="orders.cancel_unreservable")
def cancel_unreservable(event: Any) -> None:
    instance = event_instance(event)
    if instance is None:
        return
    order_id = payload_int(event, "order_id")
    if not order_cancel_pending(instance=instance, order_id=order_id, reason=CancelReason.RESERVATION_FAILED,
                                cause=str(event.payload.get("reason") or ""), causation_id=str(event.id)):
        _require_order(instance, order_id)
