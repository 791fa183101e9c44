from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.management.commands.seed_demo import DEMO_PASSWORD
from accounts.models import Instance, Profile, User
from events.models import OutboxEvent
from inventory.models import Product
from payments.models import Wallet
from tests.factories import InstanceFactory, UserFactory

pytestmark = pytest.mark.django_db

EXPECTED_PROFILES = {
    ("admin@saaskit.local", None, "super_admin"),
    *{(f"{local}@{slug}.local", slug, role)
      for slug in ("acme", "globex")
      for local, role in (("admin", "instance_admin"), ("clerk", "clerk"), ("accountant", "accountant"),
                          ("customer", "customer"))},
}


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict:
    return {
        "users": sorted(User.objects.values_list("pk", "email", "password")),
        "instances": sorted(Instance.objects.values_list("pk", "slug", "name")),
        "profiles": sorted(Profile.objects.values_list("pk", "user_id", "instance_id", "role")),
        "products": sorted(Product.objects.values_list("pk", "instance__slug", "sku", "stock_on_hand")),
        "wallets": sorted(Wallet.objects.values_list("pk", "instance__slug", "user__email", "balance")),
        "events": OutboxEvent.objects.count(),
    }


def test_seed_creates_the_demo_data():
    output = seed()

    assert set(Profile.objects.values_list("user__email", "instance__slug", "role")) == EXPECTED_PROFILES
    assert sorted(Instance.objects.values_list("slug", "name", "is_active")) == [
        ("acme", "Acme Corporation", True), ("globex", "Globex Corporation", True)]
    operator = User.objects.get(email="admin@saaskit.local")
    assert (operator.is_staff, operator.is_superuser) == (True, True)
    assert sorted(User.objects.filter(is_staff=True).values_list("email", flat=True)) == ["admin@saaskit.local"]
    assert all(user.check_password(DEMO_PASSWORD) for user in User.objects.all())
    assert User.objects.count() == 9
    assert sorted(Product.objects.values_list("instance__slug", "sku", "price", "currency", "stock_on_hand")) == [
        ("acme", "GADGET", Decimal("24.50"), "USD", 40), ("acme", "GIZMO", Decimal("120.00"), "USD", 5),
        ("acme", "WIDGET", Decimal("9.99"), "USD", 100),
        ("globex", "GADGET", Decimal("24.50"), "USD", 40), ("globex", "GIZMO", Decimal("120.00"), "USD", 5),
        ("globex", "WIDGET", Decimal("9.99"), "USD", 100)]
    assert sorted(Wallet.objects.values_list("instance__slug", "user__email", "currency", "balance")) == [
        ("acme", "customer@acme.local", "USD", Decimal("500.00")),
        ("globex", "customer@globex.local", "USD", Decimal("500.00"))]
    assert OutboxEvent.objects.filter(name="event-account-created").count() == 9
    assert "created user admin@saaskit.local\n" in output
    assert "created instance acme\n" in output


def test_seeding_twice_creates_the_same_rows_once():
    seed()
    first = snapshot()

    output = seed()

    assert snapshot() == first
    assert output == "nothing to create: the demo data is already there\n"


def test_print_logins_prints_the_table_and_creates_nothing_new():
    seed()
    first = snapshot()

    output = seed("--print-logins")

    assert snapshot() == first
    lines = output.splitlines()
    assert lines[0] == "nothing to create: the demo data is already there"
    assert lines[1].split() == ["email", "password", "instance", "role"]
    assert set(lines[2]) == {"-", " "}
    assert [line.split() for line in lines[3:]] == [
        ["admin@saaskit.local", DEMO_PASSWORD, "-", "super_admin"],
        ["admin@acme.local", DEMO_PASSWORD, "acme", "instance_admin"],
        ["clerk@acme.local", DEMO_PASSWORD, "acme", "clerk"],
        ["accountant@acme.local", DEMO_PASSWORD, "acme", "accountant"],
        ["customer@acme.local", DEMO_PASSWORD, "acme", "customer"],
        ["admin@globex.local", DEMO_PASSWORD, "globex", "instance_admin"],
        ["clerk@globex.local", DEMO_PASSWORD, "globex", "clerk"],
        ["accountant@globex.local", DEMO_PASSWORD, "globex", "accountant"],
        ["customer@globex.local", DEMO_PASSWORD, "globex", "customer"],
    ]


def test_print_logins_on_an_empty_database_seeds_first():
    output = seed("--print-logins")

    assert User.objects.count() == 9
    assert "customer@globex.local" in output


def test_existing_rows_are_left_as_they_are():
    acme = InstanceFactory(slug="acme", name="Acme (renamed)")
    clerk = UserFactory(email="clerk@acme.local", name="Kept")
    Profile.objects.create(user=clerk, instance=acme, role="customer")

    seed()

    acme.refresh_from_db()
    clerk.refresh_from_db()
    assert acme.name == "Acme (renamed)"
    assert (clerk.name, clerk.check_password(DEMO_PASSWORD)) == ("Kept", False)
    assert Profile.objects.get(user=clerk, instance=acme).role == "customer"
    assert Instance.objects.filter(slug="acme").count() == 1
    assert User.objects.filter(email__iexact="clerk@acme.local").count() == 1


def test_an_existing_operator_account_is_made_staff_and_superuser():
    UserFactory(email="admin@saaskit.local")

    output = seed()

    operator = User.objects.get(email="admin@saaskit.local")
    assert (operator.is_staff, operator.is_superuser) == (True, True)
    assert "created staff and superuser flags of admin@saaskit.local\n" in output
    assert Profile.objects.get(user=operator).instance is None


def test_seed_demo_refuses_to_run_in_production(settings):
    from django.core.management.base import CommandError

    settings.PRODUCTION = True

    with pytest.raises(CommandError, match="refuses to run with SAASKIT_ENV=production"):
        seed()

    assert User.objects.count() == 0
    assert Instance.objects.count() == 0
