"""orders writes. Every status change is a conditional ``filter(status=...).update(...)`` that acts only when a
row changed, so a redelivered event or a double click changes nothing and publishes nothing.

Transitions: ``pending -> approved`` (payment succeeded), ``pending -> canceled`` (payment failed, products not
reservable, the customer, the deadline, a dead-lettered step, an operator), ``approved -> canceled`` (the
customer, a dead-lettered step, an operator; inventory and payments compensate on event-order-canceled).
``canceled`` is final. The periodic saga sweep (``saga_sweep``) makes every order end by itself: it cancels orders
still pending after ``ORDER_DEADLINE_SECONDS`` and reads the bus's dead letters of order events.
"""

from __future__ import annotations

import logging
import re
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Subquery
from django.utils import timezone

from accounts.models import Instance, User
from audit.choices import AuditAction
from audit.services import audit_record
from inventory.selectors import product_prices
from inventory.services import price_quote_new
from orders.choices import CancelReason, DeadLetterAction, OrderEventKind, OrderStatus
from orders.error_codes import OrdersErrorCode
from orders.models import DeadLetter, Order, OrderEvent, OrderLine
from orders.signals import order_approved, order_canceled, order_created, suspicious_activity
from saaskit.db import insert_tree
from saaskit.errors import ApplicationError, NotFoundError

logger = logging.getLogger(__name__)

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


@transaction.atomic
def order_place(*, instance: Instance, customer: User, lines: Any, currency: str) -> Order:
    """Write the order, its lines and its first timeline entry, and publish event-order-created, all in one
    transaction. Stock is checked later, by inventory.

    No ACL policy is granted to the customer: the customer reaches their own orders by ownership
    (``selectors.access_order_by_id``), and a transition is allowed by the order's status, so per-order
    get/cancel policies would cost every order a delivery (authz) and every cancellation another one for
    nothing. Policies stay for delegated access (a clerk granted ``orders:get``)."""
    if not isinstance(currency, str) or not CURRENCY_RE.match(currency):
        raise ApplicationError("Currency must be a 3-letter ISO code.", code=OrdersErrorCode.INVALID_CURRENCY,
                               fields={"currency": ["Must be a 3-letter upper-case ISO code."]})
    quantities = _normalize_lines(lines)
    products = product_prices(instance=instance, product_ids=list(quantities))
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
    order = Order(instance=instance, customer=customer, currency=currency, total=total)
    lines_placed = [OrderLine(product_id=pid, quantity=qty, unit_price=products[pid].price)
                    for pid, qty in sorted(quantities.items())]
    # What the customer will be charged: these prices, whatever the catalogue says when inventory reserves.
    quote = price_quote_new(instance=instance, currency=currency,
                            lines=[(pid, qty, products[pid].price) for pid, qty in quantities.items()])
    placed = OrderEvent(kind=OrderEventKind.PLACED, detail={"total": str(total)})
    # The order, its lines, its price quote and its first timeline entry in ONE statement (was four round trips),
    # which also reads the totals of the customer's previous orders for the median rule (was a fifth).
    previous = insert_tree(order, [(lines_placed, "order"), ([quote], "order_id"), ([placed], "order")],
                           read=_previous_totals_sql(instance.pk, customer.pk))
    # The order comes back with its lines and timeline as ``prefetch_related("lines", "timeline")`` would leave
    # them (Django's prefetch cache), so the API answers from it without reading the order back (3 statements).
    order._prefetched_objects_cache = {"lines": _fetched(order.lines.all(), lines_placed),
                                       "timeline": _fetched(order.timeline.all(), [placed])}
    order_created.send(sender=Order, instance=instance, causation_id=None, payload={
        "order_id": order.pk, "customer_id": customer.pk, "currency": currency,
        "lines": [{"product_id": pid, "quantity": qty} for pid, qty in sorted(quantities.items())],
    })
    _check_total_against_median(order, previous)
    return order


def _fetched(queryset: Any, rows: list[Any]) -> Any:
    """``queryset`` already evaluated to ``rows`` (what a prefetch leaves in the cache)."""
    queryset._result_cache = rows
    queryset._prefetch_done = True
    return queryset


MEDIAN_HISTORY = 50


def _previous_totals_sql(instance_id: int, customer_id: int) -> tuple[str, list[Any]]:
    """The totals of the customer's last ``MEDIAN_HISTORY`` orders, newest first, as an SQL array expression read
    in the placement's statement (which does not see the order it inserts)."""
    return (f"ARRAY(SELECT total FROM {Order._meta.db_table} WHERE instance_id = %s AND customer_id = %s "
            f"ORDER BY id DESC LIMIT {MEDIAN_HISTORY})", [instance_id, customer_id])


def _check_total_against_median(order: Order, previous: list[Decimal]) -> None:
    """Rule: an order whose total exceeds ``ORDERS_SUSPICIOUS_TOTAL_FACTOR`` times the median of the customer's
    last orders (``previous``, with at least ``ORDERS_SUSPICIOUS_MIN_HISTORY`` of them) sends
    event-suspicious-activity."""
    factor = Decimal(str(getattr(settings, "ORDERS_SUSPICIOUS_TOTAL_FACTOR", 5)))
    min_history = int(getattr(settings, "ORDERS_SUSPICIOUS_MIN_HISTORY", 3))
    if len(previous) < min_history:
        return
    median = statistics.median(previous)
    if median > 0 and order.total > factor * median:
        suspicious_activity.send(sender=Order, instance=order.instance, causation_id=None, payload={
            "kind": "order_total_above_median",
            "detail": f"order {order.pk}: total {order.total} {order.currency} is above {factor} x the customer's "
                      f"median {Decimal(median).quantize(Decimal('0.01'))} over {len(previous)} orders",
            "user_id": order.customer_id,
        })


# Written by hand: the ORM has no UPDATE-then-INSERT in one statement, and a PL/pgSQL function keeps its plan.
_TRANSITION = ("SELECT orders_transition(%s::bigint, %s::bigint, %s::text[], %s::text, %s::text, %s::timestamptz, "
               "%s::timestamptz, %s::timestamptz, %s::text, %s::jsonb, %s::text)")


def _transition(instance: Instance | int, order_id: int, *, from_statuses: list[str], status: str,
                entry: OrderEvent, reason: str | None = None, approved_at: datetime | None = None,
                canceled_at: datetime | None = None) -> bool:
    """Move the order out of ``from_statuses`` to ``status`` (a conditional UPDATE of the given fields,
    ``updated_at`` set to the entry's time) and, only if it moved, write its timeline ``entry``: one call of
    ``orders_transition`` (migration 0005). True when it moved (``entry`` is saved then)."""
    detail = OrderEvent._meta.get_field("detail").get_db_prep_save(entry.detail, connection)
    params = [instance if isinstance(instance, int) else instance.pk, order_id, list(from_statuses), status, reason,
              approved_at, canceled_at, entry.created_at, entry.kind, detail, entry.causation_id]
    with connection.cursor() as cursor:
        cursor.execute(_TRANSITION, params)
        (entry_id,) = cursor.fetchone()
    if entry_id is None:
        return False
    entry.pk, entry.order_id = entry_id, order_id
    entry._state.adding = False
    entry._state.db = connection.alias
    return True


def _cancel(*, instance: Instance | int, order_id: int, from_statuses: list[str], reason: str,
            causation_id: str | None, detail: dict[str, Any] | None = None) -> bool:
    now = timezone.now()
    reason = reason[:64]
    if not _transition(instance, order_id, from_statuses=from_statuses, status=OrderStatus.CANCELED,
                       reason=reason, canceled_at=now,
                       entry=OrderEvent(kind=OrderEventKind.CANCELED, detail={"reason": reason, **(detail or {})},
                                        causation_id=causation_id or "", created_at=now)):
        return False
    order_canceled.send(sender=Order, instance=_with_slug(instance), causation_id=causation_id,
                        payload={"order_id": order_id, "reason": reason})
    return True


def _with_slug(instance: Instance | int) -> Instance:
    """The Instance itself (what the event envelope names: id and slug); loaded only when given its id."""
    return instance if isinstance(instance, Instance) else Instance.objects.get(pk=instance)


@transaction.atomic
def order_cancel(*, order: Order, reason: str = CancelReason.CUSTOMER) -> Order:
    """Cancel a pending or approved order (an approved one is compensated: stock returns, payment refunded)."""
    if not _cancel(instance=order.instance_id, order_id=order.pk,
                   from_statuses=[OrderStatus.PENDING, OrderStatus.APPROVED], reason=str(reason), causation_id=None):
        raise ApplicationError("Only a pending or approved order can be canceled.",
                               code=OrdersErrorCode.INVALID_TRANSITION, status_code=409)
    order.refresh_from_db()
    return order


# Consumer-path services below run inside the bus's delivery transaction, which rolls back as a whole on any
# exception: a savepoint of their own (two round trips) would protect nothing, so ``savepoint=False``. Called
# outside a transaction they still open one.
@transaction.atomic(savepoint=False)
def order_cancel_pending(*, instance: Instance | int, order_id: int, reason: str,
                         causation_id: str | None = None, cause: str = "") -> bool:
    """The saga gave up on a pending order (payment failed, stock not reservable). No-op otherwise.

    ``cause`` (e.g. ``insufficient_funds``) goes to the timeline; the order's ``reason`` stays a ``CancelReason``.
    """
    return _cancel(instance=instance, order_id=order_id, from_statuses=[OrderStatus.PENDING], reason=reason,
                   causation_id=causation_id, detail={"cause": cause[:64]} if cause else None)


@transaction.atomic(savepoint=False)
def order_approve(*, instance: Instance | int, order_id: int, causation_id: str | None = None,
                  charged: str | None = None) -> bool:
    """Payment succeeded: a pending order becomes approved and event-order-approved is sent. No-op otherwise
    (a customer who canceled first is refunded by payments on event-order-canceled).

    ``charged`` (the payment's amount: the order's total at placement, see ``inventory.PriceQuote``) goes to the
    timeline."""
    now = timezone.now()
    entry = OrderEvent(kind=OrderEventKind.APPROVED, causation_id=causation_id or "", created_at=now,
                       detail={"charged": charged} if charged is not None else {})
    if not _transition(instance, order_id, from_statuses=[OrderStatus.PENDING], status=OrderStatus.APPROVED,
                       approved_at=now, entry=entry):
        return False
    order_approved.send(sender=Order, instance=_with_slug(instance), causation_id=causation_id,
                        payload={"order_id": order_id})
    return True


@transaction.atomic
def order_cancel_by_operator(*, order_id: int, note: str, actor: Any = None) -> Order:
    """An operator ends a pending or approved order (reason ``operator``, the note on the timeline); compensation
    runs as for any cancellation. Audited (``operator_cancel``, ``actor``: None from the command)."""
    order = Order.objects.select_related("instance").filter(pk=order_id).first()
    if order is None:
        raise NotFoundError("Order not found.", code=OrdersErrorCode.ORDER_NOT_FOUND)
    if not _cancel(instance=order.instance_id, order_id=order.pk, from_statuses=[OrderStatus.PENDING,
                   OrderStatus.APPROVED], reason=CancelReason.OPERATOR, causation_id=None,
                   detail={"cause": note[:200]}):
        raise ApplicationError("Only a pending or approved order can be canceled.",
                               code=OrdersErrorCode.INVALID_TRANSITION, status_code=409)
    before = order.status
    order.refresh_from_db()
    audit_record(action=AuditAction.OPERATOR_CANCEL, actor=actor, instance=order.instance, target=order,
                 before={"status": before}, after={"status": order.status, "note": note[:200]})
    return order


# --- the saga sweep: every order ends by itself ------------------------------------------------------------------

# Events of the order saga (each payload carries ``order_id``). A dead-lettered delivery of a compensation event
# flags the order; of any other, it cancels the order (step_failed).
SAGA_EVENTS = ("event-order-created", "event-order-approved", "event-order-canceled", "event-product-reserved",
               "event-err-reserving-product", "event-payment")
COMPENSATION_EVENTS = ("event-order-canceled",)
SWEEP_BATCH = 100


def order_deadline_seconds() -> float:
    return float(getattr(settings, "ORDER_DEADLINE_SECONDS", 60))


def orders_cancel_overdue(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Cancel (reason ``deadline``) every order still pending ``ORDER_DEADLINE_SECONDS`` after it was placed, with
    compensation. Safe on several hosts at once: rows are taken with ``SKIP LOCKED`` and each cancellation is a
    conditional update, so an order is canceled once and an order a consumer is approving right now is left to
    the next sweep (if it is still pending then)."""
    seconds = order_deadline_seconds()
    cutoff = (now or timezone.now()) - timedelta(seconds=seconds)
    canceled: list[int] = []
    while len(canceled) < limit:
        with transaction.atomic():
            rows = list(Order.objects.filter(status=OrderStatus.PENDING, created_at__lt=cutoff)
                        .exclude(pk__in=canceled).order_by("created_at")
                        .select_for_update(skip_locked=True).values_list("pk", "instance_id")[:SWEEP_BATCH])
            for pk, instance_id in rows:
                if _cancel(instance=instance_id, order_id=pk, from_statuses=[OrderStatus.PENDING],
                           reason=CancelReason.DEADLINE, causation_id=None,
                           detail={"cause": f"pending longer than {seconds:g}s"}):
                    canceled.append(pk)
        if len(rows) < SWEEP_BATCH:
            break
    return canceled


def _flag(*, order_id: int, reason: str, causation_id: str) -> None:
    now = timezone.now()
    Order.objects.filter(pk=order_id).update(needs_attention=True, attention_reason=reason[:255], updated_at=now)
    OrderEvent.objects.create(order_id=order_id, kind=OrderEventKind.ATTENTION, detail={"reason": reason[:255]},
                              causation_id=causation_id)


def _dead_letter_apply(delivery: Any) -> str | None:
    """Handle one dead-lettered delivery, once (the ``DeadLetter`` row is the claim). Returns the action taken,
    or None when another host handled it first."""
    event = delivery.event
    order_id = event.payload.get("order_id") if isinstance(event.payload, dict) else None
    order = None
    if isinstance(order_id, int) and not isinstance(order_id, bool) and event.instance_id is not None:
        order = Order.objects.for_instance(event.instance_id).filter(pk=order_id).first()
    error = (delivery.last_error or "").strip()
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = DeadLetter.objects.create(delivery_id=delivery.pk, order=order, event_name=event.name,
                                                   consumer=delivery.consumer, error=error[:2000],
                                                   action=DeadLetterAction.IGNORED)
        except IntegrityError:
            return None
        causation = str(event.id)
        if order is None:
            action = DeadLetterAction.IGNORED
        elif event.name in COMPENSATION_EVENTS:
            _flag(order_id=order.pk, causation_id=causation,
                  reason=f"compensation {delivery.consumer} dead-lettered: {error.splitlines()[-1] if error else '?'}")
            action = DeadLetterAction.FLAGGED
        elif _cancel(instance=order.instance_id, order_id=order.pk,
                     from_statuses=[OrderStatus.PENDING, OrderStatus.APPROVED], reason=CancelReason.STEP_FAILED,
                     causation_id=causation, detail={"cause": delivery.consumer}):
            action = DeadLetterAction.CANCELED
        else:
            action = DeadLetterAction.IGNORED  # the order already ended; its compensation is its own delivery
        if action != DeadLetterAction.IGNORED:
            DeadLetter.objects.filter(pk=record.pk).update(action=action)
    logger.warning("dead letter %s (%s on %s, order %s): %s", delivery.pk, delivery.consumer, event.name, order_id,
                   action)
    return str(action)


def saga_dead_letters_apply(*, limit: int = 1000) -> dict[str, int]:
    """End the orders whose saga steps the bus dead-lettered: a forward step cancels the order (``step_failed``,
    the consumer on its timeline, compensation runs); a dead compensation flags it ``needs_attention``."""
    from events.choices import DeliveryStatus
    from events.models import Delivery

    handled = DeadLetter.objects.values("delivery_id")
    dead = (Delivery.objects.filter(status=DeliveryStatus.DEAD, event__name__in=SAGA_EVENTS)
            .exclude(pk__in=Subquery(handled)).select_related("event").order_by("id")[:limit])
    counts = {str(a): 0 for a in DeadLetterAction.values}
    for delivery in dead:
        action = _dead_letter_apply(delivery)
        if action is not None:
            counts[action] += 1
    return counts


@dataclass(frozen=True)
class SweepResult:
    deadline: list[int]
    dead_letters: dict[str, int]


def saga_sweep() -> SweepResult:
    """The periodic task's body: dead letters first (their cause is more precise than ``deadline``), then the
    deadline."""
    dead_letters = saga_dead_letters_apply()
    return SweepResult(deadline=orders_cancel_overdue(), dead_letters=dead_letters)


@dataclass(frozen=True)
class ResumeResult:
    order: Order
    retried: list[int]


def order_resume(*, order_id: int) -> ResumeResult:
    """Re-run what the order is owed (its dead-lettered saga deliveries, with a fresh retry budget) and clear
    ``needs_attention``. If a delivery dies again, the next sweep flags or cancels the order again."""
    from events.choices import DeliveryStatus
    from events.models import Delivery
    from events.services import deliveries_retry

    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        raise NotFoundError("Order not found.", code=OrdersErrorCode.ORDER_NOT_FOUND)
    # A canceled order is owed only its compensations; its dead forward steps stay dead (they would charge or
    # reserve for an order that is over).
    owed = COMPENSATION_EVENTS if order.status == OrderStatus.CANCELED else SAGA_EVENTS
    dead = list(Delivery.objects.filter(status=DeliveryStatus.DEAD, event__name__in=owed,
                                        event__instance_id=order.instance_id, event__payload__order_id=order.pk)
                .order_by("id").values_list("id", flat=True))
    with transaction.atomic():
        DeadLetter.objects.filter(delivery_id__in=dead).delete()
        Order.objects.filter(pk=order.pk).update(needs_attention=False, attention_reason="", updated_at=timezone.now())
        OrderEvent.objects.create(order=order, kind=OrderEventKind.RESUMED, detail={"retried": dead})
    if dead:  # after commit: the relay sends at once
        deliveries_retry(delivery_ids=dead)
    order.refresh_from_db()
    return ResumeResult(order=order, retried=dead)
