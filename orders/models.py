from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Instance
from orders.choices import DeadLetterAction, OrderEventKind, OrderStatus


class OrderQuerySet(models.QuerySet["Order"]):
    def for_instance(self, instance: Instance | int) -> OrderQuerySet:
        return self.filter(instance=instance)


class Order(models.Model):
    # db_index=False: the (instance, customer, -created_at) and (instance, status) indexes start with it, so a
    # separate one would be one more index to write per INSERT and per status change for no query.
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="orders", db_index=False)
    # SET_NULL: an order is a business record that outlives its customer's account; one still in flight
    # finishes its saga (no wallet left -> payment fails -> stock released).
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                 related_name="orders")
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING)
    currency = models.CharField(max_length=3)
    # Sum of the lines' unit prices when the order was placed: what the customer is charged (inventory's
    # PriceQuote carries the same prices to the reservation; a later price change does not touch it).
    total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    reason = models.CharField(max_length=64, blank=True, default="")
    # A compensation of this order was dead-lettered: stock or money may be out of place until
    # ``manage.py saga resume`` re-runs what is owed.
    needs_attention = models.BooleanField(default=False)
    attention_reason = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(total__gte=0), name="orders_order_total_non_negative")]
        indexes = [models.Index(fields=["instance", "customer", "-created_at"]),
                   models.Index(fields=["instance", "status"]),
                   # The deadline sweep: pending orders by age.
                   models.Index(fields=["created_at"], condition=Q(status=OrderStatus.PENDING),
                                name="orders_order_pending_age"),
                   models.Index(fields=["id"], condition=Q(needs_attention=True), name="orders_order_attention")]

    def __str__(self) -> str:
        return f"order {self.pk}: {self.status}"


class OrderLine(models.Model):
    # db_index=False: the unique (order, product_id) index serves every lookup by order.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", db_index=False)
    # A plain integer: inventory owns products and checks them when it reserves.
    product_id = models.BigIntegerField()
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2, default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orders_orderline_quantity_positive"),
            models.UniqueConstraint(fields=["order", "product_id"], name="orders_orderline_one_per_product"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"


class OrderEvent(models.Model):
    """The order's timeline: one row per transition, with the bus event that caused it (if any)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="timeline")
    kind = models.CharField(max_length=16, choices=OrderEventKind.choices)
    detail = models.JSONField(default=dict, blank=True)
    causation_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"order {self.order_id} {self.kind}"


class DeadLetter(models.Model):
    """A dead-lettered delivery of an order event the saga sweep has handled (one row per delivery, so several
    sweeping hosts handle each once). ``delivery_id`` is a plain integer: the bus may purge its rows."""

    delivery_id = models.BigIntegerField(unique=True)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, null=True, blank=True, related_name="dead_letters")
    event_name = models.CharField(max_length=100)
    consumer = models.CharField(max_length=200)
    error = models.TextField(blank=True, default="")
    action = models.CharField(max_length=16, choices=DeadLetterAction.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.consumer} on {self.event_name}: {self.action}"
