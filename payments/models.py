from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Instance
from payments.choices import PaymentStatus


class WalletQuerySet(models.QuerySet["Wallet"]):
    def for_instance(self, instance: Instance | int) -> WalletQuerySet:
        return self.filter(instance=instance)


class Wallet(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="wallets")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wallets")
    currency = models.CharField(max_length=3)
    balance = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WalletQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "user", "currency"], name="payments_wallet_one_per_currency"),
            models.CheckConstraint(condition=Q(balance__gte=0), name="payments_wallet_balance_non_negative"),
        ]

    def __str__(self) -> str:
        return f"wallet {self.user_id} {self.currency} ({self.instance_id})"


class PaymentQuerySet(models.QuerySet["Payment"]):
    def for_instance(self, instance: Instance | int) -> PaymentQuerySet:
        return self.filter(instance=instance)


class Payment(models.Model):
    """The one charge decision for an order (``order_id`` is a plain integer: payments hears of orders by events)."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="payments")
    order_id = models.BigIntegerField()
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="payments")
    wallet = models.ForeignKey(Wallet, on_delete=models.SET_NULL, null=True, blank=True, related_name="payments")
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, blank=True, default="")
    status = models.CharField(max_length=16, choices=PaymentStatus.choices)
    reason = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PaymentQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "order_id"], name="payments_payment_one_per_order"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="payments_payment_amount_non_negative"),
        ]
        indexes = [models.Index(fields=["customer", "-id"])]

    def __str__(self) -> str:
        return f"payment for order {self.order_id}: {self.status}"
