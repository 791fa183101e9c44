"""Every change that touches access or money writes one AuditEntry from its service, in the change's transaction:
one test per kind of change (actor, instance, action, target, before/after), and a rolled-back change leaves none."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction

from accounts.models import Invitation, Profile, RefreshToken
from accounts.selectors import InstanceActor
from accounts.services import instances as members
from accounts.services.passwords import user_password_change
from accounts.services.tokens import (
    refresh_token_revoke,
    refresh_token_revoke_family,
    token_pair_issue,
    user_revoke_all_tokens,
)
from accounts.services.users import user_lock, user_unlock
from audit.models import AuditEntry
from authz import services as authz_services
from authz.models import GroupMembership
from authzen import services as authzen_services
from events.choices import DeliveryStatus
from events.models import Delivery
from inventory.services import product_create, product_restock
from orders.services import order_cancel_by_operator, order_place
from payments.services import wallet_adjust, wallet_create, wallet_top_up
from saaskit.errors import ApplicationError
from tests.factories import DEFAULT_PASSWORD, InstanceFactory, ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def instance():
    return InstanceFactory(slug="acme")


@pytest.fixture
def admin(instance):
    return ProfileFactory(instance=instance, role="instance_admin", user__email="boss@acme.test").user


@pytest.fixture
def actor(instance, admin):
    return InstanceActor(instance=instance, user_id=admin.pk, role="instance_admin")


def only_entry(action: str) -> AuditEntry:
    entries = list(AuditEntry.objects.filter(action=action))
    assert len(entries) == 1, [str(e) for e in entries]
    return entries[0]


def assert_entry(entry: AuditEntry, *, actor, instance, target: tuple[str, object]) -> None:
    assert (entry.actor_id, entry.actor_email) == ((actor.pk, actor.email) if actor else (None, ""))
    assert (entry.instance_id, entry.instance_slug) == ((instance.pk, instance.slug) if instance else (None, ""))
    assert (entry.target_type, entry.target_id) == (target[0], str(target[1]))


# --- members --------------------------------------------------------------------------------------------------

def test_role_change(instance, admin, actor):
    clerk = ProfileFactory(instance=instance, role="clerk")

    members.member_change_role(actor=actor, user_id=clerk.user_id, role="accountant")

    entry = only_entry("role_change")
    assert_entry(entry, actor=admin, instance=instance, target=("accounts.profile", clerk.pk))
    assert entry.before == {"user_id": clerk.user_id, "role": "clerk"}
    assert entry.after == {"user_id": clerk.user_id, "role": "accountant", "refresh_tokens_revoked": 0}


def test_invitation_sent_then_accepted_is_a_member_added(instance, admin, actor):
    invited = UserFactory(email="new@acme.test")

    invitation = members.member_invite(actor=actor, email="new@acme.test", role="clerk")
    profile = members.invitation_accept(user=invited, invitation_id=invitation.pk)

    sent = only_entry("invitation")
    assert_entry(sent, actor=admin, instance=instance, target=("accounts.invitation", invitation.pk))
    assert sent.before is None
    assert sent.after["email"] == "new@acme.test" and sent.after["role"] == "clerk"
    assert sent.after["state"] == "pending"
    added = only_entry("member_added")
    assert_entry(added, actor=invited, instance=instance, target=("accounts.profile", profile.pk))
    assert added.after == {"user_id": invited.pk, "role": "clerk", "via": f"invitation {invitation.pk}"}


def test_invitation_withdrawn(instance, admin, actor):
    invitation = members.member_invite(actor=actor, email="new@acme.test", role="clerk")
    AuditEntry.objects.all().delete()

    members.invitation_withdraw(actor=actor, invitation_id=invitation.pk)

    entry = only_entry("invitation")
    assert_entry(entry, actor=admin, instance=instance, target=("accounts.invitation", invitation.pk))
    assert entry.before == {"email": "new@acme.test", "role": "clerk", "state": "pending"}
    assert entry.after == {"state": "withdrawn"}
    assert not Invitation.objects.exists()


def test_member_removed(instance, admin, actor):
    clerk = ProfileFactory(instance=instance, role="clerk")
    token_pair_issue(user=clerk.user, instance=instance, role="clerk", profile_role="clerk")

    members.member_remove(actor=actor, user_id=clerk.user_id)

    entry = only_entry("member_removed")
    assert_entry(entry, actor=admin, instance=instance, target=("accounts.profile", clerk.pk))
    assert entry.before == {"user_id": clerk.user_id, "role": "clerk"}
    assert entry.after == {"reason": "member_removed", "refresh_tokens_revoked": 1, "policies_removed": 0}
    assert not Profile.objects.filter(pk=clerk.pk).exists()


# --- tokens ---------------------------------------------------------------------------------------------------

def test_logout_all_is_a_token_revocation_by_the_user(instance):
    user = ProfileFactory(instance=instance, role="clerk").user
    token_pair_issue(user=user, instance=instance, role="clerk", profile_role="clerk")

    user_revoke_all_tokens(user=user, reason="logout_all", actor=user)

    entry = only_entry("token_revocation")
    assert_entry(entry, actor=user, instance=None, target=("accounts.user", user.pk))
    assert entry.before == {"tokens_not_before": None}
    assert entry.after["revoked"] == 1 and entry.after["reason"] == "logout_all"
    assert entry.after["tokens_not_before"] is not None


def test_admin_revoke_of_one_token(instance, admin):
    user = ProfileFactory(instance=instance, role="clerk").user
    pair = token_pair_issue(user=user, instance=instance, role="clerk", profile_role="clerk")

    assert refresh_token_revoke(token=pair.refresh_token, reason="admin", actor=admin) is True
    assert refresh_token_revoke(token=pair.refresh_token, reason="admin", actor=admin) is False  # no second entry

    entry = only_entry("token_revocation")
    assert_entry(entry, actor=admin, instance=instance, target=("accounts.refreshtoken", pair.refresh_token.pk))
    assert entry.before == {"state": "active"}
    assert entry.after == {"state": "revoked", "reason": "admin"}


def test_revoke_family(instance, admin):
    user = ProfileFactory(instance=instance, role="clerk").user
    first = token_pair_issue(user=user, instance=instance, role="clerk", profile_role="clerk").refresh_token
    token_pair_issue(user=user, instance=instance, role="clerk", profile_role="clerk", family=first.family,
                     parent=first)

    assert refresh_token_revoke_family(family=first.family, reason="admin", actor=admin) == 2

    entry = only_entry("token_revocation")
    assert_entry(entry, actor=admin, instance=instance, target=("accounts.refreshtoken_family", first.family))
    assert entry.before is None
    assert entry.after == {"user_id": user.pk, "revoked": 2, "reason": "admin"}


def test_password_change_through_the_api_service(instance):
    user = ProfileFactory(instance=instance, role="clerk").user
    token_pair_issue(user=user, instance=instance, role="clerk", profile_role="clerk")

    user_password_change(user=user, current_password=DEFAULT_PASSWORD, new_password="an-even-longer-passphrase-9",
                         client_address="127.0.0.1")

    entry = only_entry("password_change")
    assert_entry(entry, actor=user, instance=None, target=("accounts.user", user.pk))
    assert entry.after["revoked"] == 1 and entry.after["reason"] == "password_changed"
    assert not AuditEntry.objects.filter(action="token_revocation").exists()


# --- lock / unlock ----------------------------------------------------------------------------------------------

def test_lock_and_unlock(instance, admin):
    user = ProfileFactory(instance=instance, role="clerk").user
    token_pair_issue(user=user, instance=instance, role="clerk", profile_role="clerk")

    assert user_lock(user=user, actor=admin) is True
    assert user_lock(user=user, actor=admin) is False  # locked already: nothing written

    locked = only_entry("lock")
    assert_entry(locked, actor=admin, instance=None, target=("accounts.user", user.pk))
    assert locked.before == {"is_active": True, "locked_at": None}
    assert locked.after["is_active"] is False and locked.after["refresh_tokens_revoked"] == 1
    user.refresh_from_db()
    assert locked.after["locked_at"] == user.locked_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert not AuditEntry.objects.filter(action="token_revocation").exists()

    assert user_unlock(user=user, actor=admin) is True
    assert user_unlock(user=user, actor=admin) is False

    unlocked = only_entry("unlock")
    assert_entry(unlocked, actor=admin, instance=None, target=("accounts.user", user.pk))
    assert unlocked.before["is_active"] is False and unlocked.before["locked_at"] is not None
    assert unlocked.after == {"is_active": True, "locked_at": None}
    user.refresh_from_db()
    assert (user.is_active, user.locked_at) == (True, None)


# --- authz ------------------------------------------------------------------------------------------------------

def test_policy_grant_and_revoke(instance, admin):
    clerk = ProfileFactory(instance=instance, role="clerk")
    folder = authz_services.resource_create(instance=instance, name="reports")
    policy = f"{clerk.user_id}:get:resources:{folder.pk}"

    authz_services.policies_upsert(instance=instance, policies=[policy], actor=admin)
    authz_services.policies_upsert(instance=instance, policies=[policy], actor=admin)  # held: no second entry
    authz_services.policies_remove(instance=instance, policies=[policy], actor=admin)

    grant = only_entry("policy_grant")
    assert_entry(grant, actor=admin, instance=instance, target=("authz.policy", ""))
    assert (grant.before, grant.after) == (None, {"policies": [policy]})
    revoke = only_entry("policy_revoke")
    assert_entry(revoke, actor=admin, instance=instance, target=("authz.policy", ""))
    assert (revoke.before, revoke.after) == ({"policies": [policy]}, None)


def test_group_change(instance, admin):
    first, second = (ProfileFactory(instance=instance, role="clerk") for _ in range(2))
    group = authz_services.group_create(instance=instance, name="pickers")
    authz_services.group_add_users(instance=instance, group=group, user_ids=[first.user_id], actor=admin)
    AuditEntry.objects.all().delete()

    authz_services.group_add_users(instance=instance, group=group, user_ids=[second.user_id], actor=admin)

    entry = only_entry("group_change")
    assert_entry(entry, actor=admin, instance=instance, target=("authz.group", group.pk))
    assert entry.before == {"members": [first.user_id]}
    assert entry.after == {"members": sorted([first.user_id, second.user_id])}
    assert sorted(GroupMembership.objects.filter(group=group).values_list("user_id", flat=True)) == sorted(
        [first.user_id, second.user_id])


# --- money and stock --------------------------------------------------------------------------------------------

@pytest.fixture
def wallet(instance):
    return wallet_create(instance=instance, user=UserFactory(), currency="USD")


def test_manual_balance_adjustment(instance, admin, wallet):
    wallet_top_up(wallet=wallet, amount="10.00", actor=admin)
    AuditEntry.objects.all().delete()

    tx = wallet_adjust(wallet=wallet, amount="-2.50", reason="damaged goods", actor=admin)

    entry = only_entry("balance_adjustment")
    assert_entry(entry, actor=admin, instance=instance, target=("payments.wallet", wallet.pk))
    assert entry.before == {"balance": "10.00"}
    assert entry.after == {"balance": "7.50", "amount": "-2.50", "reason": "damaged goods", "ledger_transaction": tx.pk}


def test_top_up(instance, admin, wallet):
    wallet_top_up(wallet=wallet, amount="12.34", actor=admin)

    entry = only_entry("top_up")
    assert_entry(entry, actor=admin, instance=instance, target=("payments.wallet", wallet.pk))
    assert (entry.before, entry.after) == ({"balance": "0.00"}, {"balance": "12.34", "amount": "12.34"})


def test_restock(instance, admin):
    product = product_create(instance=instance, sku="APL", name="Apple", price="1.50", stock_on_hand=10)

    product_restock(product=product, quantity=5, actor=admin)

    entry = only_entry("restock")
    assert_entry(entry, actor=admin, instance=instance, target=("inventory.product", product.pk))
    assert (entry.before, entry.after) == ({"stock_on_hand": 10}, {"stock_on_hand": 15, "quantity": 5})


def _order(instance):
    product = product_create(instance=instance, sku="APL", name="Apple", price="1.50", stock_on_hand=10)
    return order_place(instance=instance, customer=UserFactory(), currency="USD",
                       lines=[{"product_id": product.pk, "quantity": 1}])


def test_operator_cancel_from_the_command_has_no_actor(instance):
    order = _order(instance)

    order_cancel_by_operator(order_id=order.pk, note="customer phoned", actor=None)

    entry = only_entry("operator_cancel")
    assert_entry(entry, actor=None, instance=instance, target=("orders.order", order.pk))
    assert entry.origin == "command"
    assert (entry.before, entry.after) == ({"status": "pending"}, {"status": "canceled", "note": "customer phoned"})


def test_dead_letter_retry(instance, admin, monkeypatch):
    monkeypatch.setattr("events.services.relay.send", lambda rows: len(rows))  # no broker messages
    _order(instance)
    dead = Delivery.objects.order_by("pk").first()
    Delivery.objects.filter(pk=dead.pk).update(status=DeliveryStatus.DEAD, failures=3)

    from events.services import deliveries_retry

    assert deliveries_retry(delivery_ids=[dead.pk], actor=admin) == 1

    entry = only_entry("dead_letter_retry")
    assert_entry(entry, actor=admin, instance=instance, target=("events.delivery", dead.pk))
    assert entry.before == {"status": "dead", "deliveries": [dead.pk]}
    assert entry.after == {"status": "pending", "consumers": [dead.consumer]}


# --- AuthZEN service keys ---------------------------------------------------------------------------------------

def test_service_key_create_and_revoke(instance, admin):
    client, key, _secret = authzen_services.service_client_create(instance=instance, name="billing", role="clerk",
                                                                  actor=admin)
    authzen_services.service_key_revoke(key=key, actor=admin)
    authzen_services.service_key_revoke(key=key, actor=admin)  # revoked already: no second entry

    created = only_entry("service_key_create")
    assert_entry(created, actor=admin, instance=instance, target=("authzen.servicekey", key.pk))
    assert created.after == {"client": "billing", "role": "clerk", "prefix": key.prefix, "expires_at": None}
    revoked = only_entry("service_key_revoke")
    assert_entry(revoked, actor=admin, instance=instance, target=("authzen.servicekey", key.pk))
    assert revoked.before == {"client": "billing", "prefix": key.prefix, "revoked_at": None}
    assert revoked.after["revoked_at"] is not None


# --- all or nothing ---------------------------------------------------------------------------------------------

def test_a_rolled_back_change_leaves_no_entry(instance, admin, actor):
    clerk = ProfileFactory(instance=instance, role="clerk")

    with pytest.raises(RuntimeError), transaction.atomic():
        members.member_change_role(actor=actor, user_id=clerk.user_id, role="accountant")
        assert AuditEntry.objects.filter(action="role_change").count() == 1  # written inside the transaction
        raise RuntimeError("the caller fails after the service")

    assert not AuditEntry.objects.exists()
    assert Profile.objects.get(pk=clerk.pk).role == "clerk"


def test_a_refused_change_writes_no_entry(instance, admin, wallet):
    with pytest.raises(ApplicationError):
        wallet_adjust(wallet=wallet, amount="-5.00", reason="too much", actor=admin)  # balance 0

    assert not AuditEntry.objects.exists()
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("0.00")
    assert RefreshToken.objects.count() == 0
