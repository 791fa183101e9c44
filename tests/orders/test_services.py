from decimal import Decimal

import pytest
from django.db import DataError, transaction

from inventory.services import product_create
from orders.choices import OrderEventKind, OrderStatus
from orders.models import Order, OrderEvent, OrderLine
from orders.services import (
    order_approve,
    order_cancel,
    order_cancel_pending,
    order_place,
)
from saaskit.errors import ApplicationError
from tests.factories import InstanceFactory, UserFactory
from tests.inventory.support import Sent

pytestmark = pytest.mark.django_db


@pytest.fixture
def apple(instance):
    return product_create(instance=instance, sku="APL", name="Apple", price="1.50", stock_on_hand=10)


@pytest.fixture
def pear(instance):
    return product_create(instance=instance, sku="PR", name="Pear", price="2.25", stock_on_hand=3)


@pytest.fixture
def order(instance, customer, apple):
    return order_place(instance=instance, customer=customer, lines=[{"product_id": apple.pk, "quantity": 2}],
                       currency="USD")


def timeline(order: Order) -> list[tuple[str, dict, str]]:
    return list(OrderEvent.objects.filter(order=order).values_list("kind", "detail", "causation_id"))


def test_order_place_writes_order_lines_timeline_and_publishes(instance, customer, apple, pear, sent):
    order = order_place(instance=instance, customer=customer, currency="USD", lines=[
        {"product_id": pear.pk, "quantity": 1}, {"product_id": apple.pk, "quantity": 2},
        {"product_id": pear.pk, "quantity": 1}])
    order.refresh_from_db()
    assert (order.instance_id, order.customer_id, order.status, order.currency, order.total, order.reason) == (
        instance.pk, customer.pk, OrderStatus.PENDING, "USD", Decimal("7.50"), "")
    assert list(OrderLine.objects.filter(order=order).order_by("product_id").values_list(
        "product_id", "quantity", "unit_price")) == [(apple.pk, 2, Decimal("1.50")), (pear.pk, 2, Decimal("2.25"))]
    assert timeline(order) == [(OrderEventKind.PLACED, {"total": "7.50"}, "")]
    assert sent.sent == [
        Sent("order_created", instance.pk, {
            "order_id": order.pk, "customer_id": customer.pk, "currency": "USD",
            "lines": [{"product_id": apple.pk, "quantity": 2}, {"product_id": pear.pk, "quantity": 2}]}, None),
    ]  # no policy for the customer: ownership is the check


@pytest.mark.parametrize("lines", [
    [], None, "abc", [1], [{"product_id": 1}], [{"product_id": "1", "quantity": 1}],
    [{"product_id": 1, "quantity": 0}], [{"product_id": True, "quantity": 1}], [{"product_id": 1, "quantity": 10_001}],
    [{"product_id": -1, "quantity": 1}], [{"product_id": 1, "quantity": 1}] * 101,
])
def test_order_place_rejects_malformed_lines_and_writes_nothing(instance, customer, sent, lines):
    with pytest.raises(ApplicationError) as err:
        order_place(instance=instance, customer=customer, lines=lines, currency="USD")
    assert (err.value.code, err.value.status_code) == ("invalid_lines", 400)
    assert (Order.objects.count(), OrderLine.objects.count(), sent.sent) == (0, 0, [])


@pytest.mark.parametrize("currency", ["usd", "", None, "EURO"])
def test_order_place_rejects_bad_currency(instance, customer, apple, sent, currency):
    with pytest.raises(ApplicationError) as err:
        order_place(instance=instance, customer=customer, lines=[{"product_id": apple.pk, "quantity": 1}],
                    currency=currency)
    assert err.value.code == "invalid_currency"
    assert (Order.objects.count(), sent.sent) == (0, [])


def test_order_place_rejects_products_of_another_instance(instance, other_instance, customer, sent):
    foreign = product_create(instance=other_instance, sku="F", name="F", price="1", stock_on_hand=5)
    with pytest.raises(ApplicationError) as err:
        order_place(instance=instance, customer=customer, lines=[{"product_id": foreign.pk, "quantity": 1}],
                    currency="USD")
    assert (err.value.code, err.value.fields) == ("unknown_product", {"lines": [f"Unknown product id {foreign.pk}."]})
    assert (Order.objects.count(), sent.sent) == (0, [])


def test_order_place_rejects_products_priced_in_another_currency(instance, customer, apple, sent):
    with pytest.raises(ApplicationError) as err:
        order_place(instance=instance, customer=customer, lines=[{"product_id": apple.pk, "quantity": 1}],
                    currency="EUR")
    assert (err.value.code, err.value.fields) == ("currency_mismatch", {"lines": [f"Product {apple.pk} is not sold in EUR."]})
    assert (Order.objects.count(), sent.sent) == (0, [])


def test_approve_pending_order_once(instance, order, sent):
    sent.clear()
    assert order_approve(instance=instance, order_id=order.pk, causation_id="evt-p") is True
    assert order_approve(instance=instance, order_id=order.pk, causation_id="evt-p") is False
    order.refresh_from_db()
    assert order.status == OrderStatus.APPROVED
    assert order.approved_at is not None
    assert [row[0] for row in timeline(order)] == [OrderEventKind.PLACED, OrderEventKind.APPROVED]
    assert timeline(order)[1][2] == "evt-p"
    assert sent.sent == [Sent("order_approved", instance.pk, {"order_id": order.pk}, "evt-p")]


def test_approve_of_another_instance_order_changes_nothing(other_instance, order, sent):
    sent.clear()
    assert order_approve(instance=other_instance, order_id=order.pk) is False
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING
    assert sent.sent == []


def test_cancel_pending_for_failure_once(instance, order, sent):
    sent.clear()
    assert order_cancel_pending(instance=instance, order_id=order.pk, reason="payment_failed",
                                causation_id="evt-f") is True
    assert order_cancel_pending(instance=instance, order_id=order.pk, reason="payment_failed") is False
    order.refresh_from_db()
    assert (order.status, order.reason) == (OrderStatus.CANCELED, "payment_failed")
    assert order.canceled_at is not None
    assert timeline(order)[1:] == [(OrderEventKind.CANCELED, {"reason": "payment_failed"}, "evt-f")]
    assert sent.sent == [
        Sent("order_canceled", instance.pk, {"order_id": order.pk, "reason": "payment_failed"}, "evt-f"),
    ]


def test_a_transition_is_one_statement_with_its_timeline_entry_and_keeps_the_other_times(
        instance, order, sent, django_assert_num_queries):
    with django_assert_num_queries(2):  # orders_transition, then the outbox's INSERT of event-order-approved
        assert order_approve(instance=instance, order_id=order.pk, causation_id="evt-a", charged="3.00") is True
    approved = Order.objects.get(pk=order.pk)
    assert (approved.status, approved.reason, approved.canceled_at, approved.updated_at) == (
        OrderStatus.APPROVED, "", None, approved.approved_at)
    assert order_cancel(order=approved).status == OrderStatus.CANCELED
    canceled = Order.objects.get(pk=order.pk)
    assert (canceled.reason, canceled.approved_at, canceled.updated_at) == (
        "customer_request", approved.approved_at, canceled.canceled_at)
    assert timeline(canceled) == [(OrderEventKind.PLACED, {"total": str(order.total)}, ""),
                                  (OrderEventKind.APPROVED, {"charged": "3.00"}, "evt-a"),
                                  (OrderEventKind.CANCELED, {"reason": "customer_request"}, "")]


def test_a_transition_that_matches_nothing_writes_no_timeline_entry(instance, other_instance, order, sent,
                                                                    django_assert_num_queries):
    with django_assert_num_queries(1):
        assert order_cancel_pending(instance=other_instance, order_id=order.pk, reason="payment_failed") is False
    assert order_cancel_pending(instance=instance, order_id=order.pk + 1000, reason="payment_failed") is False
    assert (Order.objects.get(pk=order.pk).status, len(timeline(order))) == (OrderStatus.PENDING, 1)


def test_a_transition_with_a_too_long_causation_is_refused_and_changes_nothing(instance, order, sent):
    with pytest.raises(DataError), transaction.atomic():
        order_approve(instance=instance, order_id=order.pk, causation_id="x" * 65)  # max_length 64
    assert (Order.objects.get(pk=order.pk).status, len(timeline(order))) == (OrderStatus.PENDING, 1)


def test_failure_does_not_cancel_an_approved_order(instance, order, sent):
    order_approve(instance=instance, order_id=order.pk)
    sent.clear()
    assert order_cancel_pending(instance=instance, order_id=order.pk, reason="payment_failed") is False
    order.refresh_from_db()
    assert order.status == OrderStatus.APPROVED
    assert sent.sent == []


def test_approve_after_cancel_changes_nothing(instance, order, sent):
    order_cancel(order=order)
    sent.clear()
    assert order_approve(instance=instance, order_id=order.pk) is False
    order.refresh_from_db()
    assert (order.status, order.reason) == (OrderStatus.CANCELED, "customer_request")
    assert sent.sent == []


def test_customer_cancels_pending_order(instance, order, sent):
    sent.clear()
    result = order_cancel(order=order)
    assert (result.status, result.reason) == (OrderStatus.CANCELED, "customer_request")
    assert sent.sent == [
        Sent("order_canceled", instance.pk, {"order_id": order.pk, "reason": "customer_request"}, None),
    ]


def test_customer_cancels_approved_order(instance, order, sent):
    order_approve(instance=instance, order_id=order.pk)
    sent.clear()
    assert order_cancel(order=order).status == OrderStatus.CANCELED
    assert sent.names() == ["order_canceled"]


def test_cancel_of_canceled_order_is_409_and_changes_nothing(instance, order, sent):
    order_cancel_pending(instance=instance, order_id=order.pk, reason="payment_failed")
    sent.clear()
    with pytest.raises(ApplicationError) as err:
        order_cancel(order=order)
    assert (err.value.code, err.value.status_code) == ("invalid_transition", 409)
    order.refresh_from_db()
    assert (order.status, order.reason) == (OrderStatus.CANCELED, "payment_failed")
    assert len(timeline(order)) == 2
    assert sent.sent == []


def test_order_outlives_its_customer_and_its_cancel_sends_no_policy_for_nobody(instance, customer, order, sent):
    customer.delete()
    order.refresh_from_db()
    assert (order.customer_id, order.status) == (None, OrderStatus.PENDING)
    sent.clear()
    assert order_cancel_pending(instance=instance, order_id=order.pk, reason="payment_failed") is True
    assert sent.sent == [Sent("order_canceled", instance.pk, {"order_id": order.pk, "reason": "payment_failed"},
                              None)]


def test_order_place_refuses_a_total_beyond_the_column_limit(instance, customer, sent):
    gold = product_create(instance=instance, sku="AU", name="Gold", price="9999999999.99", stock_on_hand=1000)
    with pytest.raises(ApplicationError) as err:
        order_place(instance=instance, customer=customer, currency="USD",
                    lines=[{"product_id": gold.pk, "quantity": 1000}])
    assert (err.value.code, err.value.status_code) == ("total_too_large", 400)
    assert (Order.objects.count(), sent.sent) == (0, [])


def test_the_median_rule_reads_only_the_customers_previous_orders_in_this_instance(instance, customer, sent,
                                                                                   settings):
    settings.ORDERS_SUSPICIOUS_TOTAL_FACTOR = 5
    settings.ORDERS_SUSPICIOUS_MIN_HISTORY = 3
    apple = product_create(instance=instance, sku="MED", name="Apple", price="1.00", stock_on_hand=10_000)
    elsewhere = InstanceFactory()
    pear = product_create(instance=elsewhere, sku="MED", name="Pear", price="1.00", stock_on_hand=10_000)
    stranger = UserFactory()

    def place(quantity, who=customer, where=instance, product=apple):
        return order_place(instance=where, customer=who, currency="USD",
                           lines=[{"product_id": product.pk, "quantity": quantity}])
    def suspicious():
        return [s.payload for s in sent.sent if s.signal == "order_suspicious_activity"]
    for _ in range(3):
        place(1000, who=stranger)  # another customer's big orders: not this customer's history
        place(1000, where=elsewhere, product=pear)  # this customer's orders in another instance: neither
    place(2)
    place(2)
    assert suspicious() == []
    place(20)  # only two orders of history: not judged
    assert suspicious() == []
    big = place(60)  # 60.00 > 5 x median(2, 2, 20) = 10.00
    assert suspicious() == [{"kind": "order_total_above_median", "user_id": customer.pk,
                                 "detail": f"order {big.pk}: total 60.00 USD is above 5 x the customer's median "
                                           "2.00 over 3 orders"}]
