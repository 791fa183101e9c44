from decimal import Decimal

import pytest

from inventory.selectors import (
    Price,
    product_get,
    product_list,
    product_prices,
    reservation_for_order,
)
from inventory.services import product_create, reservation_reserve_for_order
from saaskit.errors import NotFoundError

pytestmark = pytest.mark.django_db


def test_product_get_is_scoped_to_the_instance(instance, other_instance):
    mine = product_create(instance=instance, sku="A", name="A", price="1")
    theirs = product_create(instance=other_instance, sku="A", name="A", price="1")
    assert product_get(instance=instance, product_id=mine.pk) == mine
    for missing in (theirs.pk, theirs.pk + 100):
        with pytest.raises(NotFoundError) as err:
            product_get(instance=instance, product_id=missing)
        assert (err.value.code, err.value.status_code) == ("product_not_found", 404)


def test_product_list_and_lookup_by_id(instance, other_instance):
    b = product_create(instance=instance, sku="B", name="B", price="1")
    a = product_create(instance=instance, sku="A", name="A", price="1")
    theirs = product_create(instance=other_instance, sku="C", name="C", price="1")
    assert product_list(instance=instance) == [a, b]
    c = product_create(instance=instance, sku="D", name="D", price="12.34", currency="EUR")
    assert product_prices(instance=instance, product_ids=[a.pk, theirs.pk, c.pk, 10**9]) == {
        a.pk: Price(Decimal("1.00"), "USD"), c.pk: Price(Decimal("12.34"), "EUR")}
    assert product_prices(instance=instance.pk, product_ids=[]) == {}


def test_reservation_for_order(instance, other_instance):
    product = product_create(instance=instance, sku="A", name="A", price="1", stock_on_hand=1)
    reservation = reservation_reserve_for_order(instance=instance, order_id=3, customer_id=1, currency="USD",
                                                lines=[{"product_id": product.pk, "quantity": 1}])
    assert reservation_for_order(instance=instance, order_id=3) == reservation
    assert reservation_for_order(instance=other_instance, order_id=3) is None
