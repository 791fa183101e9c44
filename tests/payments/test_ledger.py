"""The double-entry ledger: every money movement is one balanced, immutable transaction, and a wallet's balance is
the sum of its entries. Money records outlive users and instances."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError, Sum

from accounts.models import Instance
from accounts.services.users import user_delete
from payments.choices import PaymentStatus
from payments.models import LedgerEntry, LedgerTransaction, Payment, Wallet
from payments.services import (
    RefundWithoutWallet,
    payment_charge_for_order,
    payment_refund_for_order,
    wallet_adjust,
    wallet_create,
    wallet_top_up,
)
from saaskit.errors import ApplicationError
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def wallet(instance, customer):
    return wallet_create(instance=instance, user=customer, currency="USD", balance="100.00")


def legs(tx: LedgerTransaction) -> list[tuple[str, int | None, Decimal]]:
    return sorted(tx.entries.values_list("account", "wallet_id", "amount"))


def ledger_balance(wallet: Wallet) -> Decimal:
    return LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"] or Decimal("0")


def test_top_up_charge_and_refund_are_balanced_transactions(instance, customer, wallet):
    wallet_top_up(wallet=wallet, amount="5.00")
    payment_charge_for_order(instance=instance, order_id=7, customer_id=customer.pk, amount="30.00", currency="USD")
    payment_refund_for_order(instance=instance, order_id=7)

    txs = list(LedgerTransaction.objects.order_by("pk"))
    assert [(t.kind, t.order_id, t.reason) for t in txs] == [
        ("top_up", None, "opening balance"), ("top_up", None, ""), ("charge", 7, ""), ("refund", 7, "")]
    assert [legs(t) for t in txs] == [
        [("funding", None, Decimal("-100.00")), ("wallet", wallet.pk, Decimal("100.00"))],
        [("funding", None, Decimal("-5.00")), ("wallet", wallet.pk, Decimal("5.00"))],
        [("revenue", None, Decimal("30.00")), ("wallet", wallet.pk, Decimal("-30.00"))],
        [("revenue", None, Decimal("-30.00")), ("wallet", wallet.pk, Decimal("30.00"))],
    ]
    wallet.refresh_from_db()
    assert wallet.balance == ledger_balance(wallet) == Decimal("105.00")
    assert LedgerEntry.objects.filter(instance=instance).aggregate(s=Sum("amount"))["s"] == Decimal("0")


def test_a_failed_charge_writes_no_ledger_transaction(instance, customer, wallet):
    payment_charge_for_order(instance=instance, order_id=8, customer_id=customer.pk, amount="100.01", currency="USD")
    assert list(LedgerTransaction.objects.values_list("kind", flat=True)) == ["top_up"]


def test_ledger_rows_are_immutable_in_the_orm_and_in_the_database(wallet):
    entry = LedgerEntry.objects.get(wallet=wallet)
    with pytest.raises(ValueError, match="immutable"):
        entry.save()
    with pytest.raises(ValueError, match="immutable"):
        entry.delete()
    for statement in ("UPDATE payments_ledgerentry SET amount = 1", "DELETE FROM payments_ledgerentry",
                      "DELETE FROM payments_ledgertransaction"):
        with pytest.raises(IntegrityError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert LedgerEntry.objects.get(wallet=wallet).amount == Decimal("100.00")


def test_a_wallet_with_entries_cannot_be_deleted(wallet):
    with pytest.raises(ProtectedError):
        wallet.delete()
    assert Wallet.objects.filter(pk=wallet.pk).exists()


def test_deleting_the_user_keeps_the_wallet_and_its_ledger(instance, customer, wallet):
    payment_charge_for_order(instance=instance, order_id=9, customer_id=customer.pk, amount="10.00", currency="USD")

    user_delete(user=customer)

    wallet.refresh_from_db()
    assert (wallet.user_id, wallet.balance) == (None, Decimal("90.00"))
    assert LedgerEntry.objects.count() == 4
    assert Payment.objects.get(order_id=9).customer_id is None


def test_deleting_an_instance_with_money_records_is_refused(instance, wallet):
    with pytest.raises(ProtectedError), transaction.atomic():
        Instance.objects.filter(pk=instance.pk).delete()
    assert Wallet.objects.filter(pk=wallet.pk).exists()
    assert LedgerEntry.objects.count() == 2


def test_refund_that_cannot_find_its_wallet_fails_loudly_and_changes_nothing(instance, customer, wallet):
    payment_charge_for_order(instance=instance, order_id=10, customer_id=customer.pk, amount="10.00", currency="USD")
    Payment.objects.filter(order_id=10).update(wallet=None)  # a succeeded payment that lost its wallet (old data)

    with pytest.raises(RefundWithoutWallet, match="nothing refunded"):
        payment_refund_for_order(instance=instance, order_id=10)

    assert Payment.objects.get(order_id=10).status == PaymentStatus.SUCCEEDED
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("90.00")
    assert list(LedgerTransaction.objects.values_list("kind", flat=True).order_by("pk")) == ["top_up", "charge"]


def test_adjustment_credits_and_debits_with_actor_and_reason(instance, wallet):
    accountant = UserFactory()
    credit = wallet_adjust(wallet=wallet, amount="12.34", reason="goodwill", actor=accountant)
    debit = wallet_adjust(wallet=wallet, amount=Decimal("-2.34"), reason="typo", actor=accountant)

    assert [(t.kind, t.actor_id, t.reason) for t in (credit, debit)] == [
        ("adjustment", accountant.pk, "goodwill"), ("adjustment", accountant.pk, "typo")]
    assert legs(debit) == [("funding", None, Decimal("2.34")), ("wallet", wallet.pk, Decimal("-2.34"))]
    wallet.refresh_from_db()
    assert wallet.balance == ledger_balance(wallet) == Decimal("110.00")


@pytest.mark.parametrize(("amount", "reason", "code"), [
    ("-100.01", "too much", "balance_limit"), ("0", "zero", "invalid_amount"), ("1.001", "cents", "invalid_amount"),
    ("abc", "nan", "invalid_amount"), ("5.00", "  ", "reason_required"),
])
def test_refused_adjustments_change_nothing(wallet, amount, reason, code):
    with pytest.raises(ApplicationError) as raised:
        wallet_adjust(wallet=wallet, amount=amount, reason=reason, actor=None)
    assert raised.value.code == code
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("100.00")
    assert LedgerTransaction.objects.count() == 1
