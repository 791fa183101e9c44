"""A small two-instance world for the hostile-input tests (fuzzing, BOLA, mass assignment): members of every
role in instance A with a product, a wallet and an order each, the same in instance B, and real access tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

from rest_framework.test import APIClient

from accounts.models import Instance, Profile, User
from accounts.services.tokens import access_token_issue
from inventory.services import product_create
from orders.services import order_place
from payments.services import wallet_create
from tests.factories import InstanceFactory, ProfileFactory, UserFactory

ROLES = ("customer", "clerk", "accountant", "instance_admin")


@dataclass
class Side:
    """One instance and what lives in it."""

    instance: Instance
    members: dict[str, Profile] = field(default_factory=dict)
    product_id: int = 0
    wallet_id: int = 0
    order_id: int = 0


@dataclass
class World:
    a: Side
    b: Side
    stranger: User  # a member of no instance


def token_for(user: User, profile: Profile | None) -> str:
    role = profile.role if profile else "anonymous"
    return access_token_issue(user_id=user.pk, instance=profile.instance if profile else None, role=role,
                              profile_role=role)


def bearer(token: str | None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _side(slug: str) -> Side:
    side = Side(instance=InstanceFactory(slug=slug, name=slug.title()))
    for role in ROLES:
        side.members[role] = ProfileFactory(instance=side.instance, role=role)
    customer = side.members["customer"].user
    product = product_create(instance=side.instance, sku=f"{slug}-1", name="Thing", price="2.00", stock_on_hand=10)
    side.product_id = product.pk
    side.wallet_id = wallet_create(instance=side.instance, user=customer, currency="USD", balance="50").pk
    side.order_id = order_place(instance=side.instance, customer=customer, currency="USD",
                                lines=[{"product_id": product.pk, "quantity": 1}]).pk
    return side


def build_world() -> World:
    return World(a=_side("acme"), b=_side("globex"), stranger=UserFactory())
