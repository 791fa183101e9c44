"""Each suspicious-activity rule end to end through the real bus: the rule publishes event-suspicious-activity
(outbox), a real worker process runs ``payments.record_alert``, and an ``Alert`` row appears for the instance."""

from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from rest_framework.test import APIClient

from events.models import Delivery
from inventory.services import product_create
from orders.services import order_place
from payments.models import Alert
from payments.services import wallet_create
from tests.factories import ProfileFactory
from tests.support import Worker, start_worker, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WORKER_ENV = {
    "EVENTS_SWEEP_INTERVAL_SECONDS": "0.5",
    "EVENTS_REDELIVER_AFTER_SECONDS": "3",
    "LOG_LEVEL": "WARNING",
    # The payment rules run in the worker (payments.charge_for_order): the window rule alone, at 3 failures.
    "PAYMENTS_SUSPICIOUS_FAILURES_IN_WINDOW": "3",
    "PAYMENTS_SUSPICIOUS_WINDOW_SECONDS": "600",
    "PAYMENTS_SUSPICIOUS_FAILURES_IN_A_ROW": "100",
}


@pytest.fixture
def worker() -> Iterator[Worker]:
    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # this run's own Redis DB: no stale messages or counters
    started = start_worker(env=WORKER_ENV)  # every queue, one process
    try:
        yield started
    finally:
        started.stop()


def alerts_of(instance, worker: Worker) -> list[tuple[str, int | None, str]]:
    def recorded():
        return list(Alert.objects.filter(instance=instance).values_list("kind", "user_id", "details"))

    def state() -> str:
        deliveries = Delivery.objects.filter(event__name="event-suspicious-activity")
        return (f"deliveries {list(deliveries.values_list('consumer', 'status', 'last_error'))}; "
                f"worker log:\n{worker.log()[-3000:]}")

    wait_until(recorded, timeout=60, message=state)
    return recorded()


def test_failed_logins_of_one_account_become_an_alert(worker, settings):
    settings.ACCOUNTS_SUSPICIOUS_FAILED_LOGINS = 3  # the rule runs in this (the web) process
    settings.ACCOUNTS_SUSPICIOUS_FAILED_LOGINS_WINDOW_SECONDS = 600
    profile = ProfileFactory(role="customer")
    for _ in range(3):
        response = APIClient().post("/api/v1/auth/token", {"email": profile.user.email, "password": "wrong-one"},
                                    format="json")
        assert response.status_code == 401

    assert alerts_of(profile.instance, worker) == [
        ("failed_logins", profile.user_id, f"account {profile.user_id}: 3 failed logins within 600s")]


def test_failed_charges_of_one_wallet_within_the_window_become_an_alert(worker):
    profile = ProfileFactory(role="customer")
    instance, customer = profile.instance, profile.user
    wallet = wallet_create(instance=instance, user=customer, currency="USD", balance="1.00")
    apple = product_create(instance=instance, sku="APL", name="Apple", price="5.00", stock_on_hand=100)
    orders = [order_place(instance=instance, customer=customer, currency="USD",
                          lines=[{"product_id": apple.pk, "quantity": 1}]) for _ in range(3)]

    [(kind, user_id, details)] = alerts_of(instance, worker)
    assert (kind, user_id) == ("payment_failures_in_window", customer.pk)
    assert details.startswith(f"wallet {wallet.pk}: 3 failed charges within 600s (last: order ")
    assert int(details.rsplit(" ", 1)[1].rstrip(")")) in {order.pk for order in orders}


def test_an_order_far_above_the_customers_median_becomes_an_alert(worker, settings):
    settings.ORDERS_SUSPICIOUS_TOTAL_FACTOR = 5  # the rule runs where the order is placed: this process
    settings.ORDERS_SUSPICIOUS_MIN_HISTORY = 3
    profile = ProfileFactory(role="customer")
    instance, customer = profile.instance, profile.user
    wallet_create(instance=instance, user=customer, currency="USD", balance="1000.00")
    apple = product_create(instance=instance, sku="APL", name="Apple", price="2.00", stock_on_hand=100)
    for quantity in (1, 1, 1, 3):  # 6.00 is not above 5 x 2.00
        order_place(instance=instance, customer=customer, currency="USD",
                    lines=[{"product_id": apple.pk, "quantity": quantity}])
    big = order_place(instance=instance, customer=customer, currency="USD",
                      lines=[{"product_id": apple.pk, "quantity": 11}])  # 22.00 > 5 x median(2, 2, 2, 6) = 10.00

    assert alerts_of(instance, worker) == [
        ("order_total_above_median", customer.pk,
         f"order {big.pk}: total 22.00 USD is above 5 x the customer's median 2.00 over 4 orders")]
