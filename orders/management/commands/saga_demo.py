"""``manage.py saga_demo``: place one order in a demo instance and (with ``--wait``) watch the saga settle.

Creates what it needs once (instance ``demo``, a customer, two products, a wallet) and reuses it on later
runs. A worker must be running (``make run`` starts one) for the order to leave ``pending``.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.models import Instance, User
from inventory.models import Product
from inventory.selectors import reservation_for_order
from inventory.services import product_create, product_restock
from orders.models import Order
from orders.services import order_place
from payments.models import Wallet
from payments.services import wallet_create, wallet_top_up


class Command(BaseCommand):
    @staticmethod
    def _settled(order: Order) -> bool:
        """The order left pending and inventory took its last step (committed, released or rejected)."""
        reservation = reservation_for_order(instance=order.instance_id, order_id=order.pk)
        return order.status != "pending" and reservation is not None and reservation.status != "reserved"

    help = "Place a demo order (instance 'demo') and optionally wait for the saga to approve or cancel it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--instance", default="demo", help="instance slug (created if missing)")
        parser.add_argument("--quantity", type=int, default=1, help="units of the demo product to order")
        parser.add_argument("--balance", default="100.00", help="top the wallet up to at least this amount")
        parser.add_argument("--wait", type=float, default=0, help="seconds to wait for the order to settle")

    def handle(self, *args: Any, **options: Any) -> None:
        instance, _ = Instance.objects.get_or_create(slug=options["instance"], defaults={"name": "Demo"})
        customer = User.objects.filter(email=f"customer@{instance.slug}.example.com").first() or \
            User.objects.create_user(f"customer@{instance.slug}.example.com", None, name="Demo customer")
        product = (Product.objects.for_instance(instance).filter(sku="DEMO-1").first()
                   or product_create(instance=instance, sku="DEMO-1", name="Demo item", price="10.00",
                                     stock_on_hand=0))
        if product.stock_available < options["quantity"]:
            product_restock(product=product, quantity=options["quantity"] - product.stock_available)
        wallet = (Wallet.objects.for_instance(instance).filter(user=customer, currency="USD").first()
                  or wallet_create(instance=instance, user=customer, currency="USD"))
        wanted = Decimal(options["balance"])
        if wallet.balance < wanted:
            wallet_top_up(wallet=wallet, amount=wanted - wallet.balance)

        order = order_place(instance=instance, customer=customer, currency="USD",
                            lines=[{"product_id": product.pk, "quantity": options["quantity"]}])
        self.stdout.write(f"order {order.pk} placed: {order.status}, total {order.total} USD")
        deadline = time.monotonic() + options["wait"]
        while not self._settled(order) and time.monotonic() < deadline:
            time.sleep(0.2)
            order = Order.objects.get(pk=order.pk)
        if options["wait"]:
            wallet.refresh_from_db()
            product.refresh_from_db()
            self.stdout.write(f"order {order.pk}: {order.status}{' (' + order.reason + ')' if order.reason else ''}; "
                              f"wallet {wallet.balance} USD; stock {product.stock_on_hand} on hand, "
                              f"{product.stock_reserved} reserved")
