"""payments writes. Every movement of money is one balanced ledger transaction (``_post``): immutable entries
summing to zero over the customer's wallet, the instance's revenue account and the external funding account,
written in the same transaction as the wallet's cached balance moves by a conditional update
(``balance = balance - x WHERE balance >= x``).

| kind | wallet | revenue | funding |
|---|---|---|---|
| top_up (and a wallet's opening balance) | +x | | -x |
| charge | -x | +x | |
| refund | +x | -x | |
| adjustment (signed x, with actor and reason) | +x | | -x |

One ``Payment`` row per ``(instance, order_id)`` records the single charge decision for the order:
``succeeded`` -> ``refunded`` on cancellation; ``failed`` (with a reason) stays; ``voided`` is the tombstone a
cancellation leaves when it overtakes the charge, so a late event-product-reserved charges nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Instance, User
from audit.choices import AuditAction
from audit.services import audit_record
from payments.choices import LedgerAccount, LedgerKind, PaymentStatus
from payments.error_codes import PaymentFailure, PaymentsErrorCode, SuspiciousKind
from payments.models import Alert, LedgerEntry, LedgerTransaction, Payment, Wallet
from payments.signals import payment_processed, suspicious_activity
from saaskit.db import insert_or_nothing, insert_with_children
from saaskit.errors import ApplicationError

CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999999.99")


class RefundWithoutWallet(RuntimeError):
    """A succeeded charge must be refunded but its wallet is gone: fail loudly, move nothing."""


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


Leg = tuple[str, int | None, Decimal]  # (LedgerAccount, wallet id for the wallet account, signed amount)


def _post(*, instance: Instance | int, kind: str, currency: str, legs: list[Leg], order_id: int | None = None,
          actor: User | None = None, reason: str = "") -> LedgerTransaction:
    """Write one balanced ledger transaction, inside the caller's transaction (which moves the cached balance)."""
    if sum(amount for _, _, amount in legs) != 0:
        raise ValueError(f"unbalanced ledger transaction: {legs}")
    instance_id = instance if isinstance(instance, int) else instance.pk
    tx = LedgerTransaction(instance_id=instance_id, kind=kind, currency=currency, order_id=order_id, actor=actor,
                           reason=reason[:200])
    # The transaction and its entries in one statement (one round trip instead of two).
    insert_with_children(tx, [LedgerEntry(instance_id=instance_id, account=account, wallet_id=wallet_id,
                                          currency=currency, amount=amount) for account, wallet_id, amount in legs],
                         link="transaction")
    return tx


@transaction.atomic
def wallet_create(*, instance: Instance, user: User, currency: str, balance: Decimal | str = "0",
                  actor: User | None = None) -> Wallet:
    """Open a wallet; a non-zero opening ``balance`` is a top-up from the funding account."""
    if not isinstance(currency, str) or not CURRENCY_RE.match(currency):
        raise ApplicationError("Currency must be a 3-letter ISO code.", code=PaymentsErrorCode.INVALID_CURRENCY,
                               fields={"currency": ["Must be a 3-letter upper-case ISO code."]})
    opening = _amount_or_error(balance, allow_zero=True)
    wallet = Wallet(instance=instance, user=user, currency=currency, balance=opening)
    try:
        with transaction.atomic():
            wallet.save()
    except IntegrityError:
        raise ApplicationError("This user already has a wallet in this currency.",
                               code=PaymentsErrorCode.WALLET_EXISTS, status_code=409) from None
    if opening:
        _post(instance=instance, kind=LedgerKind.TOP_UP, currency=currency, actor=actor, reason="opening balance",
              legs=[(LedgerAccount.WALLET, wallet.pk, opening), (LedgerAccount.FUNDING, None, -opening)])
        audit_record(action=AuditAction.TOP_UP, actor=actor, instance=instance, target=wallet,
                     before={"balance": Decimal("0")}, after={"balance": opening, "amount": opening,
                                                              "reason": "opening balance"})
    return wallet


@transaction.atomic
def wallet_top_up(*, wallet: Wallet, amount: Decimal | str, actor: User | None = None) -> Wallet:
    """Add ``amount`` to the balance (against the funding account); audited (``top_up``) with ``actor``."""
    value = _amount_or_error(amount, allow_zero=False)
    if not Wallet.objects.filter(pk=wallet.pk, balance__lte=MAX_AMOUNT - value).update(balance=F("balance") + value):
        raise ApplicationError(f"A balance cannot exceed {MAX_AMOUNT}.", code=PaymentsErrorCode.BALANCE_LIMIT,
                               fields={"amount": ["Too large for this wallet."]})
    _post(instance=wallet.instance_id, kind=LedgerKind.TOP_UP, currency=wallet.currency, actor=actor,
          legs=[(LedgerAccount.WALLET, wallet.pk, value), (LedgerAccount.FUNDING, None, -value)])
    wallet.refresh_from_db()
    audit_record(action=AuditAction.TOP_UP, actor=actor, instance=wallet.instance, target=wallet,
                 before={"balance": wallet.balance - value}, after={"balance": wallet.balance, "amount": value})
    return wallet


@transaction.atomic
def wallet_adjust(*, wallet: Wallet, amount: Decimal | str, reason: str, actor: User | None) -> LedgerTransaction:
    """A manual correction of a balance by a signed ``amount`` (against the funding account), with its reason and
    actor on the ledger. A debit larger than the balance is refused (409) and changes nothing."""
    magnitude = _parse_amount(str(amount).removeprefix("-")) if isinstance(amount, str | Decimal) else None
    if magnitude is None or magnitude == 0:
        raise ApplicationError("Amount must be a non-zero decimal with at most 2 decimals.",
                               code=PaymentsErrorCode.INVALID_AMOUNT, fields={"amount": ["Invalid amount."]})
    signed = -magnitude if str(amount).startswith("-") else magnitude
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("An adjustment needs a reason.", code=PaymentsErrorCode.REASON_REQUIRED,
                               fields={"reason": ["This field is required."]})
    wallets = Wallet.objects.filter(pk=wallet.pk)
    moved = (wallets.filter(balance__lte=MAX_AMOUNT - signed) if signed > 0 else wallets.filter(
        balance__gte=-signed)).update(balance=F("balance") + signed)
    if not moved:
        raise ApplicationError("The adjustment would take the balance out of range.",
                               code=PaymentsErrorCode.BALANCE_LIMIT, status_code=409,
                               fields={"amount": ["Out of range for this wallet's balance."]})
    tx = _post(instance=wallet.instance_id, kind=LedgerKind.ADJUSTMENT, currency=wallet.currency, actor=actor,
               reason=reason, legs=[(LedgerAccount.WALLET, wallet.pk, signed), (LedgerAccount.FUNDING, None, -signed)])
    wallet.refresh_from_db()
    audit_record(action=AuditAction.BALANCE_ADJUSTMENT, actor=actor, instance=wallet.instance, target=wallet,
                 before={"balance": wallet.balance - signed},
                 after={"balance": wallet.balance, "amount": signed, "reason": reason, "ledger_transaction": tx.pk})
    return tx


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


# Consumer-path services below run inside the bus's delivery transaction, which rolls back as a whole on any
# exception: a savepoint of their own (two round trips) would protect nothing, so ``savepoint=False``. Called
# outside a transaction they still open one.
@transaction.atomic(savepoint=False)
def payment_charge_for_order(*, instance: Instance, order_id: int, customer_id: int, amount: Any, currency: str,
                             causation_id: str | None = None) -> Payment:
    """Charge the customer's wallet in ``currency`` for the order, once.

    Records the outcome and sends ``payment_processed`` (succeeded, or failed with a reason). If the order
    already has a payment row (redelivery, or a cancellation came first) it is returned and nothing is sent.
    """
    customer = customer_id if isinstance(customer_id, int) and not isinstance(customer_id, bool) else None
    value = _parse_amount(amount)
    now = timezone.now()
    if value is None:  # rare: no wallet read, no money moves
        payment = Payment(instance=instance, order_id=order_id, status=PaymentStatus.FAILED, created_at=now,
                          updated_at=now, reason=PaymentFailure.INVALID_AMOUNT,
                          customer_id=customer if customer is not None and User.objects.filter(
                              pk=customer).exists() else None,
                          currency=currency[:3] if isinstance(currency, str) else "")
        claimed = insert_or_nothing(payment, conflict=("instance", "order_id"))
    else:
        payment, debited = _charge(instance=instance, order_id=order_id, customer_id=customer, value=value,
                                   currency=currency if isinstance(currency, str) else "", now=now)
        claimed = payment is not None
    if not claimed:
        return Payment.objects.for_instance(instance).get(order_id=order_id)
    assert payment is not None
    _send_processed(payment, instance=instance, causation_id=causation_id)

    if payment.reason == PaymentFailure.INSUFFICIENT_FUNDS:
        # The charge's statement holds the wallet's row lock until COMMIT, so two concurrent failures of one
        # wallet count their streak one after the other and cannot both miss the threshold.
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
        _check_failures_in_window(payment, instance=instance, causation_id=causation_id)
    return payment


# The charge's statement is the PL/pgSQL function ``payments_charge`` (migration 0006, which explains each part):
# one round trip (was 6: the wallet read, the claim, the debit, the ledger transaction with its entries, the
# payment's outcome, and the customer check when there is no wallet), its plan cached per session. Written by hand:
# the ORM has no data-modifying CTE, and a function is what keeps its plan.
_CHARGE = ("SELECT * FROM payments_charge(%s::bigint, %s::bigint, %s::bigint, %s::text, %s::numeric, "
           "%s::timestamptz, %s, %s, %s, %s, %s, %s, %s)")


def _charge(*, instance: Instance, order_id: int, customer_id: int | None, value: Decimal, currency: str,
            now: Any) -> tuple[Payment | None, bool]:
    """Call ``payments_charge``: the new payment (saved) and whether the wallet was debited, or (None, False) when
    the order already had a payment (nothing written)."""
    params = [instance.pk, order_id, customer_id, currency, value, now, PaymentStatus.SUCCEEDED.value,
              PaymentStatus.FAILED.value, PaymentFailure.NO_WALLET.value, PaymentFailure.INSUFFICIENT_FUNDS.value,
              LedgerKind.CHARGE.value, LedgerAccount.WALLET.value, LedgerAccount.REVENUE.value]
    with connection.cursor() as cursor:
        cursor.execute(_CHARGE, params)
        row = cursor.fetchone()
    if row is None:
        return None, False
    pk, customer, wallet_id, status, reason, debited, entries = row
    # Cannot happen with the wallet locked by the statement; if it did, the delivery rolls back as a whole.
    if status == PaymentStatus.SUCCEEDED and (debited != 1 or entries != (2 if value else 0)):
        raise RuntimeError(f"charge of order {order_id}: succeeded but debited {debited}, {entries} ledger entries")
    payment = Payment(pk=pk, instance=instance, order_id=order_id, customer_id=customer, wallet_id=wallet_id,
                      amount=value, currency=currency[:3], status=status, reason=reason, created_at=now,
                      updated_at=now)
    payment._state.adding = False
    payment._state.db = connection.alias
    return payment, bool(debited)


def _check_failures_in_window(payment: Payment, *, instance: Instance, causation_id: str | None) -> None:
    """Rule: ``PAYMENTS_SUSPICIOUS_FAILURES_IN_WINDOW`` failed charges of one wallet within
    ``PAYMENTS_SUSPICIOUS_WINDOW_SECONDS`` (reported when the count reaches the threshold; the caller holds the
    wallet's row lock, so two concurrent failures cannot both miss it)."""
    threshold = int(getattr(settings, "PAYMENTS_SUSPICIOUS_FAILURES_IN_WINDOW", 10))
    window = float(getattr(settings, "PAYMENTS_SUSPICIOUS_WINDOW_SECONDS", 600))
    since = timezone.now() - timedelta(seconds=window)
    failures = Payment.objects.filter(wallet_id=payment.wallet_id, status=PaymentStatus.FAILED,
                                      created_at__gte=since).count()
    if failures == threshold:
        suspicious_activity.send(sender=Payment, instance=instance, causation_id=causation_id, payload={
            "kind": str(SuspiciousKind.PAYMENT_FAILURES_IN_WINDOW),
            "detail": f"wallet {payment.wallet_id}: {failures} failed charges within {window:g}s "
                      f"(last: order {payment.order_id})",
            "user_id": payment.customer_id,
        })


@transaction.atomic
def payment_refund_for_order(*, instance: Instance, order_id: int) -> bool:
    """Order canceled: give a succeeded charge back. Idempotent; returns whether money moved.

    With no payment yet (the cancellation overtook the charge) a ``voided`` tombstone is written. A succeeded
    payment whose wallet cannot be found raises ``RefundWithoutWallet`` and changes nothing (the bus retries and
    dead-letters it; the saga sweep flags the order), never a refund that moves no money.
    """
    payments = Payment.objects.for_instance(instance).filter(order_id=order_id)
    if payments.filter(status=PaymentStatus.SUCCEEDED).update(status=PaymentStatus.REFUNDED):
        payment = payments.get()
        if payment.amount and (payment.wallet_id is None or not Wallet.objects.filter(pk=payment.wallet_id).update(
                balance=F("balance") + payment.amount)):
            raise RefundWithoutWallet(f"payment {payment.pk} of order {order_id}: wallet {payment.wallet_id} "
                                      "not found, nothing refunded")
        if payment.amount:
            _post(instance=instance, kind=LedgerKind.REFUND, currency=payment.currency or "", order_id=order_id,
                  legs=[(LedgerAccount.REVENUE, None, -payment.amount),
                        (LedgerAccount.WALLET, payment.wallet_id, payment.amount)])
        return True
    if not payments.exists() and not insert_or_nothing(
            Payment(instance=instance, order_id=order_id, status=PaymentStatus.VOIDED, reason="order_canceled"),
            conflict=("instance", "order_id")):
        # A charge appeared meanwhile (its transaction just committed): refund that one instead.
        return payment_refund_for_order(instance=instance, order_id=order_id)
    return False


# --- alerts -------------------------------------------------------------------------------------------------------

def alert_record(*, instance: Instance, event_id: Any, kind: str, detail: str, user_id: int | None) -> Alert | None:
    """Record an alert for an event-suspicious-activity event, once per event (returns None for a repeat)."""
    # bulk_create(ignore_conflicts=True) never sets the pk on PostgreSQL, so it cannot tell new from repeat;
    # a savepoint around a plain INSERT can (alerts are rare: the two extra statements do not matter).
    try:
        with transaction.atomic():
            return Alert.objects.create(
                instance=instance, event_id=event_id, kind=kind[:64], details=detail, user_id=user_id,
                subject=f"user:{user_id}" if user_id is not None else "")
    except IntegrityError:
        return None


def alerts_acknowledge(*, instance: Instance | int | None, alert_ids: list[int], actor: User) -> int:
    """Acknowledge the alerts that are not yet (a conditional update: the first acknowledger stays on record).
    ``instance=None`` for the platform admin site (any instance)."""
    alerts = Alert.objects.filter(pk__in=alert_ids, acknowledged_at__isnull=True)
    if instance is not None:
        alerts = alerts.for_instance(instance)
    return alerts.update(acknowledged_by=actor, acknowledged_at=timezone.now())
