"""Concurrent charges against one wallet in real transactions: the balance never goes below zero."""

from decimal import Decimal

import pytest
from django.db.models import Sum

from payments.choices import PaymentStatus
from payments.models import LedgerEntry, LedgerTransaction, Payment
from payments.services import (
    payment_charge_for_order,
    payment_refund_for_order,
    wallet_create,
)
from tests.factories import InstanceFactory, UserFactory
from tests.inventory.support import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_charges_never_overdraw():
    instance, customer = InstanceFactory(), UserFactory()
    wallet = wallet_create(instance=instance, user=customer, currency="USD", balance="50.00")

    def order(order_id: int):
        return lambda: payment_charge_for_order(instance=instance, order_id=order_id, customer_id=customer.pk,
                                                amount="15.00", currency="USD")

    results = run_concurrently([order(i) for i in range(1, 11)])
    assert [r for r in results if isinstance(r, Exception)] == []
    assert sorted(r.status for r in results) == [PaymentStatus.FAILED] * 7 + [PaymentStatus.SUCCEEDED] * 3
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("5.00")
    # the ledger moved exactly what the balance did: three charges, each a balanced transaction
    assert sorted(LedgerEntry.objects.filter(wallet=wallet).values_list("amount", flat=True)) == [
        Decimal("-15.00")] * 3 + [Decimal("50.00")]
    assert LedgerEntry.objects.filter(instance=instance).aggregate(s=Sum("amount"))["s"] == Decimal("0")


def test_concurrent_charges_of_one_order_debit_once():
    instance, customer = InstanceFactory(), UserFactory()
    wallet = wallet_create(instance=instance, user=customer, currency="USD", balance="50.00")
    charge = lambda: payment_charge_for_order(instance=instance, order_id=7, customer_id=customer.pk,  # noqa: E731
                                              amount="15.00", currency="USD")
    results = run_concurrently([charge] * 6)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert {r.pk for r in results} == {Payment.objects.get(order_id=7).pk}
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("35.00")
    assert LedgerTransaction.objects.filter(order_id=7).count() == 1


def test_concurrent_refunds_of_one_order_refund_once():
    instance, customer = InstanceFactory(), UserFactory()
    wallet = wallet_create(instance=instance, user=customer, currency="USD", balance="50.00")
    payment_charge_for_order(instance=instance, order_id=1, customer_id=customer.pk, amount="20.00", currency="USD")
    refund = lambda: payment_refund_for_order(instance=instance, order_id=1)
    results = run_concurrently([refund] * 6)
    assert sorted(results) == [False] * 5 + [True]
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("50.00")
