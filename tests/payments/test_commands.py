"""``manage.py payments reconcile [--json]``: exit 0 when every balance is the sum of its entries, 1 otherwise."""

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from payments.models import Wallet
from payments.services import payment_charge_for_order, wallet_create

pytestmark = pytest.mark.django_db


def reconcile(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("payments", "reconcile", *args, stdout=out)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def wallet(instance, customer):
    wallet = wallet_create(instance=instance, user=customer, currency="USD", balance="100.00")
    payment_charge_for_order(instance=instance, order_id=1, customer_id=customer.pk, amount="40.00", currency="USD")
    return wallet


def test_reconcile_of_a_consistent_ledger_exits_0(wallet):
    assert reconcile() == (0, "1 wallets, 2 transactions: balanced\n")
    code, out = reconcile("--json")
    assert code == 0
    assert json.loads(out) == {"ok": True, "wallets_checked": 1, "transactions_checked": 2, "differences": [],
                               "unbalanced_transactions": []}


def test_reconcile_reports_a_cached_balance_that_drifted_and_exits_1(wallet):
    Wallet.objects.filter(pk=wallet.pk).update(balance=Decimal("63.00"))  # what a stale admin form used to do

    code, out = reconcile()
    assert code == 1
    assert out.splitlines() == [f"wallet {wallet.pk} (USD, instance {wallet.instance_id}): cached 63.00, ledger 60.00",
                                "1 wallets, 2 transactions: 1 wallet differences, 0 unbalanced transactions"]
    code, out = reconcile("--json")
    assert code == 1
    assert json.loads(out)["differences"] == [{"wallet_id": wallet.pk, "instance_id": wallet.instance_id,
                                               "currency": "USD", "cached": "63.00", "ledger": "60.00"}]
