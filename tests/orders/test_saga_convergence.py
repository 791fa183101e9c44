"""The saga's consumers, delivered in process (see harness.py): in order, shuffled, and every event twice.

However the deliveries are ordered or repeated, each order ends in the same state with the same stock and
balances; deliveries that come too early are parked (NotReady) and succeed later.
"""

from decimal import Decimal

import pytest

from inventory.models import Product
from inventory.services import product_create
from orders.models import Order
from orders.services import order_cancel, order_place
from payments.models import Wallet
from payments.services import wallet_create
from saaskit.errors import ApplicationError
from tests.factories import UserFactory
from tests.orders.harness import Harness

pytestmark = pytest.mark.django_db

SEEDS = range(16)


@pytest.fixture
def world(instance):
    rich, poor, walletless = UserFactory(), UserFactory(), UserFactory()
    wallet_create(instance=instance, user=rich, currency="USD", balance="100.00")
    wallet_create(instance=instance, user=poor, currency="USD", balance="9.99")
    products = {
        "apple": product_create(instance=instance, sku="APL", name="Apple", price="10.00", stock_on_hand=5),
        "pear": product_create(instance=instance, sku="PR", name="Pear", price="5.00", stock_on_hand=2),
        "rare": product_create(instance=instance, sku="RARE", name="Rare", price="1.00", stock_on_hand=1),
    }
    return {"instance": instance, "rich": rich, "poor": poor, "walletless": walletless, **products}


def place(world, customer, **quantities):
    return order_place(instance=world["instance"], customer=world[customer], currency="USD",
                       lines=[{"product_id": world[name].pk, "quantity": qty} for name, qty in quantities.items()])


def snapshot() -> dict:
    return {
        "orders": sorted(Order.objects.values_list("customer__email", "status", "reason")),
        "stock": sorted(Product.objects.values_list("sku", "stock_on_hand", "stock_reserved")),
        "balances": sorted(Wallet.objects.values_list("user__email", "balance")),
    }


def expected(world) -> dict:
    email = {k: world[k].email for k in ("rich", "poor", "walletless")}
    return {
        "orders": sorted([(email["rich"], "approved", ""), (email["poor"], "canceled", "payment_failed"),
                          (email["rich"], "canceled", "reservation_failed"),
                          (email["walletless"], "canceled", "payment_failed")]),
        # apple: 2 sold; pear: 1 sold; the rare one never reserved (2 asked of 1).
        "stock": [("APL", 3, 0), ("PR", 1, 0), ("RARE", 1, 0)],
        "balances": sorted([(email["rich"], Decimal("75.00")), (email["poor"], Decimal("9.99"))]),
    }


def place_all(world) -> None:
    place(world, "rich", apple=2, pear=1)      # 25.00 of 100.00: approved
    place(world, "poor", apple=1)              # 10.00 of 9.99: insufficient funds
    place(world, "rich", rare=2)               # not enough stock: canceled before any charge
    place(world, "walletless", pear=1)         # no wallet: payment failed


def test_in_order_delivery(world, sent):
    place_all(world)
    harness = Harness(sent)
    harness.run()
    assert snapshot() == expected(world)
    assert harness.parked_count == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_shuffled_and_duplicated_delivery_converges(world, sent, seed):
    place_all(world)
    harness = Harness(sent, seed=seed, duplicate=True)
    harness.run()
    assert snapshot() == expected(world)


@pytest.mark.parametrize("seed", SEEDS)
def test_customer_cancel_at_any_point_restores_stock_and_money(world, sent, seed):
    order = place(world, "rich", apple=2, pear=1)
    harness = Harness(sent, seed=seed, duplicate=True)

    def cancel_at(step: int) -> None:
        if step == seed % 4:  # the saga takes at least 8 deliveries (4 events, each twice)
            order.refresh_from_db()
            try:
                order_cancel(order=order)
            except ApplicationError:
                pass

    harness.run(before_step=cancel_at)
    order.refresh_from_db()
    assert (order.status, order.reason) == ("canceled", "customer_request")
    assert sorted(Product.objects.values_list("sku", "stock_on_hand", "stock_reserved")) == [
        ("APL", 5, 0), ("PR", 2, 0), ("RARE", 1, 0)]
    assert Wallet.objects.get(user=world["rich"]).balance == Decimal("100.00")


def test_cancel_overtaking_order_created_reserves_and_charges_nothing(world, sent):
    """Newest first: inventory and payments see event-order-canceled before event-order-created."""
    order = place(world, "rich", apple=2, pear=1)
    order_cancel(order=order)
    harness = Harness(sent, lifo=True)
    harness.run()
    assert [name for name, _ in harness.delivered] == [
        "event-order-canceled", "event-order-canceled", "event-order-created"]
    assert snapshot()["stock"] == [("APL", 5, 0), ("PR", 2, 0), ("RARE", 1, 0)]
    assert Wallet.objects.get(user=world["rich"]).balance == Decimal("100.00")
    assert [s.signal for s in sent.sent] == ["order_created", "order_canceled"]


def test_charge_is_the_total_captured_at_placement_even_if_the_price_changes(world, sent):
    """The apple costs 10.00 when the order is placed and 50.00 by the time inventory reserves it: the customer
    pays the 25.00 the order showed (2 apples + 1 pear), never the new price."""
    order = place(world, "rich", apple=2, pear=1)
    assert order.total == Decimal("25.00")
    Product.objects.filter(pk=world["apple"].pk).update(price=Decimal("50.00"))

    Harness(sent).run()

    order.refresh_from_db()
    assert (order.status, order.total) == ("approved", Decimal("25.00"))
    from payments.models import Payment
    assert Payment.objects.get(order_id=order.pk).amount == Decimal("25.00")
    assert Wallet.objects.get(user=world["rich"]).balance == Decimal("75.00")
    assert list(order.timeline.values_list("kind", "detail")) == [
        ("placed", {"total": "25.00"}), ("approved", {"charged": "25.00"})]
