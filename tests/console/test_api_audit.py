"""The same kinds of change made through the API write their AuditEntry too, naming the caller, with the request's
id and address (the admin: test_admin_audit_wiring.py; the commands: test_commands.py; the services themselves:
tests/audit/test_wiring.py). A refused call writes none."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Profile
from audit.models import AuditEntry
from inventory.services import product_create
from payments.services import wallet_create
from tests.factories import InstanceFactory, ProfileFactory, context_for

pytestmark = pytest.mark.django_db



@pytest.fixture
def acme():
    return InstanceFactory(slug="acme")


@pytest.fixture
def boss(acme) -> Profile:
    return ProfileFactory(instance=acme, role="instance_admin", user__email="boss@acme.test")


def client_for(profile: Profile) -> APIClient:
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    client.force_authenticate(user=profile.user, token=context_for(profile))
    return client


def only(kind: str) -> AuditEntry:
    found = list(AuditEntry.objects.filter(action=kind))
    assert len(found) == 1, [str(e) for e in found]
    return found[0]


def assert_by(entry: AuditEntry, profile: Profile, target: tuple[str, object]) -> None:
    assert (entry.actor_id, entry.instance_id) == (profile.user_id, profile.instance_id)
    assert (entry.target_type, entry.target_id) == (target[0], str(target[1]))
    assert (entry.origin, entry.address) == ("request", "203.0.113.9") and entry.request_id


def test_role_change_and_member_removal(acme, boss):
    clerk = ProfileFactory(instance=acme, role="clerk")
    api = client_for(boss)

    changed = api.patch(f"/api/v1/instances/acme/members/{clerk.user_id}", {"role": "accountant"}, format="json")
    removed = api.delete(f"/api/v1/instances/acme/members/{clerk.user_id}")

    assert (changed.status_code, removed.status_code) == (200, 204), (changed.content, removed.content)
    entry = only("role_change")
    assert_by(entry, boss, ("accounts.profile", clerk.pk))
    assert (entry.before["role"], entry.after["role"]) == ("clerk", "accountant")
    assert only("member_removed").actor_id == boss.user_id


def test_invitation(acme, boss):
    response = client_for(boss).post("/api/v1/instances/acme/members", {"email": "new@acme.test", "role": "clerk"},
                                     format="json")

    assert response.status_code in (201, 202), response.content
    entry = only("invitation")
    assert (entry.actor_id, entry.instance_id, entry.target_type) == (boss.user_id, acme.pk, "accounts.invitation")


def test_policy_grant(acme, boss):
    clerk = ProfileFactory(instance=acme, role="clerk")

    response = client_for(boss).post("/api/v1/authz/policies", {"policy": f"{clerk.user_id}:get:orders:15"},
                                     format="json")

    assert response.status_code == 201, response.content
    entry = only("policy_grant")
    assert (entry.actor_id, entry.instance_id, entry.origin) == (boss.user_id, acme.pk, "request")


def test_balance_adjustment_and_restock(acme):
    accountant, clerk = ProfileFactory(instance=acme, role="accountant"), ProfileFactory(instance=acme, role="clerk")
    wallet = wallet_create(instance=acme, user=clerk.user, currency="USD", balance="10.00")
    product = product_create(instance=acme, sku="APL", name="Apple", price="1.50", stock_on_hand=10)

    adjusted = client_for(accountant).post(f"/api/v1/wallets/{wallet.pk}/adjust",
                                           {"amount": "-2.50", "reason": "damaged"}, format="json")
    restocked = client_for(clerk).post(f"/api/v1/products/{product.pk}/restock", {"quantity": 5}, format="json")

    assert (adjusted.status_code, restocked.status_code) == (200, 200), (adjusted.content, restocked.content)
    assert_by(only("balance_adjustment"), accountant, ("payments.wallet", wallet.pk))
    assert_by(only("restock"), clerk, ("inventory.product", product.pk))


def test_a_refused_call_writes_no_entry(acme):
    customer, clerk = ProfileFactory(instance=acme, role="customer"), ProfileFactory(instance=acme, role="clerk")
    product = product_create(instance=acme, sku="APL", name="Apple", price="1.50", stock_on_hand=10)

    refused = client_for(customer).post(f"/api/v1/products/{product.pk}/restock", {"quantity": 5}, format="json")
    demoted = client_for(customer).patch(f"/api/v1/instances/acme/members/{clerk.user_id}", {"role": "customer"},
                                         format="json")

    assert (refused.status_code, demoted.status_code) == (403, 403)
    assert not AuditEntry.objects.exists()
