"""payments writes. Money moves only by conditional updates (``balance = balance - x WHERE balance >= x``).

One ``Payment`` row per ``(instance, order_id)`` records the single charge decision for the order:
``succeeded`` -> ``refunded`` on cancellation; ``failed`` (with a reason) stays; ``voided`` is the tombstone a
cancellation leaves when it overtakes the charge, so a late event-product-reserved charges nothing.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from accounts.models import Instance, User
from payments.choices import PaymentStatus
from payments.error_codes import PaymentFailure, PaymentsErrorCode, SuspiciousKind
from payments.models import Payment, Wallet
from payments.signals import payment_processed, suspicious_activity
from saaskit.errors import ApplicationError

CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999999.99")


def suspicious_failures_in_a_row() -> int:
    """After this many insufficient-funds failures in a row for one customer, event-suspicious-activity is sent."""
    return int(getattr(settings, "PAYMENTS_SUSPICIOUS_FAILURES_IN_A_ROW", 3))


def _parse_amount(value: Any) -> Decimal | None:
    if isinstance(value, bool | float):
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT or amount != amount.quantize(CENT):
        return None
    return amount.quantize(CENT)


def _amount_or_error(value: Any, *, allow_zero: bool) -> Decimal:
    amount = _parse_amount(value)
    if amount is None or (amount == 0 and not allow_zero):
        raise ApplicationError("Amount must be a positive decimal with at most 2 decimals.",
                               code=PaymentsErrorCode.INVALID_AMOUNT, fields={"amount": ["Invalid amount."]})
    return amount


@transaction.atomic
def wallet_create(*, instance: Instance, user: User, currency: str, balance: Decimal | str = "0") -> Wallet:
    if not isinstance(currency, str) or not CURRENCY_RE.match(currency):
        raise ApplicationError("Currency must be a 3-letter ISO code.", code=PaymentsErrorCode.INVALID_CURRENCY,
                               fields={"currency": ["Must be a 3-letter upper-case ISO code."]})
    wallet = Wallet(instance=instance, user=user, currency=currency, balance=_amount_or_error(balance, allow_zero=True))
    try:
        with transaction.atomic():
            wallet.save()
    except IntegrityError:
        raise ApplicationError("This user already has a wallet in this currency.",
                               code=PaymentsErrorCode.WALLET_EXISTS, status_code=409) from None
    return wallet


@transaction.atomic
def wallet_top_up(*, wallet: Wallet, amount: Decimal | str) -> Wallet:
    value = _amount_or_error(amount, allow_zero=False)
    if not Wallet.objects.filter(pk=wallet.pk, balance__lte=MAX_AMOUNT - value).update(balance=F("balance") + value):
        raise ApplicationError(f"A balance cannot exceed {MAX_AMOUNT}.", code=PaymentsErrorCode.BALANCE_LIMIT,
                               fields={"amount": ["Too large for this wallet."]})
    wallet.refresh_from_db()
    return wallet


def _send_processed(payment: Payment, *, instance: Instance, causation_id: str | None) -> None:
    payment_processed.send(sender=Payment, instance=instance, causation_id=causation_id, payload={
        "order_id": payment.order_id, "payment_id": payment.pk, "status": str(payment.status),
        "amount": str(payment.amount), "reason": payment.reason,
    })


def _insufficient_funds_streak(*, instance: Instance, customer_id: int, limit: int) -> int:
    recent = (Payment.objects.for_instance(instance).filter(customer_id=customer_id)
              .exclude(status=PaymentStatus.VOIDED).order_by("-id").values_list("reason", flat=True)[:limit])
    streak = 0
    for reason in recent:
        if reason != PaymentFailure.INSUFFICIENT_FUNDS:
            break
        streak += 1
    return streak


@transaction.atomic
def payment_charge_for_order(*, instance: Instance, order_id: int, customer_id: int, amount: Any, currency: str,
                             causation_id: str | None = None) -> Payment:
    """Charge the customer's wallet in ``currency`` for the order, once.

    Records the outcome and sends ``payment_processed`` (succeeded, or failed with a reason). If the order
    already has a payment row (redelivery, or a cancellation came first) it is returned and nothing is sent.
    """
    customer_exists = isinstance(customer_id, int) and User.objects.filter(pk=customer_id).exists()
    try:
        with transaction.atomic():
            # Claim the order: a concurrent charge for it waits on the unique index and then backs off.
            payment = Payment.objects.create(instance=instance, order_id=order_id, status=PaymentStatus.FAILED,
                                             customer_id=customer_id if customer_exists else None,
                                             currency=currency[:3] if isinstance(currency, str) else "")
    except IntegrityError:
        return Payment.objects.for_instance(instance).get(order_id=order_id)

    value = _parse_amount(amount)
    wallet = (Wallet.objects.for_instance(instance).filter(user_id=customer_id, currency=currency).first()
              if customer_exists else None)
    if value is None:
        payment.reason = PaymentFailure.INVALID_AMOUNT
    elif wallet is None:
        payment.amount, payment.reason = value, PaymentFailure.NO_WALLET
    else:
        payment.amount, payment.wallet = value, wallet
        if Wallet.objects.filter(pk=wallet.pk, balance__gte=value).update(balance=F("balance") - value):
            payment.status = PaymentStatus.SUCCEEDED
        else:
            payment.reason = PaymentFailure.INSUFFICIENT_FUNDS
    payment.save(update_fields=["amount", "wallet", "status", "reason", "updated_at"])
    _send_processed(payment, instance=instance, causation_id=causation_id)

    if payment.reason == PaymentFailure.INSUFFICIENT_FUNDS:
        # Serialize the streak count per wallet so two concurrent failures cannot both miss the threshold.
        Wallet.objects.select_for_update().filter(pk=wallet.pk).first()
        threshold = suspicious_failures_in_a_row()
        # Look one further back: exactly ``threshold`` means this failure completed the streak, so each streak
        # reports once, however long it grows.
        streak = _insufficient_funds_streak(instance=instance, customer_id=customer_id, limit=threshold + 1)
        if streak == threshold:
            suspicious_activity.send(sender=Payment, instance=instance, causation_id=causation_id, payload={
                "kind": str(SuspiciousKind.REPEATED_INSUFFICIENT_FUNDS),
                "detail": f"{threshold} charges in a row failed for insufficient funds (last: order {order_id})",
                "user_id": customer_id,
            })
    return payment


@transaction.atomic
def payment_refund_for_order(*, instance: Instance, order_id: int) -> bool:
    """Order canceled: give a succeeded charge back. Idempotent; returns whether money moved.

    With no payment yet (the cancellation overtook the charge) a ``voided`` tombstone is written.
    """
    payments = Payment.objects.for_instance(instance).filter(order_id=order_id)
    if payments.filter(status=PaymentStatus.SUCCEEDED).update(status=PaymentStatus.REFUNDED):
        payment = payments.get()
        Wallet.objects.filter(pk=payment.wallet_id).update(balance=F("balance") + payment.amount)
        return True
    if not payments.exists():
        try:
            with transaction.atomic():
                Payment.objects.create(instance=instance, order_id=order_id, status=PaymentStatus.VOIDED,
                                       reason="order_canceled")
        except IntegrityError:
            return payment_refund_for_order(instance=instance, order_id=order_id)
    return False
