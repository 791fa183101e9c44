from django.db import models


class PaymentStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    REFUNDED = "refunded", "Refunded"
    # The order was canceled before any charge was attempted: nothing will be charged for it.
    VOIDED = "voided", "Voided"


class LedgerAccount(models.TextChoices):
    """The accounts a ledger entry can move money on, per instance and currency."""

    WALLET = "wallet", "Customer wallet"
    REVENUE = "revenue", "Instance revenue"
    # Money entering or leaving the system from outside (top-ups, manual adjustments).
    FUNDING = "funding", "External funding"


class LedgerKind(models.TextChoices):
    TOP_UP = "top_up", "Top-up"
    CHARGE = "charge", "Charge"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Manual adjustment"
