"""orders writes. Every status change is a conditional ``filter(status=...).update(...)`` that acts only when a
row changed, so a redelivered event or a double click changes nothing and publishes nothing.

Transitions: ``pending -> approved`` (payment succeeded), ``pending -> canceled`` (payment failed, products not
reservable, or the customer), ``approved -> canceled`` (the customer; inventory and payments compensate on
event-order-canceled). ``canceled`` is final.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Instance, User
from inventory.selectors import products_by_id
from inventory.services import price_quote_record
from orders.choices import CancelReason, OrderEventKind, OrderStatus
from orders.error_codes import OrdersErrorCode
from orders.models import Order, OrderEvent, OrderLine
from orders.signals import (
    order_approved,
    order_canceled,
    order_created,
    policy_remove_requested,
    policy_upsert_requested,
)
from saaskit.errors import ApplicationError

CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
MAX_LINES = 100
MAX_QUANTITY = 10_000
MAX_TOTAL = Decimal("999999999999.99")  # Order.total: max_digits=14, decimal_places=2


def _invalid_lines(message: str) -> ApplicationError:
    return ApplicationError(message, code=OrdersErrorCode.INVALID_LINES, fields={"lines": [message]})


def _normalize_lines(lines: Any) -> dict[int, int]:
    if not isinstance(lines, list) or not lines:
        raise _invalid_lines("An order needs at least one line.")
    if len(lines) > MAX_LINES:
        raise _invalid_lines(f"An order has at most {MAX_LINES} lines.")
    merged: dict[int, int] = {}
    for line in lines:
        if not isinstance(line, dict):
            raise _invalid_lines("Each line is an object with product_id and quantity.")
        product_id, quantity = line.get("product_id"), line.get("quantity")
        if isinstance(product_id, bool) or not isinstance(product_id, int) or not 0 < product_id < 2**63:
            raise _invalid_lines("product_id must be a positive integer.")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= MAX_QUANTITY:
            raise _invalid_lines(f"quantity must be an integer from 1 to {MAX_QUANTITY}.")
        merged[product_id] = merged.get(product_id, 0) + quantity
        if merged[product_id] > MAX_QUANTITY:
            raise _invalid_lines(f"quantity must be an integer from 1 to {MAX_QUANTITY}.")
    return merged


def policies_for(order: Order) -> list[str]:
    return [f"{order.customer_id}:get:orders:{order.pk}", f"{order.customer_id}:cancel:orders:{order.pk}"]


@transaction.atomic
def order_place(*, instance: Instance, customer: User, lines: Any, currency: str) -> Order:
    """Write the order, its lines and its first timeline entry, and publish event-order-created plus the
    customer's get/cancel policies, all in one transaction. Stock is checked later, by inventory."""
    if not isinstance(currency, str) or not CURRENCY_RE.match(currency):
        raise ApplicationError("Currency must be a 3-letter ISO code.", code=OrdersErrorCode.INVALID_CURRENCY,
                               fields={"currency": ["Must be a 3-letter upper-case ISO code."]})
    quantities = _normalize_lines(lines)
    products = products_by_id(instance=instance, product_ids=list(quantities))
    unknown = sorted(set(quantities) - set(products))
    if unknown:
        raise ApplicationError("Unknown product.", code=OrdersErrorCode.UNKNOWN_PRODUCT,
                               fields={"lines": [f"Unknown product id {pid}." for pid in unknown]})
    mismatched = sorted(pid for pid, product in products.items() if product.currency != currency)
    if mismatched:
        raise ApplicationError("Product priced in another currency.", code=OrdersErrorCode.CURRENCY_MISMATCH,
                               fields={"lines": [f"Product {pid} is not sold in {currency}." for pid in mismatched]})
    total = sum((products[pid].price * qty for pid, qty in quantities.items()), Decimal("0.00"))
    if total > MAX_TOTAL:
        raise ApplicationError(f"An order's total cannot exceed {MAX_TOTAL}.", code=OrdersErrorCode.TOTAL_TOO_LARGE,
                               fields={"lines": ["Total too large."]})
    order = Order.objects.create(instance=instance, customer=customer, currency=currency, total=total)
    OrderLine.objects.bulk_create([
        OrderLine(order=order, product_id=pid, quantity=qty, unit_price=products[pid].price)
        for pid, qty in sorted(quantities.items())
    ])
    # What the customer will be charged: these prices, whatever the catalogue says when inventory reserves.
    price_quote_record(instance=instance, order_id=order.pk, currency=currency,
                       lines=[(pid, qty, products[pid].price) for pid, qty in quantities.items()])
    OrderEvent.objects.create(order=order, kind=OrderEventKind.PLACED, detail={"total": str(order.total)})
    order_created.send(sender=Order, instance=instance, causation_id=None, payload={
        "order_id": order.pk, "customer_id": customer.pk, "currency": currency,
        "lines": [{"product_id": pid, "quantity": qty} for pid, qty in sorted(quantities.items())],
    })
    policy_upsert_requested.send(sender=Order, instance=instance, causation_id=None,
                                 payload={"policies": policies_for(order)})
    return order


def _cancel(*, instance: Instance | int, order_id: int, from_statuses: list[str], reason: str,
            causation_id: str | None, detail: dict[str, Any] | None = None) -> bool:
    now = timezone.now()
    changed = Order.objects.for_instance(instance).filter(pk=order_id, status__in=from_statuses).update(
        status=OrderStatus.CANCELED, reason=reason[:64], canceled_at=now, updated_at=now)
    if not changed:
        return False
    order = Order.objects.select_related("instance").get(pk=order_id)
    OrderEvent.objects.create(order=order, kind=OrderEventKind.CANCELED,
                              detail={"reason": order.reason, **(detail or {})}, causation_id=causation_id or "")
    order_canceled.send(sender=Order, instance=order.instance, causation_id=causation_id,
                        payload={"order_id": order.pk, "reason": order.reason})
    if order.customer_id is not None:  # the customer keeps reading the order but can no longer cancel it
        policy_remove_requested.send(sender=Order, instance=order.instance, causation_id=causation_id,
                                     payload={"policies": [f"{order.customer_id}:cancel:orders:{order.pk}"]})
    return True


@transaction.atomic
def order_cancel(*, order: Order, reason: str = CancelReason.CUSTOMER) -> Order:
    """Cancel a pending or approved order (an approved one is compensated: stock returns, payment refunded)."""
    if not _cancel(instance=order.instance_id, order_id=order.pk,
                   from_statuses=[OrderStatus.PENDING, OrderStatus.APPROVED], reason=str(reason), causation_id=None):
        raise ApplicationError("Only a pending or approved order can be canceled.",
                               code=OrdersErrorCode.INVALID_TRANSITION, status_code=409)
    order.refresh_from_db()
    return order


@transaction.atomic
def order_cancel_pending(*, instance: Instance | int, order_id: int, reason: str,
                         causation_id: str | None = None, cause: str = "") -> bool:
    """The saga gave up on a pending order (payment failed, stock not reservable). No-op otherwise.

    ``cause`` (e.g. ``insufficient_funds``) goes to the timeline; the order's ``reason`` stays a ``CancelReason``.
    """
    return _cancel(instance=instance, order_id=order_id, from_statuses=[OrderStatus.PENDING], reason=reason,
                   causation_id=causation_id, detail={"cause": cause[:64]} if cause else None)


@transaction.atomic
def order_approve(*, instance: Instance | int, order_id: int, causation_id: str | None = None,
                  charged: str | None = None) -> bool:
    """Payment succeeded: a pending order becomes approved and event-order-approved is sent. No-op otherwise
    (a customer who canceled first is refunded by payments on event-order-canceled).

    ``charged`` (the payment's amount: the order's total at placement, see ``inventory.PriceQuote``) goes to the
    timeline."""
    now = timezone.now()
    if not Order.objects.for_instance(instance).filter(pk=order_id, status=OrderStatus.PENDING).update(
            status=OrderStatus.APPROVED, approved_at=now, updated_at=now):
        return False
    order = Order.objects.select_related("instance").get(pk=order_id)
    OrderEvent.objects.create(order=order, kind=OrderEventKind.APPROVED, causation_id=causation_id or "",
                              detail={"charged": charged} if charged is not None else {})
    order_approved.send(sender=Order, instance=order.instance, causation_id=causation_id,
                        payload={"order_id": order.pk})
    return True
