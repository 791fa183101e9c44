"""Idempotency-Key on POST /api/v1/orders/, wallet top-up and adjust: same key and body -> the first answer again
and nothing created; same key, other body -> 422; per user; 24 h; concurrent twins create one thing."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.utils import timezone

from inventory.services import product_create
from orders.models import Order
from payments.idempotency import idempotency_records_purge
from payments.models import IdempotencyRecord, LedgerTransaction
from payments.services import wallet_create
from tests.factories import InstanceFactory, ProfileFactory
from tests.inventory.support import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer_profile(instance):
    return ProfileFactory(instance=instance, role="customer")


@pytest.fixture
def apple(instance):
    return product_create(instance=instance, sku="APL", name="Apple", price="1.50", stock_on_hand=10)


def place(client, apple, key, quantity=1):
    return client.post("/api/v1/orders/", {"currency": "USD", "lines": [{"product_id": apple.pk, "quantity": quantity}]},
                       format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_same_key_and_body_answer_the_first_order_again_and_create_nothing(customer_profile, apple):
    client = client_for(customer_profile)
    first = place(client, apple, "order-1")
    again = place(client, apple, "order-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert Order.objects.count() == 1


def test_same_key_with_another_body_is_422_and_creates_nothing(customer_profile, apple):
    client = client_for(customer_profile)
    place(client, apple, "order-1")
    response = place(client, apple, "order-1", quantity=2)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "idempotency_key_reused")
    assert Order.objects.count() == 1


def test_keys_are_per_user(instance, customer_profile, apple):
    other = ProfileFactory(instance=instance, role="customer")
    assert place(client_for(customer_profile), apple, "k").status_code == 201
    assert place(client_for(other), apple, "k").status_code == 201
    assert sorted(Order.objects.values_list("customer_id", flat=True)) == sorted(
        [customer_profile.user_id, other.user_id])


def test_a_refused_request_keeps_no_key_so_the_retry_runs(customer_profile, apple):
    client = client_for(customer_profile)
    response = client.post("/api/v1/orders/", {"currency": "USD", "lines": [{"product_id": 999, "quantity": 1}]},
                           format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    assert place(client, apple, "k").status_code == 201


def test_a_key_older_than_24_hours_is_free_again_and_purged(customer_profile, apple):
    client = client_for(customer_profile)
    place(client, apple, "k")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
    assert place(client, apple, "k", quantity=3).status_code == 201
    assert Order.objects.count() == 2
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_records_purge() == 1
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9"])
def test_a_malformed_key_is_400_and_creates_nothing(customer_profile, apple, key):
    response = place(client_for(customer_profile), apple, key)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_idempotency_key")
    assert Order.objects.count() == 0


def test_top_up_and_adjust_are_idempotent(instance, customer_profile):
    accountant = client_for(ProfileFactory(instance=instance, role="accountant"))
    wallet = wallet_create(instance=instance, user=customer_profile.user, currency="USD")
    url = f"/api/v1/wallets/{wallet.pk}"
    for _ in range(2):
        assert accountant.post(f"{url}/top-up", {"amount": "10.00"}, format="json",
                               HTTP_IDEMPOTENCY_KEY="t1").json()["balance"] == "10.00"
        response = accountant.post(f"{url}/adjust", {"amount": "-1.00", "reason": "fee"}, format="json",
                                   HTTP_IDEMPOTENCY_KEY="a1")
        assert response.json()["wallet"]["balance"] == "9.00"
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("9.00")
    assert sorted(LedgerTransaction.objects.values_list("kind", flat=True)) == ["adjustment", "top_up"]
    response = accountant.post(f"{url}/top-up", {"amount": "11.00"}, format="json", HTTP_IDEMPOTENCY_KEY="t1")
    assert response.status_code == 422


@pytest.mark.django_db(transaction=True)
def test_concurrent_twins_with_one_key_create_one_order():
    """Two requests with the same key at once (two web hosts): the second waits on the key's unique index and
    answers the first one's order."""
    instance = InstanceFactory()
    profile = ProfileFactory(instance=instance, role="customer")
    apple = product_create(instance=instance, sku="APL", name="Apple", price="1.50", stock_on_hand=10)
    answers: list = []
    barrier = threading.Barrier(4)

    def post() -> None:
        try:
            barrier.wait(timeout=10)
            answers.append(place(client_for(profile), apple, "twin"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert [a.status_code for a in answers] == [201] * 4
    assert len({a.json()["id"] for a in answers}) == 1
    assert Order.objects.count() == 1
