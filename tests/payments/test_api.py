from decimal import Decimal

import pytest

from payments.models import Wallet
from payments.services import wallet_create
from tests.factories import ProfileFactory
from tests.inventory.support import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(instance):
    return ProfileFactory(instance=instance, role="customer")


@pytest.fixture
def accountant(instance):
    return client_for(ProfileFactory(instance=instance, role="accountant"))


def test_member_opens_and_lists_own_wallets(instance, member):
    client = client_for(member)
    response = client.post("/api/v1/wallets/", {"currency": "EUR"}, format="json")
    assert response.status_code == 201
    wallet = Wallet.objects.get()
    assert response.json() == {"id": wallet.pk, "user_id": member.user_id, "currency": "EUR", "balance": "0.00"}
    wallet_create(instance=instance, user=ProfileFactory(instance=instance).user, currency="USD")
    assert [w["id"] for w in client.get("/api/v1/wallets/").json()["results"]] == [wallet.pk]
    response = client.post("/api/v1/wallets/", {"currency": "EUR"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "wallet_exists")
    response = client.post("/api/v1/wallets/", {"currency": "eur"}, format="json")
    assert response.status_code == 400


def test_accountant_tops_up(instance, member, accountant):
    wallet = wallet_create(instance=instance, user=member.user, currency="USD")
    response = accountant.post(f"/api/v1/wallets/{wallet.pk}/top-up", {"amount": "12.50"}, format="json")
    assert (response.status_code, response.json()["balance"]) == (200, "12.50")


@pytest.mark.parametrize("amount", ["0", "-1", "0.001", "x", None])
def test_top_up_rejects_bad_amount(instance, member, accountant, amount):
    wallet = wallet_create(instance=instance, user=member.user, currency="USD")
    response = accountant.post(f"/api/v1/wallets/{wallet.pk}/top-up", {"amount": amount}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid")
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("0.00")


def test_customer_cannot_top_up_even_their_own_wallet(instance, member):
    wallet = wallet_create(instance=instance, user=member.user, currency="USD")
    response = client_for(member).post(f"/api/v1/wallets/{wallet.pk}/top-up", {"amount": "5"}, format="json")
    assert response.status_code == 403
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("0.00")


def test_wallet_of_another_instance_is_404(instance, other_instance, member):
    wallet = wallet_create(instance=instance, user=member.user, currency="USD")
    foreign = client_for(ProfileFactory(instance=other_instance, role="accountant"))
    response = foreign.post(f"/api/v1/wallets/{wallet.pk}/top-up", {"amount": "5"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "wallet_not_found")
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("0.00")


def test_top_up_overflow_is_400_not_500(instance, member, accountant):
    wallet = wallet_create(instance=instance, user=member.user, currency="USD", balance="1.00")
    response = accountant.post(f"/api/v1/wallets/{wallet.pk}/top-up", {"amount": "999999999999.99"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "balance_limit")


def test_accountant_adjusts_a_wallet_on_the_ledger_with_their_name(instance, member):
    from payments.models import LedgerTransaction

    accountant_profile = ProfileFactory(instance=instance, role="accountant")
    wallet = wallet_create(instance=instance, user=member.user, currency="USD", balance="10.00")
    response = client_for(accountant_profile).post(f"/api/v1/wallets/{wallet.pk}/adjust",
                                                   {"amount": "-2.50", "reason": "shipping refund reversed"},
                                                   format="json")
    tx = LedgerTransaction.objects.get(kind="adjustment")
    assert response.status_code == 200
    assert response.json() == {"wallet": {"id": wallet.pk, "user_id": member.user_id, "currency": "USD",
                                          "balance": "7.50"}, "transaction_id": tx.pk}
    assert (tx.actor_id, tx.reason) == (accountant_profile.user_id, "shipping refund reversed")


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"amount": "-10.01", "reason": "x"}, 409, "balance_limit"),
    ({"amount": "0", "reason": "x"}, 400, "invalid_amount"),
    ({"amount": "1.00", "reason": ""}, 400, "invalid"),
    ({"amount": "1.001", "reason": "x"}, 400, "invalid"),
    ({"reason": "x"}, 400, "invalid"),
])
def test_refused_adjustments_are_4xx_and_change_nothing(instance, member, accountant, body, status, code):
    from payments.models import LedgerTransaction

    wallet = wallet_create(instance=instance, user=member.user, currency="USD", balance="10.00")
    response = accountant.post(f"/api/v1/wallets/{wallet.pk}/adjust", body, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("10.00")
    assert LedgerTransaction.objects.count() == 1


def test_customer_cannot_adjust_and_foreign_accountant_gets_404(instance, other_instance, member):
    wallet = wallet_create(instance=instance, user=member.user, currency="USD", balance="10.00")
    response = client_for(member).post(f"/api/v1/wallets/{wallet.pk}/adjust", {"amount": "5", "reason": "me"},
                                       format="json")
    assert response.status_code == 403
    foreign = client_for(ProfileFactory(instance=other_instance, role="accountant"))
    response = foreign.post(f"/api/v1/wallets/{wallet.pk}/adjust", {"amount": "5", "reason": "x"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "wallet_not_found")
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("10.00")


def test_entries_are_paginated_newest_first_for_the_owner_and_accountants(instance, member, accountant,
                                                                          django_assert_max_num_queries):
    from payments.services import payment_charge_for_order, wallet_top_up

    wallet = wallet_create(instance=instance, user=member.user, currency="USD", balance="10.00")
    wallet_top_up(wallet=wallet, amount="5.00")
    payment_charge_for_order(instance=instance, order_id=77, customer_id=member.user_id, amount="3.00",
                             currency="USD")
    owner = client_for(member)
    with django_assert_max_num_queries(12):
        page = owner.get(f"/api/v1/wallets/{wallet.pk}/entries?limit=2").json()
    assert page["count"] == 3
    assert [(e["kind"], e["amount"], e["order_id"]) for e in page["results"]] == [
        ("charge", "-3.00", 77), ("top_up", "5.00", None)]
    rest = owner.get(f"/api/v1/wallets/{wallet.pk}/entries?limit=2&offset=2").json()
    assert [(e["kind"], e["amount"], e["reason"]) for e in rest["results"]] == [
        ("top_up", "10.00", "opening balance")]
    assert accountant.get(f"/api/v1/wallets/{wallet.pk}/entries").json()["count"] == 3


def test_entries_of_someone_elses_wallet_are_404(instance, other_instance, member):
    wallet = wallet_create(instance=instance, user=member.user, currency="USD", balance="10.00")
    other_customer = client_for(ProfileFactory(instance=instance, role="customer"))
    response = other_customer.get(f"/api/v1/wallets/{wallet.pk}/entries")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "wallet_not_found")
    foreign = client_for(ProfileFactory(instance=other_instance, role="accountant"))
    assert foreign.get(f"/api/v1/wallets/{wallet.pk}/entries").status_code == 404
