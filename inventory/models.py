from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from accounts.models import Instance
from inventory.choices import ReservationStatus


class ProductQuerySet(models.QuerySet["Product"]):
    def for_instance(self, instance: Instance | int) -> ProductQuerySet:
        return self.filter(instance=instance)


class Product(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="products")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    stock_on_hand = models.PositiveIntegerField(default=0)
    stock_reserved = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "sku"], name="inventory_product_sku_unique_per_instance"),
            models.CheckConstraint(condition=Q(price__gte=0), name="inventory_product_price_non_negative"),
            models.CheckConstraint(condition=Q(stock_on_hand__gte=0), name="inventory_product_on_hand_non_negative"),
            models.CheckConstraint(condition=Q(stock_reserved__gte=0), name="inventory_product_reserved_non_negative"),
            models.CheckConstraint(condition=Q(stock_reserved__lte=F("stock_on_hand")),
                                   name="inventory_product_reserved_within_on_hand"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"

    @property
    def stock_available(self) -> int:
        return self.stock_on_hand - self.stock_reserved


class ReservationQuerySet(models.QuerySet["Reservation"]):
    def for_instance(self, instance: Instance | int) -> ReservationQuerySet:
        return self.filter(instance=instance)


class Reservation(models.Model):
    """Stock held for one order. ``order_id`` is a plain integer: inventory hears about orders only through events.

    ``lines`` is ``[{"product_id": int, "quantity": int, "unit_price": "decimal"}]``, one entry per product.
    """

    # db_index=False: the unique (instance, order_id) and the (instance, status) indexes start with it.
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="reservations", db_index=False)
    order_id = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=ReservationStatus.choices)
    lines = models.JSONField(default=list, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, blank=True, default="")
    reason = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ReservationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "order_id"], name="inventory_reservation_one_per_order"),
        ]
        indexes = [models.Index(fields=["instance", "status"])]

    def __str__(self) -> str:
        return f"reservation of order {self.order_id}: {self.status}"


class PriceQuoteQuerySet(models.QuerySet["PriceQuote"]):
    def for_instance(self, instance: Instance | int) -> PriceQuoteQuerySet:
        return self.filter(instance=instance)


class PriceQuote(models.Model):
    """The prices an order was placed at, written by ``orders`` in its placement transaction.

    The reservation charges these, not the prices of the moment it runs: a price change between placement and
    reservation never changes what the customer pays. ``lines`` is ``[{"product_id", "quantity", "unit_price"}]``
    and ``amount`` their sum (the order's total). ``order_id`` is a plain integer, as on ``Reservation``.
    """

    # db_index=False: the unique (instance, order_id) index starts with it.
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="price_quotes", db_index=False)
    order_id = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    lines = models.JSONField(default=list)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PriceQuoteQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "order_id"], name="inventory_pricequote_one_per_order"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="inventory_pricequote_amount_non_negative"),
        ]

    def __str__(self) -> str:
        return f"quote of order {self.order_id}: {self.amount} {self.currency}"
