from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.models import Instance
from payments.choices import LedgerAccount, LedgerKind, PaymentStatus


class WalletQuerySet(models.QuerySet["Wallet"]):
    def for_instance(self, instance: Instance | int) -> WalletQuerySet:
        return self.filter(instance=instance)


class Wallet(models.Model):
    """A customer's money in one currency. ``balance`` is a cache of the sum of its ledger entries, updated in the
    same transaction as they are written; ``manage.py payments reconcile`` recomputes it from the entries.

    Money records outlive people and tenants: deleting the user leaves the wallet (``user`` becomes null), an
    instance with wallets cannot be deleted, and a wallet with ledger entries cannot be deleted at all."""

    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="wallets")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="wallets")
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

    # db_index=False on instance and customer: the unique (instance, order_id) and the (customer, -id) indexes
    # start with them, so separate ones would only be more index entries to write per payment.
    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="payments", db_index=False)
    order_id = models.BigIntegerField()
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="payments", db_index=False)
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, null=True, blank=True, related_name="payments")
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


class ImmutableLedgerRow(models.Model):
    """Ledger rows are written once. ``save()`` of an existing row and ``delete()`` raise here, and a database
    trigger (migration 0003) refuses UPDATE and DELETE for anything that bypasses the ORM."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not self._state.adding:
            raise ValueError(f"{type(self).__name__} rows are immutable")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise ValueError(f"{type(self).__name__} rows are immutable")


class LedgerTransactionQuerySet(models.QuerySet["LedgerTransaction"]):
    def for_instance(self, instance: Instance | int) -> LedgerTransactionQuerySet:
        return self.filter(instance=instance)


class LedgerTransaction(ImmutableLedgerRow):
    """One money movement (top-up, charge, refund, adjustment): its entries sum to zero."""

    # db_index=False: the (instance, order_id) index starts with it.
    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="ledger_transactions",
                                 db_index=False)
    kind = models.CharField(max_length=16, choices=LedgerKind.choices)
    currency = models.CharField(max_length=3)
    order_id = models.BigIntegerField(null=True, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+", help_text="who asked for it (top-ups and adjustments)")
    reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = LedgerTransactionQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["instance", "order_id"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.pk} ({self.currency})"


class LedgerEntry(ImmutableLedgerRow):
    """A signed amount on one account: a wallet (``wallet`` set), or the instance's revenue or funding account."""

    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    # db_index=False on instance and wallet: the (instance, account, currency) and (wallet, -id) indexes start
    # with them, so separate ones would only be two more index entries to write per ledger entry.
    instance = models.ForeignKey(Instance, on_delete=models.PROTECT, related_name="+", db_index=False)
    account = models.CharField(max_length=16, choices=LedgerAccount.choices)
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, null=True, blank=True, related_name="entries",
                               db_index=False)
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="payments_ledgerentry_amount_not_zero"),
            models.CheckConstraint(
                condition=(Q(account=LedgerAccount.WALLET, wallet__isnull=False)
                           | (~Q(account=LedgerAccount.WALLET) & Q(wallet__isnull=True))),
                name="payments_ledgerentry_wallet_iff_wallet_account"),
        ]
        indexes = [models.Index(fields=["wallet", "-id"]), models.Index(fields=["instance", "account", "currency"])]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.account} {self.amount} {self.currency}"


class IdempotencyRecord(models.Model):
    """The first successful answer to a request sent with an ``Idempotency-Key`` (see ``payments.idempotency``),
    per user and key, kept ``IDEMPOTENCY_KEY_TTL_SECONDS`` (24 h). In PostgreSQL, so every web host sees it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of method, path and body")
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="payments_idempotency_key_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key} -> {self.status_code}"


class AlertQuerySet(models.QuerySet["Alert"]):
    def for_instance(self, instance: Instance | int) -> AlertQuerySet:
        return self.filter(instance=instance)


class Alert(models.Model):
    """Something unusual worth a human's look, recorded from event-suspicious-activity (one row per event)."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=64)
    subject = models.CharField(max_length=64, blank=True, default="", help_text="e.g. user:12")
    user_id = models.BigIntegerField(null=True, blank=True)
    details = models.TextField(blank=True, default="")
    event_id = models.UUIDField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                        related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["instance", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} ({self.instance_id})"
