import pytest

from events.consumers import NotReady
from inventory.services import product_create
from orders.choices import OrderStatus
from orders.consumers import apply_payment, cancel_unreservable
from orders.models import OrderEvent
from orders.services import order_place
from tests.inventory.support import Sent
from tests.orders.harness import call_consumer, make_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(instance, customer):
    apple = product_create(instance=instance, sku="APL", name="Apple", price="1.50", stock_on_hand=10)
    return order_place(instance=instance, customer=customer, lines=[{"product_id": apple.pk, "quantity": 2}],
                       currency="USD")


def payment(instance, order_id, status, reason=""):
    return make_event("event-payment", {"order_id": order_id, "payment_id": 1, "status": status, "amount": "3.00",
                                       "reason": reason}, instance.pk)


def test_payment_succeeded_approves_once(instance, order, sent):
    sent.clear()
    event = payment(instance, order.pk, "succeeded")
    call_consumer(apply_payment, event)
    call_consumer(apply_payment, event)
    order.refresh_from_db()
    assert order.status == OrderStatus.APPROVED
    assert list(OrderEvent.objects.filter(order=order, kind="approved").values_list("detail", flat=True)) == [
        {"charged": "3.00"}]
    assert sent.sent == [Sent("order_approved", instance.pk, {"order_id": order.pk}, str(event.id))]


def test_payment_failed_cancels_once_with_reason_and_cause(instance, order, sent):
    sent.clear()
    event = payment(instance, order.pk, "failed", "insufficient_funds")
    call_consumer(apply_payment, event)
    call_consumer(apply_payment, event)
    order.refresh_from_db()
    assert (order.status, order.reason) == (OrderStatus.CANCELED, "payment_failed")
    assert list(OrderEvent.objects.filter(order=order, kind="canceled").values_list("detail", "causation_id")) == [
        ({"reason": "payment_failed", "cause": "insufficient_funds"}, str(event.id))]
    assert sent.sent == [
        Sent("order_canceled", instance.pk, {"order_id": order.pk, "reason": "payment_failed"}, str(event.id)),
    ]


def test_err_reserving_cancels_pending_order(instance, order, sent):
    sent.clear()
    event = make_event("event-err-reserving-product", {"order_id": order.pk, "reason": "insufficient_stock"},
                      instance.pk)
    call_consumer(cancel_unreservable, event)
    call_consumer(cancel_unreservable, event)
    order.refresh_from_db()
    assert (order.status, order.reason) == (OrderStatus.CANCELED, "reservation_failed")
    assert sent.names() == ["order_canceled"]


def test_payment_for_unknown_order_is_not_ready(instance, order, sent):
    sent.clear()
    with pytest.raises(NotReady):
        call_consumer(apply_payment, payment(instance, order.pk + 1000, "succeeded"))
    with pytest.raises(NotReady):
        call_consumer(cancel_unreservable, make_event("event-err-reserving-product",
                                                     {"order_id": order.pk + 1000, "reason": "x"}, instance.pk))
    assert sent.sent == []


def test_payment_for_an_order_of_another_instance_is_not_ready(other_instance, order, sent):
    sent.clear()
    with pytest.raises(NotReady):
        call_consumer(apply_payment, payment(other_instance, order.pk, "succeeded"))
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert sent.sent == []


def test_late_failure_after_approval_changes_nothing(instance, order, sent):
    call_consumer(apply_payment, payment(instance, order.pk, "succeeded"))
    sent.clear()
    call_consumer(cancel_unreservable, make_event("event-err-reserving-product",
                                                 {"order_id": order.pk, "reason": "x"}, instance.pk))
    order.refresh_from_db()
    assert order.status == OrderStatus.APPROVED
    assert sent.sent == []


@pytest.mark.parametrize("status", ["refunded", None, 1])
def test_payment_with_unknown_status_raises_and_changes_nothing(instance, order, sent, status):
    sent.clear()
    with pytest.raises(ValueError):
        call_consumer(apply_payment, payment(instance, order.pk, status))
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert sent.sent == []


def test_saga_consumers_are_registered_on_their_queues():
    from events.consumers import all_subscriptions

    saga = sorted((s.event_name, s.name, s.queue) for s in all_subscriptions()
                  if s.queue in ("orders", "inventory", "payments"))
    assert saga == [
        ("event-err-reserving-product", "orders.cancel_unreservable", "orders"),
        ("event-order-approved", "inventory.commit_for_order", "inventory"),
        ("event-order-canceled", "inventory.release_for_order", "inventory"),
        ("event-order-canceled", "payments.refund_for_order", "payments"),
        ("event-order-created", "inventory.reserve_for_order", "inventory"),
        ("event-payment", "orders.apply_payment", "orders"),
        ("event-product-reserved", "payments.charge_for_order", "payments"),
        ("event-suspicious-activity", "payments.record_alert", "payments"),
    ]
