"""inventory writes. Stock moves only through conditional updates on rows locked in pk order.

Reservation life cycle, keyed by ``(instance, order_id)`` and written at most once per transition:
``reserved -> committed`` (order approved: the goods leave ``stock_on_hand``), ``reserved|committed -> released``
(order canceled: compensation), ``rejected`` (could not reserve; nothing held). A cancellation that arrives
before the order's reservation leaves a ``released`` tombstone, so a late order-created reserves nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Subquery
from django.utils import timezone

from accounts.models import Instance
from audit.choices import AuditAction
from audit.services import audit_record
from inventory.choices import ReservationStatus
from inventory.error_codes import InventoryErrorCode, ReservationFailure
from inventory.models import PriceQuote, Product, Reservation
from inventory.signals import product_reservation_failed, product_reserved
from saaskit.db import insert_or_nothing, update_returning
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


def _locked_products_and_quote(instance: Instance, product_ids: list[int],
                               order_id: int) -> tuple[dict[int, Product], dict[int, Decimal] | None]:
    """Lock the instance's products with these ids, always in pk order so concurrent reservations never deadlock,
    and read the unit prices of the order's price quote (``price_quote_new``) in the same statement (a
    subquery on each row; FOR UPDATE locks the products only). With no product found the quote is not needed:
    the lines are unknown then. The quote is None for an order placed without one."""
    quote = PriceQuote.objects.for_instance(instance).filter(order_id=order_id).order_by("id").values("lines")[:1]
    locked = list(Product.objects.for_instance(instance).filter(pk__in=product_ids).order_by("pk")
                  .select_for_update(of=("self",)).annotate(quote_lines=Subquery(quote)))
    quoted = None
    if locked and locked[0].quote_lines is not None:
        quoted = {int(line["product_id"]): Decimal(line["unit_price"]) for line in locked[0].quote_lines}
    return {p.pk: p for p in locked}, quoted


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
    # Claim the order first, in one statement: a concurrent call for the same order waits on the unique index,
    # then finds the row there (and the lock order stays reservation, then products, as in release).
    reservation = Reservation(instance=instance, order_id=order_id, status=ReservationStatus.RESERVED,
                              currency=currency[:3] if isinstance(currency, str) else "")
    if not insert_or_nothing(reservation, conflict=("instance", "order_id")):
        return Reservation.objects.for_instance(instance).get(order_id=order_id)

    normalized = _normalize_lines(lines)
    failure: ReservationFailure | None = None
    prices: dict[int, Decimal] = {}
    if normalized is None:
        failure = ReservationFailure.INVALID_LINES
    else:
        products, quoted = _locked_products_and_quote(instance, [line.product_id for line in normalized], order_id)
        # The prices the order was placed at; the current ones only for an order placed without a quote.
        prices = quoted if quoted is not None else {pk: p.price for pk, p in products.items()}
        if len(products) != len(normalized):
            failure = ReservationFailure.UNKNOWN_PRODUCT
        elif any(line.product_id not in prices for line in normalized):
            failure = ReservationFailure.INVALID_LINES  # the event's lines are not the quoted order's
        elif any(p.currency != currency for p in products.values()):
            failure = ReservationFailure.CURRENCY_MISMATCH
        elif any(products[line.product_id].stock_available < line.quantity for line in normalized):
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


def _move_stock(instance: Instance, lines: list[dict[str, Any]], *, on_hand_sign: int, reserved_sign: int) -> None:
    """Move the lines' units. Each UPDATE locks its row, and they go in pk order (the order
    ``_locked_products_and_quote`` locks in), so concurrent movements never deadlock; a product no longer there is
    skipped."""
    quantities: dict[int, int] = {}
    for line in lines:
        quantities[int(line["product_id"])] = quantities.get(int(line["product_id"]), 0) + int(line["quantity"])
    for pk in sorted(quantities):
        qty = quantities[pk]
        Product.objects.for_instance(instance).filter(pk=pk).update(
            stock_on_hand=F("stock_on_hand") + on_hand_sign * qty,
            stock_reserved=F("stock_reserved") + reserved_sign * qty)


def _transition(instance: Instance, order_id: int, *, from_status: str, to_status: str,
                reason: str | None = None) -> list[dict[str, Any]] | None:
    """Move the order's reservation from ``from_status`` to ``to_status`` (conditional UPDATE ... RETURNING, one
    round trip): its lines when it moved, None when it was not in ``from_status``."""
    values: dict[str, Any] = {"status": to_status}
    if reason is not None:
        values["reason"] = reason[:64]
    rows = update_returning(Reservation, where={"instance": instance, "order_id": order_id, "status": from_status},
                            values=values, returning=["lines"])
    return rows[0][0] if rows else None


@transaction.atomic(savepoint=False)
def reservation_commit_for_order(*, instance: Instance, order_id: int) -> bool:
    """Order approved: the reserved units leave the shelf. Returns whether anything changed (only from reserved)."""
    lines = _transition(instance, order_id, from_status=ReservationStatus.RESERVED,
                        to_status=ReservationStatus.COMMITTED)
    if lines is None:
        return False
    _move_stock(instance, lines, on_hand_sign=-1, reserved_sign=-1)
    return True


@transaction.atomic
def reservation_release_for_order(*, instance: Instance, order_id: int, reason: str = "") -> bool:
    """Order canceled: give the stock back. Idempotent; returns whether any stock moved.

    From ``reserved`` the hold is dropped; from ``committed`` the units return to ``stock_on_hand``. With no
    reservation yet (the cancellation overtook order-created) a ``released`` tombstone is written.
    """
    lines = _transition(instance, order_id, from_status=ReservationStatus.RESERVED,
                        to_status=ReservationStatus.RELEASED, reason=reason)
    if lines is not None:
        _move_stock(instance, lines, on_hand_sign=0, reserved_sign=-1)
        return True
    lines = _transition(instance, order_id, from_status=ReservationStatus.COMMITTED,
                        to_status=ReservationStatus.RELEASED, reason=reason)
    if lines is not None:
        _move_stock(instance, lines, on_hand_sign=1, reserved_sign=0)
        return True
    if not Reservation.objects.for_instance(instance).filter(order_id=order_id).exists():
        tombstone = Reservation(instance=instance, order_id=order_id, status=ReservationStatus.RELEASED,
                                reason=reason[:64])
        if not insert_or_nothing(tombstone, conflict=("instance", "order_id")):
            # A reservation appeared meanwhile (its transaction just committed): release that one instead.
            return reservation_release_for_order(instance=instance, order_id=order_id, reason=reason)
    return False
