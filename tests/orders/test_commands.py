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
    assert sent.names() == ["order_created"] * 2


def saga(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("saga", *args, stdout=out)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def orders(instance, customer):
    from datetime import timedelta

    from django.utils import timezone

    from inventory.services import product_create
    from orders.services import order_approve, order_place

    apple = product_create(instance=instance, sku="APL", name="Apple", price="1.00", stock_on_hand=10)
    placed = [order_place(instance=instance, customer=customer, currency="USD",
                          lines=[{"product_id": apple.pk, "quantity": 1}]) for _ in range(3)]
    order_approve(instance=instance, order_id=placed[0].pk)
    Order.objects.filter(pk=placed[1].pk).update(created_at=timezone.now() - timedelta(seconds=120))
    Order.objects.filter(pk=placed[0].pk).update(needs_attention=True, attention_reason="refund dead")
    return placed


def test_saga_status_prints_counts_oldest_pending_and_attention(orders, settings):
    settings.ORDER_DEADLINE_SECONDS = 60
    code, out = saga("status")
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "orders: pending 2, approved 1, canceled 0"
    assert lines[1].startswith(f"oldest pending: order {orders[1].pk}, 120.")
    assert lines[2:4] == ["needing attention: 1", f"  order {orders[0].pk} (approved): refund dead"]
    assert lines[4] == "pending past the 60s deadline: 1"


def test_saga_status_stuck_json_exits_1_when_something_is_stuck(orders, settings):
    import json

    settings.ORDER_DEADLINE_SECONDS = 60
    code, out = saga("status", "--stuck", "--json")
    body = json.loads(out)
    assert code == 1
    assert sorted(body) == ["deadline_seconds", "needs_attention", "overdue"]
    assert [o["id"] for o in body["needs_attention"]] == [orders[0].pk]
    assert [o["id"] for o in body["overdue"]] == [orders[1].pk]
    Order.objects.update(needs_attention=False)
    settings.ORDER_DEADLINE_SECONDS = 600
    assert saga("status", "--stuck")[0] == 0


def test_saga_cancel_ends_the_order_as_operator_and_refuses_twice(orders, sent):
    from django.core.management.base import CommandError

    code, out = saga("cancel", str(orders[2].pk), "--reason", "customer phoned")
    assert (code, out) == (0, f"order {orders[2].pk}: canceled (operator: customer phoned); compensation follows\n")
    order = Order.objects.get(pk=orders[2].pk)
    assert (order.status, order.reason) == ("canceled", "operator")
    assert order.timeline.last().detail == {"reason": "operator", "cause": "customer phoned"}
    with pytest.raises(CommandError, match="invalid_transition"):
        saga("cancel", str(orders[2].pk), "--reason", "again")
    with pytest.raises(CommandError, match="order_not_found"):
        saga("cancel", "999999", "--reason", "x")


def test_saga_resume_clears_the_flag(orders):
    code, out = saga("resume", str(orders[0].pk))
    assert (code, out) == (0, f"order {orders[0].pk} (approved): 0 dead-lettered deliveries sent again; "
                              "needs_attention cleared\n")
    assert Order.objects.filter(needs_attention=True).count() == 0
