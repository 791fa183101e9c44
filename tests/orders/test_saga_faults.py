"""Every order ends by itself, with real worker processes: the deadline cancels an order whose saga stalls, a
dead-lettered step cancels it (step_failed), a dead-lettered compensation flags it until ``saga resume``."""

from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.db import connection

from events.models import Delivery
from inventory.models import Product, Reservation
from inventory.services import product_create
from orders.models import DeadLetter, Order
from orders.services import order_place, order_resume
from payments.models import Payment, Wallet
from payments.services import wallet_create
from saaskit.celery import APP_QUEUES
from tests.factories import InstanceFactory, UserFactory
from tests.support import Worker, start_worker, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WORKER_ENV = {
    "EVENTS_SWEEP_INTERVAL_SECONDS": "0.5",
    "EVENTS_REDELIVER_AFTER_SECONDS": "3",
    "EVENTS_RETRY_BASE_SECONDS": "0.1",
    "EVENTS_RETRY_MAX_SECONDS": "0.2",
    "EVENTS_MAX_ATTEMPTS": "2",
    "ORDER_DEADLINE_SECONDS": "2",
    "ORDER_SWEEP_INTERVAL_SECONDS": "0.3",
    "LOG_LEVEL": "WARNING",
}


def deliveries() -> str:
    return str(list(Delivery.objects.values_list("consumer", "status", "last_error")))


@pytest.fixture
def flush_redis() -> None:
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture
def no_payments_worker(flush_redis) -> Iterator[Worker]:
    started = start_worker(beat=True, env=WORKER_ENV, queues=("default", *(q for q in APP_QUEUES if q != "payments")))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def worker(flush_redis) -> Iterator[Worker]:
    started = start_worker(beat=True, env=WORKER_ENV)
    try:
        yield started
    finally:
        started.stop()


def test_an_order_whose_payment_never_comes_is_canceled_at_the_deadline(no_payments_worker):
    instance, customer = InstanceFactory(), UserFactory()
    apple = product_create(instance=instance, sku="APL", name="Apple", price="10.00", stock_on_hand=5)
    order = order_place(instance=instance, customer=customer, currency="USD",
                        lines=[{"product_id": apple.pk, "quantity": 2}])

    wait_until(lambda: Reservation.objects.filter(order_id=order.pk, status="released").exists(), timeout=60,
               message=lambda: f"{deliveries()}\n{no_payments_worker.log()[-3000:]}")

    order.refresh_from_db()
    assert (order.status, order.reason) == ("canceled", "deadline")
    apple.refresh_from_db()
    assert (apple.stock_on_hand, apple.stock_reserved) == (5, 0)
    assert not Payment.objects.exists()


def test_dead_charge_cancels_the_order_and_a_dead_refund_flags_it_until_resumed(worker):
    instance, customer = InstanceFactory(), UserFactory()
    wallet = wallet_create(instance=instance, user=customer, currency="USD", balance="100.00")
    apple = product_create(instance=instance, sku="APL", name="Apple", price="10.00", stock_on_hand=5)
    with connection.cursor() as cursor:  # payments cannot write a payment row: every charge and void fails
        cursor.execute("CREATE FUNCTION test_no_payments() RETURNS trigger LANGUAGE plpgsql AS "
                       "$$ BEGIN RAISE EXCEPTION 'payments are down'; END $$")
        cursor.execute("CREATE TRIGGER test_no_payments BEFORE INSERT ON payments_payment "
                       "FOR EACH ROW EXECUTE FUNCTION test_no_payments()")
    try:
        order = order_place(instance=instance, customer=customer, currency="USD",
                            lines=[{"product_id": apple.pk, "quantity": 2}])
        wait_until(lambda: Order.objects.filter(pk=order.pk, needs_attention=True).exists(), timeout=90,
                   message=lambda: f"{deliveries()}\n{worker.log()[-3000:]}")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER test_no_payments ON payments_payment")
            cursor.execute("DROP FUNCTION test_no_payments()")

    order.refresh_from_db()
    assert (order.status, order.reason) == ("canceled", "step_failed")
    assert order.timeline.get(kind="canceled").detail == {"reason": "step_failed",
                                                          "cause": "payments.charge_for_order"}
    assert order.attention_reason.startswith("compensation payments.refund_for_order dead-lettered: ")
    assert sorted(DeadLetter.objects.values_list("consumer", "action")) == [
        ("payments.charge_for_order", "canceled"), ("payments.refund_for_order", "flagged")]
    wait_until(lambda: Reservation.objects.filter(order_id=order.pk, status="released").exists(), timeout=30,
               message=deliveries)

    result = order_resume(order_id=order.pk)

    assert len(result.retried) == 1
    wait_until(lambda: Payment.objects.filter(order_id=order.pk, status="voided").exists(), timeout=30,
               message=lambda: f"{deliveries()}\n{worker.log()[-3000:]}")
    order.refresh_from_db()
    assert (order.status, order.needs_attention) == ("canceled", False)
    assert Product.objects.filter(pk=apple.pk, stock_on_hand=5, stock_reserved=0).exists()
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("100.00")
    assert Wallet.objects.count() == 1
