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
