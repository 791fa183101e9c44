import pytest

from events.consumers import NotReady
from inventory.choices import ReservationStatus
from inventory.consumers import commit_for_order, release_for_order, reserve_for_order
from inventory.models import Product, Reservation
from inventory.services import product_create
from tests.inventory.support import Sent
from tests.orders.harness import call_consumer, make_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def apple(instance):
    return product_create(instance=instance, sku="APL", name="Apple", price="1.50", stock_on_hand=10)


def stock(product: Product) -> tuple[int, int]:
    product.refresh_from_db()
    return product.stock_on_hand, product.stock_reserved


def order_created(instance, apple, order_id=5, quantity=4):
    return make_event("event-order-created", {"order_id": order_id, "customer_id": 3, "currency": "USD",
                                             "lines": [{"product_id": apple.pk, "quantity": quantity}]}, instance.pk)


def test_order_created_reserves_once_however_often_delivered(instance, apple, sent):
    event = order_created(instance, apple)
    call_consumer(reserve_for_order, event)
    call_consumer(reserve_for_order, event)
    assert stock(apple) == (10, 4)
    assert sent.sent == [Sent("product_reserved", instance.pk,
                              {"order_id": 5, "customer_id": 3, "amount": "6.00", "currency": "USD"}, str(event.id))]


def test_order_created_without_stock_sends_err_reserving(instance, apple, sent):
    event = order_created(instance, apple, quantity=11)
    call_consumer(reserve_for_order, event)
    call_consumer(reserve_for_order, event)
    assert stock(apple) == (10, 0)
    assert sent.sent == [Sent("product_reservation_failed", instance.pk,
                              {"order_id": 5, "reason": "insufficient_stock"}, str(event.id))]


def test_order_approved_commits_once(instance, apple):
    call_consumer(reserve_for_order, order_created(instance, apple))
    event = make_event("event-order-approved", {"order_id": 5}, instance.pk)
    call_consumer(commit_for_order, event)
    call_consumer(commit_for_order, event)
    assert stock(apple) == (6, 0)


def test_order_approved_before_its_reservation_is_not_ready_and_changes_nothing(instance, apple):
    with pytest.raises(NotReady):
        call_consumer(commit_for_order, make_event("event-order-approved", {"order_id": 5}, instance.pk))
    assert stock(apple) == (10, 0)
    assert Reservation.objects.count() == 0


def test_order_canceled_releases_once(instance, apple):
    call_consumer(reserve_for_order, order_created(instance, apple))
    event = make_event("event-order-canceled", {"order_id": 5, "reason": "payment_failed"}, instance.pk)
    call_consumer(release_for_order, event)
    call_consumer(release_for_order, event)
    assert stock(apple) == (10, 0)
    assert Reservation.objects.get().status == ReservationStatus.RELEASED


def test_events_of_another_instance_touch_nothing(instance, other_instance, apple, sent):
    call_consumer(reserve_for_order, order_created(instance, apple))
    call_consumer(commit_for_order, make_event("event-order-approved", {"order_id": 5}, instance.pk))
    sent.clear()
    call_consumer(release_for_order, make_event("event-order-canceled", {"order_id": 5, "reason": "x"},
                                               other_instance.pk))
    assert stock(apple) == (6, 0)
    assert Reservation.objects.get(instance=instance).status == ReservationStatus.COMMITTED


def test_event_for_a_vanished_instance_is_skipped(apple, sent):
    call_consumer(reserve_for_order, make_event("event-order-created", {"order_id": 1, "customer_id": 1, "lines": [
        {"product_id": apple.pk, "quantity": 1}], "currency": "USD"}, 987654))
    assert (stock(apple), Reservation.objects.count(), sent.sent) == ((10, 0), 0, [])


@pytest.mark.parametrize("payload", [{}, {"order_id": "5"}, {"order_id": None}, {"order_id": True}])
def test_malformed_payload_raises_and_changes_nothing(instance, apple, payload):
    with pytest.raises(ValueError):
        call_consumer(release_for_order, make_event("event-order-canceled", payload, instance.pk))
    assert Reservation.objects.count() == 0
