"""The saga sweep (orders.services.saga_sweep): orders pending past the deadline are canceled with compensation,
and dead-lettered deliveries of order events end the order (a forward step) or flag it (a compensation)."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from events.models import Delivery, OutboxEvent
from inventory.models import Product, Reservation
from inventory.services import product_create, reservation_reserve_for_order
from orders.models import DeadLetter, Order, OrderEvent
from orders.services import (
    order_approve,
    order_cancel_pending,
    order_place,
    order_resume,
    orders_cancel_overdue,
    saga_dead_letters_apply,
)
from payments.models import Payment, Wallet
from payments.services import payment_charge_for_order, wallet_create
from saaskit.errors import NotFoundError
from tests.orders.harness import Harness

pytestmark = pytest.mark.django_db


@pytest.fixture
def apple(instance):
    return product_create(instance=instance, sku="APL", name="Apple", price="10.00", stock_on_hand=5)


@pytest.fixture
def wallet(instance, customer):
    return wallet_create(instance=instance, user=customer, currency="USD", balance="100.00")


def place(instance, customer, apple, quantity=2) -> Order:
    return order_place(instance=instance, customer=customer, currency="USD",
                       lines=[{"product_id": apple.pk, "quantity": quantity}])


def reserve_and_charge(order: Order) -> None:
    """The saga got as far as the charge; event-payment has not been applied (a slow or dead orders worker)."""
    lines = [{"product_id": line.product_id, "quantity": line.quantity} for line in order.lines.all()]
    reservation_reserve_for_order(instance=order.instance, order_id=order.pk, customer_id=order.customer_id,
                                  lines=lines, currency="USD")
    payment_charge_for_order(instance=order.instance, order_id=order.pk, customer_id=order.customer_id,
                             amount=str(order.total), currency="USD")


def age(order: Order, seconds: float) -> None:
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))


def stock(product: Product) -> tuple[int, int]:
    product.refresh_from_db()
    return product.stock_on_hand, product.stock_reserved


def test_deadline_cancels_old_pending_orders_and_compensation_restores_stock_and_money(
        instance, customer, apple, wallet, sent, settings):
    settings.ORDER_DEADLINE_SECONDS = 60
    old, young = place(instance, customer, apple), place(instance, customer, apple, quantity=1)
    reserve_and_charge(old)
    age(old, 61)
    harness = Harness(sent)
    harness.seen = len(sent.sent)  # deliver only what the sweep publishes
    assert (stock(apple), Wallet.objects.get().balance) == ((5, 2), Decimal("80.00"))

    assert orders_cancel_overdue() == [old.pk]
    harness.run()

    old.refresh_from_db()
    assert (old.status, old.reason) == ("canceled", "deadline")
    assert OrderEvent.objects.filter(order=old).last().detail == {"reason": "deadline", "cause": "pending longer than 60s"}
    assert Order.objects.get(pk=young.pk).status == "pending"
    assert stock(apple) == (5, 0)
    assert Wallet.objects.get().balance == Decimal("100.00")
    assert Payment.objects.get(order_id=old.pk).status == "refunded"
    assert Reservation.objects.get(order_id=old.pk).status == "released"


def test_deadline_sweep_twice_cancels_once(instance, customer, apple, sent, settings):
    settings.ORDER_DEADLINE_SECONDS = 5
    order = place(instance, customer, apple)
    age(order, 6)
    assert orders_cancel_overdue() == [order.pk]
    assert orders_cancel_overdue() == []
    assert sent.names().count("order_canceled") == 1


def test_deadline_leaves_approved_and_canceled_orders_alone(instance, customer, apple, settings):
    settings.ORDER_DEADLINE_SECONDS = 5
    approved, canceled = place(instance, customer, apple), place(instance, customer, apple)
    order_approve(instance=instance, order_id=approved.pk)
    order_cancel_pending(instance=instance, order_id=canceled.pk, reason="payment_failed")
    age(approved, 60)
    age(canceled, 60)
    assert orders_cancel_overdue() == []
    assert sorted(Order.objects.values_list("status", "reason")) == [("approved", ""), ("canceled", "payment_failed")]


def dead_delivery(order: Order, *, name: str, consumer: str, error: str = "boom") -> Delivery:
    event = OutboxEvent.objects.create(id=uuid.uuid4(), name=name, version=1, occurred_at=timezone.now(),
                                       instance_id=order.instance_id, correlation_id="c",
                                       payload={"order_id": order.pk, "reason": "x"})
    return Delivery.objects.create(event=event, consumer=consumer, queue=consumer.split(".")[0], status="dead",
                                   failures=8, last_error=f"Traceback...\nRuntimeError: {error}")


def test_a_dead_forward_step_cancels_the_order_naming_the_consumer(instance, customer, apple, wallet, sent):
    order = place(instance, customer, apple)
    reserve_and_charge(order)
    dead = dead_delivery(order, name="event-payment", consumer="orders.apply_payment")
    harness = Harness(sent)
    harness.seen = len(sent.sent)

    assert saga_dead_letters_apply() == {"canceled": 1, "flagged": 0, "ignored": 0}
    assert saga_dead_letters_apply() == {"canceled": 0, "flagged": 0, "ignored": 0}
    harness.run()

    order.refresh_from_db()
    assert (order.status, order.reason, order.needs_attention) == ("canceled", "step_failed", False)
    assert OrderEvent.objects.filter(order=order).last().detail == {"reason": "step_failed",
                                                                    "cause": "orders.apply_payment"}
    assert list(DeadLetter.objects.values_list("delivery_id", "order_id", "consumer", "action")) == [
        (dead.pk, order.pk, "orders.apply_payment", "canceled")]
    assert stock(apple) == (5, 0)
    assert Wallet.objects.get().balance == Decimal("100.00")


def test_a_dead_compensation_flags_the_order_and_resume_sends_it_again(instance, customer, apple, sent):
    order = place(instance, customer, apple)
    order_cancel_pending(instance=instance, order_id=order.pk, reason="payment_failed")
    dead = dead_delivery(order, name="event-order-canceled", consumer="payments.refund_for_order",
                         error="wallet 3 not found")

    assert saga_dead_letters_apply() == {"canceled": 0, "flagged": 1, "ignored": 0}

    order.refresh_from_db()
    assert (order.status, order.needs_attention, order.attention_reason) == (
        "canceled", True, "compensation payments.refund_for_order dead-lettered: RuntimeError: wallet 3 not found")

    result = order_resume(order_id=order.pk)

    assert result.retried == [dead.pk]
    order.refresh_from_db()
    assert (order.needs_attention, order.attention_reason) == (False, "")
    dead.refresh_from_db()
    assert (dead.status, dead.failures) == ("pending", 0)
    assert not DeadLetter.objects.exists()
    assert list(OrderEvent.objects.filter(order=order).values_list("kind", flat=True)) == [
        "placed", "canceled", "attention", "resumed"]


def test_a_dead_step_of_an_order_that_already_ended_or_does_not_exist_is_ignored(instance, customer, apple):
    order = place(instance, customer, apple)
    order_cancel_pending(instance=instance, order_id=order.pk, reason="payment_failed")
    dead_delivery(order, name="event-product-reserved", consumer="payments.charge_for_order")
    ghost = Order(pk=order.pk + 1000, instance=instance)
    dead_delivery(ghost, name="event-order-created", consumer="inventory.reserve_for_order")

    assert saga_dead_letters_apply() == {"canceled": 0, "flagged": 0, "ignored": 2}
    order.refresh_from_db()
    assert (order.reason, order.needs_attention) == ("payment_failed", False)


def test_resume_of_an_unknown_order_is_not_found():
    with pytest.raises(NotFoundError):
        order_resume(order_id=999_999)
