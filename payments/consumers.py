"""payments' side of the order saga: charge on product-reserved, refund (or void) on order-canceled; and the
alert inbox: every event-suspicious-activity of an instance becomes an ``Alert``."""

from __future__ import annotations

from typing import Any

from events.consumers import consumer, event_instance, payload_int
from payments.services import alert_record, payment_charge_for_order, payment_refund_for_order


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


@consumer("event-suspicious-activity", name="payments.record_alert")
def record_alert(event: Any) -> None:
    instance = event_instance(event)  # an instance-less report has nobody to alert: skipped (logged)
    if instance is None:
        return
    payload = event.payload if isinstance(event.payload, dict) else {}
    user_id = payload.get("user_id")
    alert_record(instance=instance, event_id=event.id, kind=str(payload.get("kind") or "unknown"),
                 detail=str(payload.get("detail") or ""),
                 user_id=user_id if isinstance(user_id, int) and not isinstance(user_id, bool) else None)
