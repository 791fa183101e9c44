"""The product admin cannot corrupt stock: on hand and reserved are read-only, and restocking is an action that
adds a quantity with a conditional update."""

import pytest
from django.urls import reverse

from inventory.models import Product
from inventory.services import product_create, reservation_commit_for_order, reservation_reserve_for_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def apple(instance):
    return product_create(instance=instance, sku="APL", name="Apple", price="1.50", stock_on_hand=10)


def sell(instance, apple, order_id: int, quantity: int) -> None:
    reservation_reserve_for_order(instance=instance, order_id=order_id, customer_id=1, currency="USD",
                                  lines=[{"product_id": apple.pk, "quantity": quantity}])
    reservation_commit_for_order(instance=instance, order_id=order_id)


def test_saving_a_stale_product_form_after_sales_puts_no_phantom_units_back(admin_client, instance, apple):
    url = reverse("admin:inventory_product_change", args=[apple.pk])
    assert admin_client.get(url).status_code == 200
    # The form the operator opened showed 10 on hand; meanwhile three units are sold and one is reserved.
    stale = {"instance": instance.pk, "sku": "APL", "name": "Green apple", "price": "1.50", "currency": "USD",
             "stock_on_hand": "10", "stock_reserved": "0"}
    for order_id in (1, 2, 3):
        sell(instance, apple, order_id, 1)
    reservation_reserve_for_order(instance=instance, order_id=4, customer_id=1, currency="USD",
                                  lines=[{"product_id": apple.pk, "quantity": 1}])

    response = admin_client.post(url, stale)

    assert response.status_code == 302
    apple.refresh_from_db()
    assert (apple.name, apple.stock_on_hand, apple.stock_reserved) == ("Green apple", 7, 1)


def test_restock_action_adds_the_quantity_to_every_selected_product(admin_client, instance, apple):
    pear = product_create(instance=instance, sku="PR", name="Pear", price="2.00", stock_on_hand=1)
    sell(instance, apple, 1, 2)
    url = reverse("admin:inventory_product_changelist")
    form = admin_client.post(url, {"action": "restock", "_selected_action": [apple.pk, pear.pk]})
    assert form.status_code == 200
    assert b"quantity" in form.content

    response = admin_client.post(url, {"action": "restock", "_selected_action": [apple.pk, pear.pk],
                                       "apply": "1", "quantity": "5"})

    assert response.status_code == 302
    assert sorted(Product.objects.values_list("sku", "stock_on_hand", "stock_reserved")) == [
        ("APL", 13, 0), ("PR", 6, 0)]


@pytest.mark.parametrize("quantity", ["0", "-3", "abc", ""])
def test_restock_action_with_a_bad_quantity_changes_nothing(admin_client, apple, quantity):
    url = reverse("admin:inventory_product_changelist")
    response = admin_client.post(url, {"action": "restock", "_selected_action": [apple.pk], "apply": "1",
                                       "quantity": quantity})
    assert response.status_code == 200
    apple.refresh_from_db()
    assert apple.stock_on_hand == 10


def test_stock_is_read_only_in_the_change_form_and_absent_from_the_add_form(admin_client, apple):
    change = admin_client.get(reverse("admin:inventory_product_change", args=[apple.pk]))
    assert b'name="stock_on_hand"' not in change.content
    assert b'name="stock_reserved"' not in change.content
    add = admin_client.get(reverse("admin:inventory_product_add"))
    assert b'name="stock_reserved"' not in add.content
