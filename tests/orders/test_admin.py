"""The saga's admin pages render (list, filters, detail) and are read-mostly: no add, no delete."""

import pytest
from django.urls import reverse

from inventory.models import Product, Reservation
from inventory.services import product_create, reservation_reserve_for_order
from orders.models import Order
from orders.services import order_place
from payments.models import Payment, Wallet
from payments.services import payment_charge_for_order, wallet_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(instance, customer):
    product = product_create(instance=instance, sku="APL", name="Apple", price="1.50", stock_on_hand=10)
    wallet = wallet_create(instance=instance, user=customer, currency="USD", balance="10.00")
    order = order_place(instance=instance, customer=customer, currency="USD",
                        lines=[{"product_id": product.pk, "quantity": 2}])
    reservation = reservation_reserve_for_order(instance=instance, order_id=order.pk, customer_id=customer.pk,
                                                lines=[{"product_id": product.pk, "quantity": 2}], currency="USD")
    payment = payment_charge_for_order(instance=instance, order_id=order.pk, customer_id=customer.pk,
                                       amount="3.00", currency="USD")
    return {Product: product, Wallet: wallet, Order: order, Reservation: reservation, Payment: payment}


@pytest.mark.parametrize("model", [Product, Reservation, Wallet, Payment, Order])
def test_changelist_and_change_pages_render(admin_client, rows, model):
    opts = model._meta
    changelist = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
                                  {"status__exact": "x"} if model in (Order, Payment, Reservation) else {})
    assert changelist.status_code == 200
    change = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[rows[model].pk]))
    assert change.status_code == 200


@pytest.mark.parametrize("model", [Reservation, Payment, Order])
def test_saga_records_cannot_be_added_or_deleted_in_admin(admin_client, rows, model):
    opts = model._meta
    assert admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 403
    delete = reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[rows[model].pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=rows[model].pk).exists()
