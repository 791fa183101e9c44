from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from inventory.models import Product
from orders.models import Order
from payments.models import Wallet

pytestmark = pytest.mark.django_db


def test_saga_demo_places_an_order_and_reuses_its_setup(sent):
    out = StringIO()
    call_command("saga_demo", "--quantity", "3", stdout=out)
    order = Order.objects.get()
    assert out.getvalue() == f"order {order.pk} placed: pending, total 30.00 USD\n"
    call_command("saga_demo", "--quantity", "1", stdout=StringIO())
    product = Product.objects.get()
    assert (product.sku, product.stock_on_hand, product.stock_reserved) == ("DEMO-1", 3, 0)
    assert Wallet.objects.get().balance == Decimal("100.00")
    assert Order.objects.count() == 2
    assert sent.names() == ["order_created", "policy_upsert_requested"] * 2
