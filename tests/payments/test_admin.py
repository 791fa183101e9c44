"""The wallet admin cannot corrupt money: balance read-only, stale forms write no balance, adjustments are an
action that writes the ledger with the acting admin, wallets with money records cannot be deleted."""

from decimal import Decimal

import pytest
from django.urls import reverse

from payments.models import LedgerTransaction, Wallet
from payments.services import payment_charge_for_order, wallet_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def wallet(instance, customer):
    return wallet_create(instance=instance, user=customer, currency="USD", balance="100.00")


def test_saving_a_stale_wallet_form_after_a_charge_keeps_the_charge(admin_client, instance, customer, wallet):
    url = reverse("admin:payments_wallet_change", args=[wallet.pk])
    assert admin_client.get(url).status_code == 200
    payment_charge_for_order(instance=instance, order_id=1, customer_id=customer.pk, amount="30.00", currency="USD")

    response = admin_client.post(url, {"instance": instance.pk, "user": customer.pk, "currency": "EUR",
                                       "balance": "100.00"})

    assert response.status_code == 403  # a saved wallet is read-only in the console (changes through "adjust")
    wallet.refresh_from_db()
    assert (wallet.currency, wallet.balance) == ("USD", Decimal("70.00"))


def test_adjust_action_writes_a_ledger_transaction_with_the_admin(admin_client, admin_user, wallet):
    url = reverse("admin:payments_wallet_changelist")
    form = admin_client.post(url, {"action": "adjust", "_selected_action": [wallet.pk]})
    assert (form.status_code, b'name="reason"' in form.content) == (200, True)

    response = admin_client.post(url, {"action": "adjust", "_selected_action": [wallet.pk], "apply": "1",
                                       "amount": "-12.50", "reason": "damaged goods credit reversed"})

    assert response.status_code == 302
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("87.50")
    tx = LedgerTransaction.objects.get(kind="adjustment")
    assert (tx.actor_id, tx.reason) == (admin_user.pk, "damaged goods credit reversed")


@pytest.mark.parametrize(("amount", "reason"), [("0", "x"), ("5", ""), ("-100.01", "overdraft")])
def test_adjust_action_refused_changes_nothing(admin_client, wallet, amount, reason):
    admin_client.post(reverse("admin:payments_wallet_changelist"), {
        "action": "adjust", "_selected_action": [wallet.pk], "apply": "1", "amount": amount, "reason": reason})
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("100.00")
    assert LedgerTransaction.objects.filter(kind="adjustment").count() == 0


def test_a_wallet_with_entries_cannot_be_deleted_in_the_admin(admin_client, wallet, instance, customer):
    delete = reverse("admin:payments_wallet_delete", args=[wallet.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Wallet.objects.filter(pk=wallet.pk).exists()
    empty = wallet_create(instance=instance, user=customer, currency="EUR")
    assert admin_client.post(reverse("admin:payments_wallet_delete", args=[empty.pk]),
                             {"post": "yes"}).status_code == 302
    assert not Wallet.objects.filter(pk=empty.pk).exists()


def test_ledger_pages_render_read_only(admin_client, wallet):
    tx = LedgerTransaction.objects.get()
    assert admin_client.get(reverse("admin:payments_ledgertransaction_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:payments_ledgertransaction_change", args=[tx.pk])).status_code == 200
    assert admin_client.get(reverse("admin:payments_ledgerentry_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:payments_ledgertransaction_add")).status_code == 403


def test_a_wallets_page_shows_its_ledger_entries_read_only_with_a_link_to_all(admin_client, instance, customer,
                                                                              wallet):
    from payments.models import LedgerEntry

    payment_charge_for_order(instance=instance, order_id=1, customer_id=customer.pk, amount="30.00", currency="USD")
    other = wallet_create(instance=instance, user=None, currency="USD", balance="5.00")

    page = admin_client.get(reverse("admin:payments_wallet_change", args=[wallet.pk])).content.decode()
    listed = admin_client.get(reverse("admin:payments_ledgerentry_changelist"), {"wallet": wallet.pk})

    ledger = page[page.index('class="wallet-ledger"'):]
    assert "<td>Charge</td><td>-30.00</td>" in ledger and "<td>Top-up</td><td>100.00</td>" in ledger
    assert 'name="_save"' not in page
    assert sorted(e.pk for e in listed.context["cl"].result_list) == sorted(
        LedgerEntry.objects.filter(wallet=wallet).values_list("pk", flat=True))
    assert not {e.wallet_id for e in listed.context["cl"].result_list} & {other.pk}
