"""inventory writes. Stock moves only through conditional updates on rows locked in pk order.

Reservation life cycle, keyed by ``(instance, order_id)`` and written at most once per transition:
``reserved -> committed`` (order approved: the goods leave ``stock_on_hand``), ``reserved|committed -> released``
(order canceled: compensation), ``rejected`` (could not reserve; nothing held). A cancellation that arrives
before the order's reservation leaves a ``released`` tombstone, so a late order-created reserves nothing.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Instance
from audit.choices import AuditAction
from audit.services import audit_record
from inventory.choices import ReservationStatus
from inventory.error_codes import InventoryErrorCode, ReservationFailure
from inventory.models import PriceQuote, Product, Reservation
from inventory.signals import product_reservation_failed, product_reserved
from saaskit.db import insert_or_nothing
from saaskit.errors import ApplicationError

logger = logging.getLogger(__name__)

CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
CENT = Decimal("0.01")
MAX_PRICE = Decimal("9999999999.99")
MAX_STOCK = 2**31 - 1  # PositiveIntegerField
MAX_AMOUNT = Decimal("999999999999.99")  # Reservation.amount: max_digits=14, decimal_places=2


def _money(value: Any, *, field: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise ApplicationError("Not a decimal amount.", code=InventoryErrorCode.INVALID_PRICE,
                               fields={field: ["Not a decimal amount."]}) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_PRICE or amount != amount.quantize(CENT):
        raise ApplicationError("Amount must be between 0 and 9999999999.99 with at most 2 decimals.",
                               code=InventoryErrorCode.INVALID_PRICE, fields={field: ["Out of range."]})
    return amount.quantize(CENT)


def _positive_int(value: Any, *, field: str, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1) or value > 2**31 - 1:
        raise ApplicationError("Must be a positive integer.", code=InventoryErrorCode.INVALID_QUANTITY,
                               fields={field: ["Must be a positive integer."]})
    return value


@transaction.atomic
def product_create(*, instance: Instance, sku: str, name: str, price: Decimal | str, currency: str = "USD",
                   stock_on_hand: int = 0) -> Product:
    sku = (sku or "").strip()
    if not sku or len(sku) > 64:
        raise ApplicationError("SKU must be 1 to 64 characters.", code=InventoryErrorCode.INVALID_SKU,
                               fields={"sku": ["Must be 1 to 64 characters."]})
    if not isinstance(currency, str) or not CURRENCY_RE.match(currency):
        raise ApplicationError("Currency must be a 3-letter ISO code.", code=InventoryErrorCode.INVALID_CURRENCY,
                               fields={"currency": ["Must be a 3-letter upper-case ISO code."]})
    product = Product(instance=instance, sku=sku, name=name, price=_money(price, field="price"), currency=currency,
                      stock_on_hand=_positive_int(stock_on_hand, field="stock_on_hand", allow_zero=True))
    try:
        with transaction.atomic():
            product.save()
    except IntegrityError:
        raise ApplicationError("A product with this SKU already exists.", code=InventoryErrorCode.SKU_TAKEN,
                               fields={"sku": ["Already taken in this instance."]}, status_code=409) from None
    return product


@transaction.atomic
def product_restock(*, product: Product, quantity: int, actor: Any = None) -> Product:
    """Add ``quantity`` units to ``stock_on_hand`` (an atomic increment: concurrent restocks all count); audited
    (``restock``) with ``actor`` in the same transaction."""
    quantity = _positive_int(quantity, field="quantity")
    if not Product.objects.filter(pk=product.pk, stock_on_hand__lte=MAX_STOCK - quantity).update(
            stock_on_hand=F("stock_on_hand") + quantity):
        raise ApplicationError(f"Stock on hand cannot exceed {MAX_STOCK}.", code=InventoryErrorCode.STOCK_LIMIT,
                               fields={"quantity": ["Too many units."]})
    product.refresh_from_db()
    audit_record(action=AuditAction.RESTOCK, actor=actor, instance=product.instance, target=product,
                 before={"stock_on_hand": product.stock_on_hand - quantity},
                 after={"stock_on_hand": product.stock_on_hand, "quantity": quantity})
    return product


def price_quote_new(*, instance: Instance, currency: str, lines: list[tuple[int, int, Decimal]],
                    order_id: int | None = None) -> PriceQuote:
    """The (unsaved) record of the prices an order is placed at (``(product_id, quantity, unit_price)`` per line).
    The reservation charges the quote's amount, so later price changes do not touch the order. ``order_place``
    inserts it in its own placement statement, which sets ``order_id``."""
    amount = sum((unit_price * quantity for _, quantity, unit_price in lines), Decimal("0.00")).quantize(CENT)
    return PriceQuote(
        instance=instance, order_id=order_id, currency=currency, amount=amount,
        lines=[{"product_id": pid, "quantity": qty, "unit_price": str(price)} for pid, qty, price in sorted(lines)])


@transaction.atomic(savepoint=False)
def price_quote_record(*, instance: Instance, order_id: int, currency: str,
                       lines: list[tuple[int, int, Decimal]]) -> PriceQuote:
    """``price_quote_new`` saved, in the caller's transaction."""
    quote = price_quote_new(instance=instance, currency=currency, lines=lines, order_id=order_id)
    quote.save(force_insert=True)
    return quote


@dataclass(frozen=True)
class _Line:
    product_id: int
    quantity: int


def _normalize_lines(lines: Any) -> list[_Line] | None:
    """Order lines from an event payload, merged per product and sorted by product id; None when malformed."""
    if not isinstance(lines, list) or not lines:
        return None
    merged: dict[int, int] = {}
    for line in lines:
        if not isinstance(line, dict):
            return None
        product_id, quantity = line.get("product_id"), line.get("quantity")
        for value in (product_id, quantity):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value > 2**31 - 1:
                return None
        merged[product_id] = merged.get(product_id, 0) + quantity
    return [_Line(pid, qty) for pid, qty in sorted(merged.items())]


@dataclass(frozen=True)
class _Stock:
    """A product as the reservation sees it, locked."""

    price: Decimal
    currency: str
    available: int


# The reservation's hot statements are PL/pgSQL functions (migration 0003, which explains them), so PostgreSQL
# keeps their plans. ``inventory_reservation_claim``: the claim, the product locks and the quote read in one round
# trip (was three; no Product models built). ``inventory_reservation_move``: a transition with its stock movement
# (was a conditional UPDATE ... RETURNING the lines and an UPDATE per product). Written by hand: the ORM has no
# data-modifying CTE, and a function is what keeps the plan.
_CLAIM = ("SELECT * FROM inventory_reservation_claim(%s::bigint, %s::bigint, %s::text, %s::text, %s::timestamptz, "
          "%s::bigint[])")
_MOVE = "SELECT * FROM inventory_reservation_move(%s::bigint, %s::bigint, %s::text, %s::text, %s::text, %s, %s)"


def _claim_and_lock(reservation: Reservation, product_ids: list[int]) -> tuple[dict[int, _Stock],
                                                                           dict[int, Decimal] | None] | None:
    """Call ``inventory_reservation_claim`` for the new ``reservation`` (saved when claimed): None when the order was
    claimed already; else the locked products by id and the unit prices of the order's price quote (None for an
    order placed without one; not read for lines with no known product)."""
    reservation.created_at = reservation.updated_at = timezone.now()
    params = [reservation.instance_id, reservation.order_id, reservation.status, reservation.currency,
              reservation.created_at, product_ids]
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, params)
        rows = cursor.fetchall()
    if not rows:
        return None
    reservation.pk = rows[0][0]
    reservation._state.adding = False
    reservation._state.db = connection.alias
    stock = {pk: _Stock(price=price, currency=currency, available=available)
             for _, pk, price, currency, available, _ in rows if pk is not None}
    quote_lines = rows[0][5]
    if isinstance(quote_lines, str | bytes):
        quote_lines = json.loads(quote_lines)  # Django's psycopg setup leaves jsonb as text
    quoted = None
    if stock and quote_lines is not None:
        quoted = {int(line["product_id"]): Decimal(line["unit_price"]) for line in quote_lines}
    return stock, quoted


# Consumer-path services below run inside the bus's delivery transaction, which rolls back as a whole on any
# exception: a savepoint of their own (two round trips) would protect nothing, so ``savepoint=False``. Called
# outside a transaction they still open one.
@transaction.atomic(savepoint=False)
def reservation_reserve_for_order(*, instance: Instance, order_id: int, customer_id: int, lines: Any,
                                  currency: str, causation_id: str | None = None) -> Reservation:
    """Hold stock for every line of the order, or for none of them.

    On success sends ``product_reserved`` with the amount to charge; on failure changes no stock, records a
    ``rejected`` reservation and sends ``product_reservation_failed``. A second call for the same order
    (redelivery, or a cancellation that got here first) returns the existing row and sends nothing.
    """
    reservation = Reservation(instance=instance, order_id=order_id, status=ReservationStatus.RESERVED,
                              currency=currency[:3] if isinstance(currency, str) else "")
    normalized = _normalize_lines(lines)
    claimed = _claim_and_lock(reservation, [line.product_id for line in normalized or []])
    if claimed is None:
        return Reservation.objects.for_instance(instance).get(order_id=order_id)
    products, quoted = claimed

    failure: ReservationFailure | None = None
    prices: dict[int, Decimal] = {}
    if normalized is None:
        failure = ReservationFailure.INVALID_LINES
    else:
        # The prices the order was placed at; the current ones only for an order placed without a quote.
        prices = quoted if quoted is not None else {pk: p.price for pk, p in products.items()}
        if len(products) != len(normalized):
            failure = ReservationFailure.UNKNOWN_PRODUCT
        elif any(line.product_id not in prices for line in normalized):
            failure = ReservationFailure.INVALID_LINES  # the event's lines are not the quoted order's
        elif any(p.currency != currency for p in products.values()):
            failure = ReservationFailure.CURRENCY_MISMATCH
        elif any(products[line.product_id].available < line.quantity for line in normalized):
            failure = ReservationFailure.INSUFFICIENT_STOCK
        elif sum(prices[line.product_id] * line.quantity for line in normalized) > MAX_AMOUNT:
            failure = ReservationFailure.AMOUNT_TOO_LARGE

    if failure is not None:
        reservation.status = ReservationStatus.REJECTED
        reservation.reason = failure
        reservation.save(update_fields=["status", "reason", "updated_at"])
        product_reservation_failed.send(sender=Reservation, instance=instance, causation_id=causation_id,
                                        payload={"order_id": order_id, "reason": str(failure)})
        return reservation

    assert normalized is not None
    reservation.lines = [{"product_id": line.product_id, "quantity": line.quantity,
                          "unit_price": str(prices[line.product_id])} for line in normalized]
    reservation.amount = sum((prices[line.product_id] * line.quantity for line in normalized),
                             Decimal("0.00")).quantize(CENT)
    held = _hold_stock(reservation, normalized)
    if held != len(normalized):  # pragma: no cover - defended by the row locks
        raise RuntimeError(f"stock of order {order_id}'s products changed under their locks")
    product_reserved.send(sender=Reservation, instance=instance, causation_id=causation_id,
                          payload={"order_id": order_id, "customer_id": customer_id,
                                   "amount": str(reservation.amount), "currency": currency})
    return reservation


def _hold_stock(reservation: Reservation, lines: list[_Line]) -> int:
    """ONE statement for what the ORM says in one UPDATE per line and a save: hold every line's units
    (``stock_reserved += quantity`` where that much is on hand: the last guard before the CHECK constraint; the
    rows are locked already) and write the reservation's ``lines`` and ``amount``. Returns how many products it
    held units of (every line's, unless the stock changed under the locks)."""
    product, table = Product._meta, Reservation._meta
    field = table.get_field
    sql = (f"WITH held AS (UPDATE {product.db_table} AS p SET stock_reserved = p.stock_reserved + v.quantity "
           f"FROM (VALUES {', '.join(['(%s::bigint, %s::integer)'] * len(lines))}) AS v (id, quantity) "
           f"WHERE p.id = v.id AND p.stock_on_hand >= p.stock_reserved + v.quantity RETURNING p.id) "
           f"UPDATE {table.db_table} SET lines = %s, amount = %s, updated_at = %s WHERE id = %s "
           f"RETURNING (SELECT count(*) FROM held)")
    reservation.updated_at = timezone.now()
    params = [v for line in lines for v in (line.product_id, line.quantity)] + [
        field("lines").get_db_prep_save(reservation.lines, connection),
        field("amount").get_db_prep_save(reservation.amount, connection),
        field("updated_at").get_db_prep_save(reservation.updated_at, connection), reservation.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def _transition(instance: Instance, order_id: int, *, from_status: str, to_status: str, on_hand_sign: int,
                reserved_sign: int, reason: str | None = None) -> bool:
    """Move the order's reservation from ``from_status`` to ``to_status`` and its lines' units by the signs (a
    product no longer there is skipped), in one round trip: whether it moved (False when it was not in
    ``from_status``)."""
    params = [instance.pk, order_id, from_status, to_status, reason[:64] if reason is not None else None,
              on_hand_sign, reserved_sign]
    with connection.cursor() as cursor:
        cursor.execute(_MOVE, params)
        moved, _ = cursor.fetchone()
    return bool(moved)


@transaction.atomic(savepoint=False)
def reservation_commit_for_order(*, instance: Instance, order_id: int) -> bool:
    """Order approved: the reserved units leave the shelf. Returns whether anything changed (only from reserved)."""
    return _transition(instance, order_id, from_status=ReservationStatus.RESERVED,
                       to_status=ReservationStatus.COMMITTED, on_hand_sign=-1, reserved_sign=-1)


@transaction.atomic
def reservation_release_for_order(*, instance: Instance, order_id: int, reason: str = "") -> bool:
    """Order canceled: give the stock back. Idempotent; returns whether any stock moved.

    From ``reserved`` the hold is dropped; from ``committed`` the units return to ``stock_on_hand``. With no
    reservation yet (the cancellation overtook order-created) a ``released`` tombstone is written.
    """
    if _transition(instance, order_id, from_status=ReservationStatus.RESERVED, to_status=ReservationStatus.RELEASED,
                   reason=reason, on_hand_sign=0, reserved_sign=-1):
        return True
    if _transition(instance, order_id, from_status=ReservationStatus.COMMITTED,
                   to_status=ReservationStatus.RELEASED, reason=reason, on_hand_sign=1, reserved_sign=0):
        return True
    if not Reservation.objects.for_instance(instance).filter(order_id=order_id).exists():
        tombstone = Reservation(instance=instance, order_id=order_id, status=ReservationStatus.RELEASED,
                                reason=reason[:64])
        if not insert_or_nothing(tombstone, conflict=("instance", "order_id")):
            # A reservation appeared meanwhile (its transaction just committed): release that one instead.
            return reservation_release_for_order(instance=instance, order_id=order_id, reason=reason)
    return False
