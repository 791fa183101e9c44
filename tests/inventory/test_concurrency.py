"""Concurrent reservations in real transactions (one thread and connection each): no oversell, no deadlock."""

import pytest

from inventory.choices import ReservationStatus
from inventory.models import Product, Reservation
from inventory.services import (
    product_create,
    reservation_commit_for_order,
    reservation_release_for_order,
    reservation_reserve_for_order,
)
from tests.factories import InstanceFactory
from tests.inventory.support import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_reservations_never_oversell():
    instance = InstanceFactory()
    product = product_create(instance=instance, sku="HOT", name="Hot item", price="5.00", stock_on_hand=7)

    def order(order_id: int):
        return lambda: reservation_reserve_for_order(instance=instance, order_id=order_id, customer_id=1,
                                                     lines=[{"product_id": product.pk, "quantity": 2}], currency="USD")

    results = run_concurrently([order(i) for i in range(1, 13)])
    assert [r for r in results if isinstance(r, Exception)] == []
    statuses = sorted(r.status for r in results)
    assert statuses == [ReservationStatus.REJECTED] * 9 + [ReservationStatus.RESERVED] * 3
    product.refresh_from_db()
    assert (product.stock_on_hand, product.stock_reserved) == (7, 6)


def test_concurrent_reservations_in_opposite_line_order_do_not_deadlock():
    instance = InstanceFactory()
    a = product_create(instance=instance, sku="A", name="A", price="1.00", stock_on_hand=100)
    b = product_create(instance=instance, sku="B", name="B", price="1.00", stock_on_hand=100)

    def order(order_id: int):
        lines = [{"product_id": a.pk, "quantity": 1}, {"product_id": b.pk, "quantity": 1}]
        if order_id % 2:
            lines.reverse()
        return lambda: reservation_reserve_for_order(instance=instance, order_id=order_id, customer_id=1,
                                                     lines=lines, currency="USD")

    results = run_concurrently([order(i) for i in range(1, 21)])
    assert [r for r in results if isinstance(r, Exception)] == []
    assert Reservation.objects.filter(status=ReservationStatus.RESERVED).count() == 20
    assert list(Product.objects.order_by("sku").values_list("stock_on_hand", "stock_reserved")) == [(100, 20),
                                                                                                    (100, 20)]


def test_concurrent_deliveries_of_the_same_order_reserve_once():
    instance = InstanceFactory()
    product = product_create(instance=instance, sku="ONE", name="One", price="1.00", stock_on_hand=10)
    call = lambda: reservation_reserve_for_order(instance=instance, order_id=77, customer_id=1,
                                                 lines=[{"product_id": product.pk, "quantity": 3}], currency="USD")
    results = run_concurrently([call] * 6)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert {r.pk for r in results} == {Reservation.objects.get().pk}
    product.refresh_from_db()
    assert product.stock_reserved == 3


def test_concurrent_commit_and_release_of_one_order_end_released_with_stock_back():
    instance = InstanceFactory()
    product = product_create(instance=instance, sku="R", name="R", price="1.00", stock_on_hand=10)
    reservation_reserve_for_order(instance=instance, order_id=5, customer_id=1, currency="USD",
                                  lines=[{"product_id": product.pk, "quantity": 4}])
    commit = lambda: reservation_commit_for_order(instance=instance, order_id=5)
    release = lambda: reservation_release_for_order(instance=instance, order_id=5)
    results = run_concurrently([commit, release, commit, release, release, commit])
    assert [r for r in results if isinstance(r, Exception)] == []
    product.refresh_from_db()
    assert (product.stock_on_hand, product.stock_reserved) == (10, 0)
    assert Reservation.objects.get().status == ReservationStatus.RELEASED
