"""payments' side of the order saga: charge on product-reserved, refund (or void) on order-canceled."""

from __future__ import annotations

import logging
from typing import Any

from accounts.models import Instance
from events.consumers import consumer
from payments.services import payment_charge_for_order, payment_refund_for_order

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
