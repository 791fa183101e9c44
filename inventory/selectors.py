from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import connection

from accounts.models import Instance
from inventory.error_codes import InventoryErrorCode
from inventory.models import Product, Reservation
from saaskit.errors import NotFoundError


def product_list(*, instance: Instance) -> list[Product]:
    return list(Product.objects.for_instance(instance).order_by("sku"))


def product_get(*, instance: Instance, product_id: int) -> Product:
    """The instance's product, or the same 404 whether it is missing or belongs to another instance."""
    product = Product.objects.for_instance(instance).filter(pk=product_id).first()
    if product is None:
        raise NotFoundError("Product not found.", code=InventoryErrorCode.PRODUCT_NOT_FOUND)
    return product


def reservation_for_order(*, instance: Instance | int, order_id: int) -> Reservation | None:
    return Reservation.objects.for_instance(instance).filter(order_id=order_id).first()


@dataclass(frozen=True)
class Price:
    price: Decimal
    currency: str


def product_prices(*, instance: Instance | int, product_ids: list[int]) -> dict[int, Price]:
    """The price and currency of the instance's products among ``product_ids`` (others' and missing ids are
    absent): the placement's read. One hand-written SELECT: building the ORM query and the Product models cost
    more CPU than the statement itself on this hot path."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, price, currency FROM {Product._meta.db_table} "
                       "WHERE instance_id = %s AND id = ANY(%s::bigint[])",
                       [instance if isinstance(instance, int) else instance.pk, list(product_ids)])
        return {pk: Price(price, currency) for pk, price, currency in cursor.fetchall()}
