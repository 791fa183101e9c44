"""``manage.py seed_demo [--print-logins] [--orders N [--wait SECONDS]]``: an idempotent demo data set.

Creates a platform operator (``admin@saaskit.local``: staff, superuser and the global ``super_admin``
profile), the instances ``acme`` and ``globex`` and in each an instance_admin, a clerk, an accountant and a
customer (``clerk@acme.local``, ...), all with one demo password. When the inventory and payments apps are
installed it also adds a few products per instance and a wallet per customer. Rows that already exist are
left exactly as they are, so running it again creates nothing. It refuses to run in production.

``--orders N`` then places N orders (one WIDGET each, the demo customers taking turns, restocking and topping up
first as needed) through ``orders.services.order_place``: they flow through the saga like any order, so a worker
must be running (``make run``). It waits up to ``--wait`` seconds for every one to leave ``pending``, with a
progress bar (tqdm, on stderr), and exits 1 naming how many are still pending when time runs out.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Count
from tqdm import tqdm

from accounts.emails import normalize_email
from accounts.models import Instance, Profile, User
from accounts.services.users import user_register
from authz.roles import ACCOUNTANT, CLERK, CUSTOMER, INSTANCE_ADMIN, SUPER_ADMIN

DEMO_PASSWORD = "saaskit-demo-pass"
SUPER_ADMIN_EMAIL = "admin@saaskit.local"
INSTANCES = (("acme", "Acme Corporation"), ("globex", "Globex Corporation"))
MEMBERS = (("admin", INSTANCE_ADMIN), ("clerk", CLERK), ("accountant", ACCOUNTANT), ("customer", CUSTOMER))
PRODUCTS = (("WIDGET", "Widget", "9.99", 100), ("GADGET", "Gadget", "24.50", 40), ("GIZMO", "Gizmo", "120.00", 5))
CURRENCY = "USD"
CUSTOMER_OPENING_BALANCE = Decimal("500.00")
MAX_ORDERS = 100_000


@dataclass(frozen=True)
class Login:
    email: str
    instance: str | None
    role: str


def member_email(local: str, slug: str) -> str:
    return f"{local}@{slug}.local"


class Command(BaseCommand):
    help = "Create the demo operator, instances, members (and products and wallets); safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--print-logins", action="store_true",
                            help="Print a table of the demo logins and their password.")
        parser.add_argument("--orders", type=int, default=0, metavar="N",
                            help="Then place N demo orders through the saga (a worker must be running).")
        parser.add_argument("--wait", type=float, default=120.0, metavar="SECONDS",
                            help="How long to wait for the orders to leave pending (default 120; 0: don't wait).")

    def handle(self, *args: Any, print_logins: bool = False, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("seed_demo refuses to run with SAASKIT_ENV=production: it creates a superuser "
                               "and members whose password is published.")
        orders, wait = options.get("orders") or 0, options.get("wait", 120.0)
        if orders < 0 or orders > MAX_ORDERS:
            raise CommandError(f"--orders must be between 0 and {MAX_ORDERS}, not {orders}")
        if wait < 0:
            raise CommandError(f"--wait must not be negative, not {wait}")
        if orders and not all(apps.is_installed(app) for app in ("orders", "inventory", "payments")):
            raise CommandError("--orders needs the orders, inventory and payments apps installed")
        self.created: list[str] = []
        with transaction.atomic():
            logins = self._seed()
        for line in self.created:
            self.stdout.write(f"created {line}")
        if not self.created:
            self.stdout.write("nothing to create: the demo data is already there")
        if print_logins:
            self._print_logins(logins)
        if orders:
            self._orders(orders, wait)

    # --- orders through the saga -------------------------------------------------------------------
    def _orders(self, count: int, wait: float) -> None:
        order_services = importlib.import_module("orders.services")
        order_model = apps.get_model("orders", "Order")
        buyers = []
        for slug, _ in INSTANCES:
            instance = Instance.objects.get(slug=slug)
            customer = User.objects.get(email=normalize_email(member_email("customer", slug)))
            buyers.append((instance, customer, self._stock_up(instance, customer, -(-count // len(INSTANCES)))))
        placed: list[int] = []
        with self._progress(count, "placing") as bar:
            for index in range(count):
                instance, customer, product_id = buyers[index % len(buyers)]
                order = order_services.order_place(instance=instance, customer=customer, currency=CURRENCY,
                                                   lines=[{"product_id": product_id, "quantity": 1}])
                placed.append(order.pk)
                bar.update(1)
        self.stdout.write(f"placed {count} orders")
        if not wait:
            return
        deadline = time.monotonic() + wait
        pending = order_model.objects.filter(pk__in=placed, status="pending")
        with self._progress(count, "settled") as bar:
            left = pending.count()
            bar.update(count - left)
            while left and time.monotonic() < deadline:
                time.sleep(0.2)
                now_left = pending.count()
                bar.update(left - now_left)
                left = now_left
        outcome = dict(order_model.objects.filter(pk__in=placed).values_list("status").annotate(
            n=Count("pk")).order_by("status"))
        self.stdout.write("orders: " + ", ".join(f"{n} {status}" for status, n in sorted(outcome.items())))
        if left:
            raise CommandError(f"{left} of {count} orders still pending after {wait:g} s: is a worker running "
                               "(make run)?")

    @contextlib.contextmanager
    def _progress(self, total: int, what: str) -> Iterator[tqdm]:
        """A tqdm bar on the command's stderr, written raw (Django's wrapper would end each redraw with a newline
        and colour it)."""
        ending, style = self.stderr.ending, self.stderr.style_func
        self.stderr.ending, self.stderr.style_func = "", None
        try:
            with tqdm(total=total, desc=what, unit="order", file=self.stderr, leave=True) as bar:
                yield bar
        finally:
            self.stderr.ending, self.stderr.style_func = ending, style

    def _stock_up(self, instance: Instance, customer: User, orders: int) -> int:
        """The demo product's id, with stock and the customer's balance enough for ``orders`` more orders."""
        inventory = importlib.import_module("inventory.services")
        payments = importlib.import_module("payments.services")
        product = apps.get_model("inventory", "Product").objects.get(instance=instance, sku=PRODUCTS[0][0])
        if product.stock_available < orders:
            inventory.product_restock(product=product, quantity=orders - product.stock_available)
        wallet = apps.get_model("payments", "Wallet").objects.get(instance=instance, user=customer,
                                                                  currency=CURRENCY)
        needed = product.price * orders
        if wallet.balance < needed:
            payments.wallet_top_up(wallet=wallet, amount=needed - wallet.balance)
        return product.pk

    # --- seeding ---------------------------------------------------------------------------------
    def _user(self, email: str, name: str) -> User:
        user = User.objects.filter(email=normalize_email(email)).first()
        if user is None:
            user = user_register(email=email, password=DEMO_PASSWORD, name=name)
            self.created.append(f"user {email}")
        return user

    def _profile(self, user: User, instance: Instance | None, role: str) -> None:
        _, made = Profile.objects.get_or_create(user=user, instance=instance, defaults={"role": role})
        if made:
            self.created.append(f"profile {user.email} {instance.slug if instance else '*'} {role}")

    def _seed(self) -> list[Login]:
        operator = self._user(SUPER_ADMIN_EMAIL, "Platform Admin")
        if not (operator.is_staff and operator.is_superuser):
            User.objects.filter(pk=operator.pk).update(is_staff=True, is_superuser=True)
            self.created.append(f"staff and superuser flags of {SUPER_ADMIN_EMAIL}")
        self._profile(operator, None, SUPER_ADMIN)
        logins = [Login(SUPER_ADMIN_EMAIL, None, SUPER_ADMIN)]
        for slug, name in INSTANCES:
            instance, made = Instance.objects.get_or_create(slug=slug, defaults={"name": name})
            if made:
                self.created.append(f"instance {slug}")
            for local, role in MEMBERS:
                email = member_email(local, slug)
                user = self._user(email, f"{name.split()[0]} {local.capitalize()}")
                self._profile(user, instance, role)
                logins.append(Login(email, slug, role))
                if role == CUSTOMER:
                    self._wallet(instance, user)
            self._products(instance)
        return logins

    def _products(self, instance: Instance) -> None:
        if not apps.is_installed("inventory"):
            return
        services = importlib.import_module("inventory.services")
        product_model = apps.get_model("inventory", "Product")
        for sku, name, price, stock in PRODUCTS:
            if not product_model.objects.filter(instance=instance, sku=sku).exists():
                services.product_create(instance=instance, sku=sku, name=name, price=price, currency=CURRENCY,
                                        stock_on_hand=stock)
                self.created.append(f"product {instance.slug} {sku}")

    def _wallet(self, instance: Instance, user: User) -> None:
        if not apps.is_installed("payments"):
            return
        services = importlib.import_module("payments.services")
        wallet_model = apps.get_model("payments", "Wallet")
        if not wallet_model.objects.filter(instance=instance, user=user, currency=CURRENCY).exists():
            services.wallet_create(instance=instance, user=user, currency=CURRENCY,
                                   balance=CUSTOMER_OPENING_BALANCE)
            self.created.append(f"wallet {instance.slug} {user.email} {CURRENCY}")

    # --- output ------------------------------------------------------------------------------------
    def _print_logins(self, logins: list[Login]) -> None:
        rows = [("email", "password", "instance", "role")]
        rows += [(login.email, DEMO_PASSWORD, login.instance or "-", login.role) for login in logins]
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        for index, row in enumerate(rows):
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
            if index == 0:
                self.stdout.write("  ".join("-" * width for width in widths))
