"""The whole saga over the real bus: outbox -> Celery (Redis) -> a real worker process on every queue -> consumers.

A placed order ends approved with its stock taken off the shelf and the wallet debited; an order its customer
cannot pay for ends canceled with the stock back on the shelf and the wallet untouched.
"""

import queue
import threading
from collections.abc import Iterator
from decimal import Decimal
from io import StringIO

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.db import connections, transaction

from events import publish
from events.models import Delivery, OutboxEvent
from inventory.models import Product, Reservation
from inventory.services import product_create
from orders.models import Order, OrderEvent
from orders.services import order_cancel, order_place
from payments.models import Payment, Wallet
from payments.services import wallet_create
from tests.factories import InstanceFactory, UserFactory
from tests.support import Worker, start_worker, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WORKER_ENV = {
    "EVENTS_SWEEP_INTERVAL_SECONDS": "0.5",
    "EVENTS_REDELIVER_AFTER_SECONDS": "3",
    "EVENTS_RETRY_BASE_SECONDS": "0.2",
    "EVENTS_RETRY_MAX_SECONDS": "0.5",
    "LOG_LEVEL": "WARNING",
}


@pytest.fixture
def worker() -> Iterator[Worker]:
    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # this run's own Redis DB: no stale messages
    started = start_worker(beat=True, env=WORKER_ENV)  # every queue, one process
    try:
        yield started
    finally:
        started.stop()


def stock(product: Product) -> tuple[int, int]:
    product.refresh_from_db()
    return product.stock_on_hand, product.stock_reserved


def settled(order: Order, worker: Worker, *, reservation_status: str) -> Order:
    """Wait until the order left pending and inventory applied the final event (commit or release)."""
    def done() -> bool:
        order.refresh_from_db()
        return (order.status != "pending" and Reservation.objects.filter(
            order_id=order.pk, status=reservation_status).exists())
    wait_until(done, timeout=60, message=lambda: f"order {order.status}; deliveries "
               f"{list(Delivery.objects.values_list('consumer', 'status'))}; worker log:\n{worker.log()[-3000:]}")
    return order


def test_placed_order_ends_approved_with_stock_and_money_moved(worker):
    instance, customer = InstanceFactory(), UserFactory()
    wallet = wallet_create(instance=instance, user=customer, currency="USD", balance="100.00")
    apple = product_create(instance=instance, sku="APL", name="Apple", price="12.50", stock_on_hand=5)

    order = order_place(instance=instance, customer=customer, currency="USD",
                        lines=[{"product_id": apple.pk, "quantity": 2}])

    settled(order, worker, reservation_status="committed")
    assert (order.status, order.reason) == ("approved", "")
    assert stock(apple) == (3, 0)
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("75.00")
    payment = Payment.objects.get(order_id=order.pk)
    assert (payment.status, payment.amount) == ("succeeded", Decimal("25.00"))
    assert list(OrderEvent.objects.filter(order=order).values_list("kind", flat=True)) == ["placed", "approved"]
    # One chain: each saga event was caused by the previous one and carries the order-created event's id.
    chain = list(OutboxEvent.objects.exclude(name="event-upsert-policy").order_by("occurred_at").values_list(
        "name", "id", "causation_id", "correlation_id"))
    assert [c[0] for c in chain] == ["event-order-created", "event-product-reserved", "event-payment",
                                     "event-order-approved"]
    root = str(chain[0][1])
    assert [c[3] for c in chain] == [root] * 4
    assert [c[2] for c in chain] == [None, root, str(chain[1][1]), str(chain[2][1])]


def test_order_without_funds_ends_canceled_with_stock_restored(worker):
    instance, customer = InstanceFactory(), UserFactory()
    wallet = wallet_create(instance=instance, user=customer, currency="USD", balance="20.00")
    apple = product_create(instance=instance, sku="APL", name="Apple", price="12.50", stock_on_hand=5)

    order = order_place(instance=instance, customer=customer, currency="USD",
                        lines=[{"product_id": apple.pk, "quantity": 2}])

    settled(order, worker, reservation_status="released")
    assert (order.status, order.reason) == ("canceled", "payment_failed")
    assert stock(apple) == (5, 0)
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("20.00")
    payment = Payment.objects.get(order_id=order.pk)
    assert (payment.status, payment.reason) == ("failed", "insufficient_funds")
    assert list(OrderEvent.objects.filter(order=order).values_list("kind", "detail")) == [
        ("placed", {"total": "25.00"}), ("canceled", {"reason": "payment_failed", "cause": "insufficient_funds"})]
    assert Wallet.objects.count() == 1


def test_payment_event_before_its_order_is_parked_then_applied(worker):
    """event-payment arrives while the order's transaction is still open: the delivery parks (NotReady), and
    once the order commits it is applied; the rest of the saga then converges (approved once, charged once)."""
    instance, customer = InstanceFactory(), UserFactory()
    wallet = wallet_create(instance=instance, user=customer, currency="USD", balance="100.00")
    apple = product_create(instance=instance, sku="APL", name="Apple", price="12.50", stock_on_hand=5)
    placed: queue.Queue[int] = queue.Queue()
    commit = threading.Event()

    def place_and_hold() -> None:
        try:
            with transaction.atomic():
                order = order_place(instance=instance, customer=customer, currency="USD",
                                    lines=[{"product_id": apple.pk, "quantity": 2}])
                placed.put(order.pk)
                commit.wait(timeout=60)
        finally:
            connections.close_all()

    thread = threading.Thread(target=place_and_hold)
    thread.start()
    try:
        order_id = placed.get(timeout=30)
        publish("event-payment", {"order_id": order_id, "payment_id": None, "status": "succeeded",
                                  "amount": "25.00", "reason": None}, instance=instance)
        wait_until(lambda: Delivery.objects.filter(consumer="orders.apply_payment", status="parked").exists(),
                   timeout=30, message=lambda: worker.log()[-3000:])
    finally:
        commit.set()
        thread.join(timeout=30)

    order = Order.objects.get(pk=order_id)
    settled(order, worker, reservation_status="committed")
    wait_until(lambda: not Delivery.objects.filter(consumer__startswith="orders.", status__in=[
        "pending", "retrying", "parked"]).exists(), timeout=30, message=lambda: str(list(
            Delivery.objects.values_list("consumer", "status", "last_error"))))
    assert order.status == "approved"
    assert list(OrderEvent.objects.filter(order=order).values_list("kind", flat=True)) == ["placed", "approved"]
    assert stock(apple) == (3, 0)
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("75.00")
    assert list(Delivery.objects.filter(consumer="orders.apply_payment").values_list("status", flat=True)) == [
        "done", "done"]


def test_customer_cancels_an_approved_order_and_is_compensated(worker):
    instance, customer = InstanceFactory(), UserFactory()
    wallet = wallet_create(instance=instance, user=customer, currency="USD", balance="100.00")
    apple = product_create(instance=instance, sku="APL", name="Apple", price="12.50", stock_on_hand=5)
    order = order_place(instance=instance, customer=customer, currency="USD",
                        lines=[{"product_id": apple.pk, "quantity": 2}])
    settled(order, worker, reservation_status="committed")

    order_cancel(order=order)

    wait_until(lambda: Payment.objects.filter(order_id=order.pk, status="refunded").exists()
               and Reservation.objects.filter(order_id=order.pk, status="released").exists(), timeout=60,
               message=lambda: str(list(Delivery.objects.values_list("consumer", "status", "last_error"))))
    order.refresh_from_db()
    assert (order.status, order.reason) == ("canceled", "customer_request")
    assert stock(apple) == (5, 0)
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("100.00")


def test_saga_demo_command_waits_for_the_approval(worker):
    out = StringIO()
    call_command("saga_demo", "--quantity", "2", "--wait", "60", stdout=out)
    order = Order.objects.get()
    assert out.getvalue().splitlines() == [
        f"order {order.pk} placed: pending, total 20.00 USD",
        f"order {order.pk}: approved; wallet 80.00 USD; stock 0 on hand, 0 reserved",
    ]


def test_concurrent_orders_over_two_workers_never_oversell(worker):
    """Eight customers race for five units, delivered by two worker processes (one of them a prefork pool): five
    orders approved and charged, three canceled with their money untouched, nothing left reserved."""
    second = start_worker(pool="prefork", concurrency=3, env=WORKER_ENV)
    try:
        instance = InstanceFactory()
        apple = product_create(instance=instance, sku="APL", name="Apple", price="10.00", stock_on_hand=5)
        customers = [UserFactory() for _ in range(8)]
        for customer in customers:
            wallet_create(instance=instance, user=customer, currency="USD", balance="100.00")
        for customer in customers:
            order_place(instance=instance, customer=customer, currency="USD",
                        lines=[{"product_id": apple.pk, "quantity": 1}])

        def all_settled() -> bool:
            return (not Order.objects.filter(status="pending").exists()
                    and Reservation.objects.count() == 8
                    and not Reservation.objects.filter(status="reserved").exists())
        wait_until(all_settled, timeout=90, message=lambda: str(list(
            Delivery.objects.exclude(status="done").values_list("consumer", "status", "last_error"))))
    finally:
        second.stop()

    assert sorted(Order.objects.values_list("status", "reason")) == (
        [("approved", "")] * 5 + [("canceled", "reservation_failed")] * 3)
    assert stock(apple) == (0, 0)
    assert sorted(Wallet.objects.values_list("balance", flat=True)) == (
        [Decimal("90.00")] * 5 + [Decimal("100.00")] * 3)
    paid = set(Payment.objects.filter(status="succeeded").values_list("customer_id", flat=True))
    assert paid == set(Order.objects.filter(status="approved").values_list("customer_id", flat=True))
