"""Mass assignment: fields a caller may not set (role, instance, balance, status, stock, is_staff, user, owner...)
are ignored or refused on every write endpoint, never written; checked in the database.

Two halves: every write operation of the OpenAPI schema declares none of those fields unless listed below with
the test that proves the field is checked (a new endpoint that takes one fails here); and each write endpoint is
called with them smuggled into an otherwise valid body.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import Instance, Invitation, Profile, User
from authzen.models import ServiceClient
from inventory.models import Product
from orders.models import Order
from payments.models import Wallet
from tests.factories import DEFAULT_PASSWORD
from tests.support.hostile import World, bearer, build_world, token_for

pytestmark = pytest.mark.django_db

PRIVILEGED = {"role", "profile_role", "instance", "instance_id", "balance", "status", "stock", "stock_on_hand",
              "stock_reserved", "is_staff", "is_superuser", "is_active", "user", "user_id", "owner", "customer",
              "customer_id", "total", "tokens_not_before", "created_by"}
# Declared on purpose, each checked by a test below.
DECLARED = {
    ("api_v1_auth_switch_create", "role"): "test_a_switch_above_the_profile_role_is_refused",
    ("api_v1_auth_switch_create", "instance"): "test_a_switch_above_the_profile_role_is_refused",
    ("api_v1_auth_token_create", "instance"): "test_login_ignores_smuggled_roles",
    ("instance_members_invite", "role"): "test_nobody_grants_a_role_above_their_own",
    ("instance_members_change_role", "role"): "test_nobody_grants_a_role_above_their_own",
    ("service_clients_create", "role"): "test_nobody_grants_a_role_above_their_own",
    ("products_create", "stock_on_hand"): "test_only_clerks_create_products_and_only_opening_stock_is_taken",
}


def test_no_write_operation_declares_a_privileged_field_unchecked():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    declared = set()
    for item in schema["paths"].values():
        for method, operation in item.items():
            if method not in ("post", "put", "patch"):
                continue
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if "$ref" in body:
                body = components[body["$ref"].rsplit("/", 1)[1]]
            for name in set(body.get("properties", {})) & PRIVILEGED:
                declared.add((operation["operationId"], name))

    assert declared == set(DECLARED)


@pytest.fixture
def world(db, settings) -> World:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return build_world()


def as_member(world: World, role: str):
    profile = world.a.members[role]
    return bearer(token_for(profile.user, profile))


def smuggled(world: World) -> dict:
    other = world.b.members["customer"].user_id
    return {"role": "super_admin", "profile_role": "super_admin", "instance": world.b.instance.pk,
            "instance_id": world.b.instance.pk, "balance": "1000000.00", "status": "approved", "stock": 999,
            "stock_reserved": 999, "is_staff": True, "is_superuser": True, "is_active": False, "user": other,
            "user_id": other, "owner": other, "customer": other, "customer_id": other, "total": "0.01",
            "id": 987654}


def test_placing_an_order_takes_no_status_total_customer_or_instance(world):
    customer = world.a.members["customer"]
    body = {**smuggled(world), "currency": "USD", "lines": [{"product_id": world.a.product_id, "quantity": 2}]}

    response = as_member(world, "customer").post("/api/v1/orders/", body, format="json")

    assert response.status_code == 201, response.content
    order = Order.objects.get(pk=response.json()["id"])
    assert (order.pk != 987654, order.status, order.total, order.customer_id, order.instance_id) == (
        True, "pending", Decimal("4.00"), customer.user_id, world.a.instance.pk)


def test_cancelling_an_order_takes_no_status(world):
    response = as_member(world, "customer").post(f"/api/v1/orders/{world.a.order_id}/cancel", {"status": "approved"},
                                                 format="json")

    assert response.status_code in (200, 202), response.content
    assert Order.objects.get(pk=world.a.order_id).status != "approved"


def test_only_clerks_create_products_and_only_opening_stock_is_taken(world):
    body = {**smuggled(world), "sku": "NEW-1", "name": "New", "price": "3.00", "stock_on_hand": 4}

    refused = as_member(world, "customer").post("/api/v1/products/", body, format="json")
    created = as_member(world, "clerk").post("/api/v1/products/", body, format="json")

    assert refused.status_code == 403
    assert created.status_code == 201, created.content
    product = Product.objects.get(sku="NEW-1")
    assert (product.instance_id, product.stock_on_hand, product.stock_reserved) == (world.a.instance.pk, 4, 0)
    assert Product.objects.filter(sku="NEW-1").count() == 1


def test_a_restock_changes_only_the_stock_on_hand_by_the_quantity(world):
    before = Product.objects.get(pk=world.a.product_id)
    body = {**smuggled(world), "quantity": 2, "stock_on_hand": 999, "price": "0.01"}

    refused = as_member(world, "customer").post(f"/api/v1/products/{world.a.product_id}/restock", body, format="json")
    done = as_member(world, "clerk").post(f"/api/v1/products/{world.a.product_id}/restock", body, format="json")

    assert refused.status_code == 403
    assert done.status_code == 200, done.content
    after = Product.objects.get(pk=world.a.product_id)
    assert (after.stock_on_hand, after.stock_reserved, after.price, after.instance_id) == (
        before.stock_on_hand + 2, before.stock_reserved, before.price, before.instance_id)


def test_opening_a_wallet_takes_no_balance_owner_or_instance(world):
    customer = world.a.members["customer"]
    body = {**smuggled(world), "currency": "EUR"}

    response = as_member(world, "customer").post("/api/v1/wallets/", body, format="json")

    assert response.status_code == 201, response.content
    wallet = Wallet.objects.get(pk=response.json()["id"])
    assert (wallet.balance, wallet.user_id, wallet.instance_id, wallet.currency) == (
        Decimal("0"), customer.user_id, world.a.instance.pk, "EUR")


@pytest.mark.parametrize("path", ["top-up", "adjust"])
def test_wallet_money_moves_only_by_the_amount_and_only_for_accountants(world, path):
    before = Wallet.objects.get(pk=world.a.wallet_id)
    body = {**smuggled(world), "amount": "1.00", "reason": "correction", "currency": "EUR"}
    url = f"/api/v1/wallets/{world.a.wallet_id}/{path}"

    refused = [as_member(world, role).post(url, body, format="json").status_code for role in ("customer", "clerk")]
    done = as_member(world, "accountant").post(url, body, format="json")

    assert refused == [403, 403]
    assert done.status_code in (200, 201), done.content
    after = Wallet.objects.get(pk=world.a.wallet_id)
    assert (after.balance, after.user_id, after.instance_id, after.currency) == (
        before.balance + Decimal("1.00"), before.user_id, before.instance_id, before.currency)


def test_registering_takes_no_staff_flags_or_roles(world, api_client):
    body = {**smuggled(world), "email": "new@example.com", "password": "a-long-unusual-passphrase", "name": "New"}

    response = api_client.post("/api/v1/auth/register", body, format="json")

    assert response.status_code == 201, response.content
    user = User.objects.get(email="new@example.com")
    assert (user.is_staff, user.is_superuser, user.is_active, user.tokens_not_before) == (False, False, True, None)
    assert not Profile.objects.filter(user=user).exists()


def test_creating_an_instance_takes_no_owner_or_flags(world):
    body = {**smuggled(world), "slug": "newco", "name": "Newco"}

    response = bearer(token_for(world.stranger, None)).post("/api/v1/instances", body, format="json")

    assert response.status_code == 201, response.content
    instance = Instance.objects.get(slug="newco")
    assert instance.is_active is True
    assert list(Profile.objects.filter(instance=instance).values_list("user_id", "role")) == [
        (world.stranger.pk, "instance_admin")]


def test_login_ignores_smuggled_roles(world, api_client):
    import jwt

    customer = world.a.members["customer"]
    body = {**smuggled(world), "email": customer.user.email, "password": DEFAULT_PASSWORD,
            "instance": world.a.instance.slug}

    response = api_client.post("/api/v1/auth/token", body, format="json")

    assert response.status_code == 200, response.content
    claims = jwt.decode(response.json()["access"], options={"verify_signature": False})
    assert (claims["role"], claims["profile_role"], claims["instance"]) == ("customer", "customer", "acme")


def test_a_switch_above_the_profile_role_is_refused(world, api_client):
    customer = world.a.members["customer"]
    pair = api_client.post("/api/v1/auth/token", {"email": customer.user.email, "password": DEFAULT_PASSWORD},
                           format="json").json()
    client = bearer(pair["access"])

    up = client.post("/api/v1/auth/switch", {"refresh": pair["refresh"], "instance": "acme",
                                             "role": "instance_admin"}, format="json")
    across = client.post("/api/v1/auth/switch", {"refresh": pair["refresh"], "instance": world.b.instance.slug,
                                                 "role": "customer"}, format="json")

    assert up.status_code == 403, up.content
    assert across.status_code in (403, 404), across.content
    assert Profile.objects.get(pk=customer.pk).role == "customer"


def test_nobody_grants_a_role_above_their_own(world):
    slug = world.a.instance.slug
    clerk = world.a.members["clerk"]
    customer = world.a.members["customer"]
    calls = [
        ("clerk", "post", f"/api/v1/instances/{slug}/members", {"email": "boss@example.com", "role": "instance_admin"}),
        ("instance_admin", "post", f"/api/v1/instances/{slug}/members", {"email": "god@example.com",
                                                                         "role": "super_admin"}),
        ("clerk", "patch", f"/api/v1/instances/{slug}/members/{customer.user_id}", {"role": "instance_admin"}),
        ("instance_admin", "patch", f"/api/v1/instances/{slug}/members/{clerk.user_id}", {"role": "super_admin"}),
        ("clerk", "post", f"/api/v1/instances/{slug}/service-clients", {"name": "bot", "role": "instance_admin"}),
        ("instance_admin", "post", f"/api/v1/instances/{slug}/service-clients", {"name": "bot", "role": "super_admin"}),
    ]
    roles_before = dict(Profile.objects.values_list("pk", "role"))

    statuses = [getattr(as_member(world, role), method)(url, body, format="json").status_code
                for role, method, url, body in calls]

    assert all(s in (400, 403) for s in statuses), statuses
    assert dict(Profile.objects.values_list("pk", "role")) == roles_before
    assert not Invitation.objects.filter(email__in=["boss@example.com", "god@example.com"]).exists()
    assert not ServiceClient.objects.exists()


def test_a_password_change_takes_nothing_else(world):
    customer = world.a.members["customer"]
    body = {**smuggled(world), "current_password": DEFAULT_PASSWORD, "new_password": "another-long-passphrase-1",
            "email": "stolen@example.com"}

    response = as_member(world, "customer").post("/api/v1/me/password", body, format="json")

    assert response.status_code == 204, response.content
    user = User.objects.get(pk=customer.user_id)
    assert (user.email, user.is_staff, user.is_superuser, user.is_active) == (customer.user.email, False, False, True)
