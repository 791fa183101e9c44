"""The saga under concurrency and faults, with real worker processes.

100 customers order the last 10 units at once: exactly 10 approved, stock 0/0, the ledger sums to zero and every
wallet holds its top-ups minus its approved totals. Workers SIGKILLed mid-saga and restarted, with every delivery
sent twice on top: every order ends, stock is conserved, no order is charged twice.
"""

import random
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.db import connections
from django.db.models import Sum

from events import relay
from events.models import Delivery
from inventory.models import Product, Reservation
from inventory.services import product_create
from orders.models import Order
from orders.services import order_place
from payments.models import LedgerEntry, LedgerTransaction, Wallet
from payments.selectors import ledger_reconcile
from payments.services import wallet_create
from tests.factories import InstanceFactory, UserFactory
from tests.support import Worker, start_worker, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WORKER_ENV = {
    "EVENTS_SWEEP_INTERVAL_SECONDS": "0.5",
    "EVENTS_REDELIVER_AFTER_SECONDS": "3",
    "EVENTS_RETRY_BASE_SECONDS": "0.2",
    "EVENTS_RETRY_MAX_SECONDS": "0.5",
    "CELERY_VISIBILITY_TIMEOUT": "5",
    "CELERY_UNACKED_RESTORE_INTERVAL": "1",
    "ORDER_DEADLINE_SECONDS": "600",  # this test is about contention, not the deadline
    "LOG_LEVEL": "WARNING",
}


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    started: list[Worker] = []
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


def world(customers: int, stock: int) -> tuple[object, Product, list]:
    instance = InstanceFactory()
    apple = product_create(instance=instance, sku="APL", name="Apple", price="10.00", stock_on_hand=stock)
    users = [UserFactory() for _ in range(customers)]
    for user in users:
        wallet_create(instance=instance, user=user, currency="USD", balance="50.00")
    return instance, apple, users


def place_concurrently(instance, apple, users, threads: int = 10) -> None:
    barrier = threading.Barrier(threads)

    def place(chunk: list) -> None:
        try:
            barrier.wait(timeout=30)
            for user in chunk:
                order_place(instance=instance, customer=user, currency="USD",
                            lines=[{"product_id": apple.pk, "quantity": 1}])
        finally:
            connections.close_all()

    workers = [threading.Thread(target=place, args=(users[i::threads],)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)


def settled(total: int) -> bool:
    return (Order.objects.filter(status__in=["approved", "canceled"]).count() == total
            and Reservation.objects.count() == total
            and not Reservation.objects.filter(status="reserved").exists())


def open_deliveries() -> str:
    return str(list(Delivery.objects.exclude(status="done").values_list("consumer", "status", "last_error")[:20]))


def assert_books_are_exact(instance, apple: Product, *, initial_stock: int, customers: int) -> None:
    approved = list(Order.objects.filter(status="approved"))
    apple.refresh_from_db()
    assert (apple.stock_on_hand, apple.stock_reserved) == (initial_stock - len(approved), 0)
    # The ledger: every transaction balanced, the instance's sum zero, each wallet its top-up minus what it paid.
    assert ledger_reconcile().ok
    assert LedgerEntry.objects.filter(instance=instance).aggregate(s=Sum("amount"))["s"] == Decimal("0")
    paid = {order.customer_id: order.total for order in approved}
    assert sorted(Wallet.objects.values_list("user_id", "balance")) == sorted(
        (user_id, Decimal("50.00") - paid.get(user_id, Decimal("0"))) for user_id in
        Wallet.objects.values_list("user_id", flat=True))
    # Charged once: one charge per approved order, and canceled orders' charges (if any) refunded.
    charges = LedgerTransaction.objects.filter(kind="charge").values_list("order_id", flat=True)
    refunds = LedgerTransaction.objects.filter(kind="refund").values_list("order_id", flat=True)
    assert len(set(charges)) == len(list(charges))
    assert set(charges) - set(refunds) == {order.pk for order in approved}
    assert Wallet.objects.count() == customers


def test_100_customers_race_for_10_units(workers):
    workers.append(start_worker(beat=True, env=WORKER_ENV))
    workers.append(start_worker(pool="prefork", concurrency=2, env=WORKER_ENV))
    instance, apple, users = world(customers=100, stock=10)

    place_concurrently(instance, apple, users)

    wait_until(lambda: settled(100), timeout=240, message=open_deliveries)
    assert sorted(Order.objects.values_list("status", "reason").distinct()) == [
        ("approved", ""), ("canceled", "reservation_failed")]
    assert Order.objects.filter(status="approved").count() == 10
    assert Order.objects.filter(status="canceled").count() == 90
    assert_books_are_exact(instance, apple, initial_stock=10, customers=100)


def test_workers_killed_and_restarted_with_duplicates_keep_the_books_exact(workers):
    rng = random.Random(11)
    workers.append(start_worker(beat=True, env=WORKER_ENV, queues=("default", "events", "accounts", "authz")))
    instance, apple, users = world(customers=20, stock=10)
    victim = start_worker(pool="prefork", concurrency=2, env=WORKER_ENV, queues=("orders", "inventory", "payments"))
    workers.append(victim)

    place_concurrently(instance, apple, users, threads=4)
    for _ in range(3):
        wait_until(lambda: Delivery.objects.filter(status="done").exists(), timeout=60, message=open_deliveries)
        threading.Event().wait(rng.uniform(0.05, 0.6))  # somewhere mid-saga
        victim.kill()
        # Duplicates: every delivery sent again, as a broker redelivering everything would.
        relay.send(list(Delivery.objects.values_list("id", "queue")))
        victim = start_worker(pool="prefork", concurrency=2, env=WORKER_ENV,
                              queues=("orders", "inventory", "payments"))
        workers.append(victim)

    wait_until(lambda: settled(20), timeout=240, message=open_deliveries)
    assert Order.objects.filter(status="approved").count() == 10
    assert_books_are_exact(instance, apple, initial_stock=10, customers=20)
