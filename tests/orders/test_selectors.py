import pytest

from inventory.services import product_create
from orders.selectors import (
    access_order_by_id,
    order_exists,
    order_get,
    order_list_for_customer,
)
from orders.services import order_place
from saaskit.errors import NotFoundError
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(instance, customer):
    product = product_create(instance=instance, sku="A", name="A", price="1", stock_on_hand=5)
    return order_place(instance=instance, customer=customer, currency="USD",
                       lines=[{"product_id": product.pk, "quantity": 1}])


def test_order_get_and_exists_are_scoped(instance, other_instance, order):
    assert order_get(instance=instance, order_id=order.pk) == order
    assert order_exists(instance=instance, order_id=order.pk) is True
    assert order_exists(instance=other_instance, order_id=order.pk) is False
    with pytest.raises(NotFoundError) as err:
        order_get(instance=other_instance, order_id=order.pk)
    assert (err.value.code, err.value.status_code) == ("order_not_found", 404)


def test_access_order_by_id_same_404_for_missing_foreign_and_not_yours(instance, other_instance, customer, order):
    assert access_order_by_id(actor=customer, order_id=order.pk, instance=instance) == order
    stranger = UserFactory()
    for kwargs in ({"actor": stranger, "order_id": order.pk, "instance": instance},
                   {"actor": customer, "order_id": order.pk, "instance": other_instance},
                   {"actor": customer, "order_id": order.pk + 100, "instance": instance}):
        with pytest.raises(NotFoundError) as err:
            access_order_by_id(**kwargs)
        assert err.value.code == "order_not_found"


def test_order_list_for_customer_newest_first(instance, customer, order):
    second = order_place(instance=instance, customer=customer, currency="USD",
                         lines=[{"product_id": order.lines.get().product_id, "quantity": 1}])
    order_place(instance=instance, customer=UserFactory(), currency="USD",
                lines=[{"product_id": order.lines.get().product_id, "quantity": 1}])
    assert list(order_list_for_customer(instance=instance, customer=customer)) == [second, order]
