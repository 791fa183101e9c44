"""``manage.py seed_demo [--print-logins]``: an idempotent demo data set.

Creates a platform operator (``admin@saaskit.local``: staff, superuser and the global ``super_admin``
profile), the instances ``acme`` and ``globex`` and in each an instance_admin, a clerk, an accountant and a
customer (``clerk@acme.local``, ...), all with one demo password. When the inventory and payments apps are
installed it also adds a few products per instance and a wallet per customer. Rows that already exist are
left exactly as they are, so running it again creates nothing. It refuses to run in production.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

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

    def handle(self, *args: Any, print_logins: bool = False, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("seed_demo refuses to run with SAASKIT_ENV=production: it creates a superuser "
                               "and members whose password is published.")
        self.created: list[str] = []
        with transaction.atomic():
            logins = self._seed()
        for line in self.created:
            self.stdout.write(f"created {line}")
        if not self.created:
            self.stdout.write("nothing to create: the demo data is already there")
        if print_logins:
            self._print_logins(logins)

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
