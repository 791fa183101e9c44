from __future__ import annotations

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


def products_by_id(*, instance: Instance, product_ids: list[int]) -> dict[int, Product]:
    """The instance's products among ``product_ids`` (others' and missing ids are simply absent)."""
    return {p.pk: p for p in Product.objects.for_instance(instance).filter(pk__in=product_ids)}
