"""payments' side of the order saga: charge on product-reserved, refund (or void) on order-canceled."""

from __future__ import annotations

from typing import Any

from events.consumers import consumer, event_instance, payload_int
from payments.services import payment_charge_for_order, payment_refund_for_order


@consumer("event-product-reserved", name="payments.charge_for_order")
def charge_for_order(event: Any) -> None:
    instance = event_instance(event)
    if instance is None:
        return
    payment_charge_for_order(instance=instance, order_id=payload_int(event, "order_id"),
                             customer_id=payload_int(event, "customer_id"), amount=event.payload.get("amount"),
                             currency=str(event.payload.get("currency", "")), causation_id=str(event.id))


@consumer("event-order-canceled", name="payments.refund_for_order")
def refund_for_order(event: Any) -> None:
    instance = event_instance(event)
    if instance is None:
        return
    payment_refund_for_order(instance=instance, order_id=payload_int(event, "order_id"))
