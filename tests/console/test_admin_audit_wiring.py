"""Every kind of change the console can make writes one AuditEntry naming the operator who made it, with the
request's id and address (tests/audit/test_wiring.py covers the services themselves, the API and the commands).

One test per admin path: role change, member added and removed (the instance's members inline), token revocation
(users' and tokens' actions, superuser and instance admin), lock and unlock, policy grant and revoke (the bulk
page and the list's action), balance adjustment, restock, operator cancel, dead-letter retry."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Instance, Profile, RefreshToken, User
from audit.models import AuditEntry
from authz import services as authz_services
from authz.models import Policy
from events.choices import DeliveryStatus
from events.models import Delivery
from inventory.models import Product
from inventory.services import product_create
from orders.models import Order
from orders.services import order_place
from payments.models import Wallet
from payments.services import wallet_create, wallet_top_up
from tests.console.conftest import make_instance_admin, staff_client
from tests.factories import ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root() -> User:
    return UserFactory(email="root@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def root_client(root) -> Client:
    return staff_client(root)


@pytest.fixture
def alpha_admin(two_instances) -> User:
    return make_instance_admin(two_instances[0], email="boss@alpha.test")


def token(user: User, instance: Instance | None, *, family: uuid.UUID | None = None) -> RefreshToken:
    now = timezone.now()
    return RefreshToken.objects.create(user=user, instance=instance, role="customer", profile_role="customer",
                                       family=family or uuid.uuid4(), token_hash=secrets.token_hex(32),
                                       expires_at=now + timedelta(days=1))


def action(client: Client, url: str, name: str, pks: list, **fields) -> None:
    response = client.post(url, {"action": name, "_selected_action": [str(pk) for pk in pks], **fields})
    assert response.status_code == 302, response.content.decode()[:2000]


def entries(kind: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=kind).order_by("pk"))


def assert_by(entry: AuditEntry, operator: User, instance: Instance | None, target: tuple[str, object]) -> None:
    assert (entry.actor_id, entry.actor_email) == (operator.pk, operator.email)
    assert (entry.instance_id, entry.instance_slug) == ((instance.pk, instance.slug) if instance else (None, ""))
    assert (entry.target_type, entry.target_id) == (target[0], str(target[1]))
    assert entry.origin == "request" and entry.request_id and entry.address == "127.0.0.1"


def members_post(instance: Instance, profiles: list[Profile], changes: dict, new: list[dict] = ()) -> dict:
    data = {"slug": instance.slug, "name": instance.name, "is_active": "on",
            "profiles-TOTAL_FORMS": str(len(profiles) + len(new)), "profiles-INITIAL_FORMS": str(len(profiles)),
            "profiles-MIN_NUM_FORMS": "0", "profiles-MAX_NUM_FORMS": "1000"}
    for index, profile in enumerate(profiles):
        data.update({f"profiles-{index}-id": str(profile.pk), f"profiles-{index}-instance": str(instance.pk),
                     f"profiles-{index}-user": str(profile.user_id), f"profiles-{index}-role": profile.role})
        data.update({f"profiles-{index}-{key}": value for key, value in changes.get(profile.pk, {}).items()})
    for offset, row in enumerate(new, start=len(profiles)):
        data.update({f"profiles-{offset}-instance": str(instance.pk)})
        data.update({f"profiles-{offset}-{key}": value for key, value in row.items()})
    return data


# --- members ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["superuser", "instance admin"])
def test_role_change_on_the_instance_page(who, root, root_client, alpha_admin, two_instances):
    alpha, _ = two_instances
    clerk = ProfileFactory(instance=alpha, role="clerk")
    operator, client = (root, root_client) if who == "superuser" else (alpha_admin, staff_client(alpha_admin))
    admin_profile = Profile.objects.get(user=alpha_admin)

    response = client.post(f"/admin/accounts/instance/{alpha.pk}/change/",
                           members_post(alpha, [admin_profile, clerk], {clerk.pk: {"role": "accountant"}}))

    assert response.status_code == 302, response.content.decode()[:3000]
    (entry,) = entries("role_change")
    assert_by(entry, operator, alpha, ("accounts.profile", clerk.pk))
    assert (entry.before["role"], entry.after["role"]) == ("clerk", "accountant")


def test_member_added_and_removed_on_the_instance_page(root, root_client, two_instances):
    alpha, _ = two_instances
    clerk, newcomer = ProfileFactory(instance=alpha, role="clerk"), UserFactory()

    response = root_client.post(f"/admin/accounts/instance/{alpha.pk}/change/", members_post(
        alpha, [clerk], {clerk.pk: {"DELETE": "on"}}, new=[{"user": str(newcomer.pk), "role": "customer"}]))

    assert response.status_code == 302, response.content.decode()[:3000]
    added = Profile.objects.get(user=newcomer, instance=alpha)
    (entry,) = entries("member_added")
    assert_by(entry, root, alpha, ("accounts.profile", added.pk))
    (entry,) = entries("member_removed")
    assert_by(entry, root, alpha, (entry.target_type, entry.target_id))
    assert entry.target_id in (str(clerk.pk), str(clerk.user_id))


# --- tokens, lock ---------------------------------------------------------------------------------------------

def test_revoke_all_tokens_of_a_user_by_a_superuser(root, root_client, two_instances):
    alpha, _ = two_instances
    user = ProfileFactory(instance=alpha, role="clerk").user
    token(user, alpha)

    action(root_client, "/admin/accounts/user/", "revoke_all_tokens", [user.pk])

    (entry,) = entries("token_revocation")
    assert_by(entry, root, None, ("accounts.user", user.pk))


def test_revoke_all_tokens_of_a_user_by_an_instance_admin_is_audited_in_their_instance(alpha_admin, two_instances):
    alpha, bravo = two_instances
    user = ProfileFactory(instance=alpha, role="clerk").user
    ProfileFactory(user=user, instance=bravo, role="customer")
    here, there = token(user, alpha), token(user, bravo)

    action(staff_client(alpha_admin), "/admin/accounts/user/", "revoke_all_tokens", [user.pk])

    here.refresh_from_db(), there.refresh_from_db()
    assert (here.revoked_at is not None, there.revoked_at is None) == (True, True)
    (entry,) = entries("token_revocation")
    assert_by(entry, alpha_admin, alpha, ("accounts.user", user.pk))
    assert entry.after == {"instance": "alpha", "revoked": 1, "reason": "admin"}


@pytest.mark.parametrize("who", ["superuser", "instance admin"])
@pytest.mark.parametrize("name", ["revoke", "revoke_family"])
def test_token_actions(who, name, root, root_client, alpha_admin, two_instances):
    alpha, _ = two_instances
    user = ProfileFactory(instance=alpha, role="clerk").user
    family = uuid.uuid4()
    first, second = token(user, alpha, family=family), token(user, alpha, family=family)
    operator, client = (root, root_client) if who == "superuser" else (alpha_admin, staff_client(alpha_admin))

    action(client, "/admin/accounts/refreshtoken/", name, [first.pk])

    assert len(RefreshToken.objects.filter(pk__in=[first.pk, second.pk], revoked_at__isnull=False)) == (
        1 if name == "revoke" else 2)
    found = entries("token_revocation")
    assert found, "no audit entry"
    for entry in found:
        assert_by(entry, operator, alpha, (entry.target_type, entry.target_id))


@pytest.mark.parametrize("name", ["lock", "unlock"])
def test_lock_and_unlock(name, root, root_client, two_instances):
    user = ProfileFactory(instance=two_instances[0], role="clerk").user
    if name == "unlock":
        User.objects.filter(pk=user.pk).update(locked_at=timezone.now(), is_active=False)

    action(root_client, "/admin/accounts/user/", name, [user.pk])

    (entry,) = entries(name)
    assert_by(entry, root, None, ("accounts.user", user.pk))


# --- policies ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["superuser", "instance admin"])
def test_policy_grant_and_revoke_on_the_bulk_page(who, root, root_client, alpha_admin, two_instances):
    alpha, _ = two_instances
    clerk = ProfileFactory(instance=alpha, role="clerk").user
    operator, client = (root, root_client) if who == "superuser" else (alpha_admin, staff_client(alpha_admin))
    line = f"{clerk.pk}:get:orders:345"

    for operation in ("grant", "revoke"):
        response = client.post("/admin/authz/policy/bulk/", {"instance": "alpha", "operation": operation,
                                                             "policies": line})
        assert response.status_code == 302, response.content.decode()[:2000]

    (grant,), (revoke,) = entries("policy_grant"), entries("policy_revoke")
    assert_by(grant, operator, alpha, (grant.target_type, grant.target_id))
    assert_by(revoke, operator, alpha, (revoke.target_type, revoke.target_id))
    assert not Policy.objects.exists()


def test_policy_revoke_action_on_the_list(root, root_client, two_instances):
    alpha, _ = two_instances
    clerk = ProfileFactory(instance=alpha, role="clerk").user
    authz_services.policies_upsert(instance=alpha, policies=[f"{clerk.pk}:get:orders:7"])
    policy = Policy.objects.get()

    action(root_client, "/admin/authz/policy/", "revoke_selected", [policy.pk])

    assert not Policy.objects.exists()
    (entry,) = entries("policy_revoke")
    assert_by(entry, root, alpha, (entry.target_type, entry.target_id))


# --- money, stock, orders, the bus ------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["superuser", "instance admin"])
def test_balance_adjustment_and_restock_actions(who, root, root_client, alpha_admin, two_instances):
    alpha, _ = two_instances
    operator, client = (root, root_client) if who == "superuser" else (alpha_admin, staff_client(alpha_admin))
    wallet = wallet_create(instance=alpha, user=UserFactory(), currency="USD")
    wallet_top_up(wallet=wallet, amount="10.00", actor=None)
    product = product_create(instance=alpha, sku="APL", name="Apple", price="1.50", stock_on_hand=10)

    action(client, "/admin/payments/wallet/", "adjust", [wallet.pk], apply="1", amount="-2.50", reason="damaged")
    action(client, "/admin/inventory/product/", "restock", [product.pk], apply="1", quantity="5")

    assert (Wallet.objects.get().balance, Product.objects.get().stock_on_hand) == (7.5, 15)
    (entry,) = entries("balance_adjustment")
    assert_by(entry, operator, alpha, ("payments.wallet", wallet.pk))
    (entry,) = entries("restock")
    assert_by(entry, operator, alpha, ("inventory.product", product.pk))


def _order(instance: Instance) -> Order:
    product = product_create(instance=instance, sku="PEAR", name="Pear", price="1.00", stock_on_hand=10)
    return order_place(instance=instance, customer=UserFactory(), currency="USD",
                       lines=[{"product_id": product.pk, "quantity": 1}])


@pytest.mark.parametrize("who", ["superuser", "instance admin"])
def test_operator_cancel_action(who, root, root_client, alpha_admin, two_instances):
    alpha, _ = two_instances
    operator, client = (root, root_client) if who == "superuser" else (alpha_admin, staff_client(alpha_admin))
    order = _order(alpha)

    action(client, "/admin/orders/order/", "cancel", [order.pk], apply="1", note="customer phoned")

    order.refresh_from_db()
    assert (order.status, order.reason) == ("canceled", "operator")
    (entry,) = entries("operator_cancel")
    assert_by(entry, operator, alpha, ("orders.order", order.pk))
    assert entry.after == {"status": "canceled", "note": "customer phoned"}


def test_operator_cancel_without_a_note_asks_for_one_and_changes_nothing(root_client, two_instances):
    order = _order(two_instances[0])

    response = root_client.post("/admin/orders/order/", {"action": "cancel", "_selected_action": [order.pk],
                                                         "apply": "1", "note": ""})

    assert response.status_code == 200 and b"This field is required" in response.content
    order.refresh_from_db()
    assert order.status == "pending" and not AuditEntry.objects.filter(action="operator_cancel").exists()


def test_operator_cancel_of_another_instances_order_by_an_instance_admin_changes_nothing(alpha_admin, two_instances):
    _, bravo = two_instances
    order = _order(bravo)

    staff_client(alpha_admin).post("/admin/orders/order/", {"action": "cancel", "_selected_action": [order.pk],
                                                            "apply": "1", "note": "not mine"})

    order.refresh_from_db()
    assert order.status == "pending" and not AuditEntry.objects.filter(action="operator_cancel").exists()


def test_dead_letter_retry_action(root, root_client, two_instances, monkeypatch):
    monkeypatch.setattr("events.services.relay.send", lambda rows: len(rows))  # no broker messages
    alpha, _ = two_instances
    _order(alpha)
    dead = Delivery.objects.order_by("pk").first()
    Delivery.objects.filter(pk=dead.pk).update(status=DeliveryStatus.DEAD, failures=3)

    action(root_client, "/admin/events/delivery/", "retry_dead", [dead.pk])

    assert Delivery.objects.get(pk=dead.pk).status == DeliveryStatus.PENDING
    (entry,) = entries("dead_letter_retry")
    assert_by(entry, root, alpha, ("events.delivery", dead.pk))
