"""Issue 8 item 1: a request acts only in a role the caller's *current* profile backs.

Real tokens (login over HTTP) against real URLs. The per-process caches are cleared where a test stands for
"a second later in any process"; one test waits the cache's lifetime out instead.
"""

import time
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts import authentication, selectors
from accounts.models import Profile
from authz.models import Policy
from inventory.models import Product
from payments.models import Wallet
from payments.services import wallet_create
from tests.factories import DEFAULT_PASSWORD, InstanceFactory, ProfileFactory

pytestmark = pytest.mark.django_db

ROLE_STALE = {"error": {"code": "role_stale", "fields": {},
                        "message": "Your role or membership has changed; sign in again."}}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def a_second_later() -> None:
    """What every process sees once the per-process caches' lifetime (1 s at most) has passed."""
    selectors.standing_cache_clear()
    authentication._user_cache.clear()


def login(email: str, instance: str | None = None) -> APIClient:
    body = {"email": email, "password": DEFAULT_PASSWORD, **({"instance": instance} if instance else {})}
    response = APIClient().post("/api/v1/auth/token", body, format="json")
    assert response.status_code == 200, response.json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    client.refresh = response.json()["refresh"]  # a switch presents it
    return client


@pytest.fixture
def acme():
    return InstanceFactory(slug="acme")


@pytest.fixture
def demoted(acme):
    return ProfileFactory(instance=acme, role="instance_admin", user__email="demoted@acme.test")


@pytest.fixture
def boss(acme):
    return ProfileFactory(instance=acme, role="instance_admin", user__email="boss@acme.test")


@pytest.fixture
def wallet(acme):
    return wallet_create(instance=acme, user=ProfileFactory(instance=acme, role="customer").user, currency="USD")


def _attack(client: APIClient, wallet: Wallet, user_id: int) -> dict[str, object]:
    policy = client.post("/api/v1/authz/policies", {"policy": f"{user_id}:get:orders:*"}, format="json")
    product = client.post("/api/v1/products/", {"sku": "X-1", "name": "Stolen", "price": "1.00"}, format="json")
    top_up = client.post(f"/api/v1/wallets/{wallet.pk}/top-up", {"amount": "500.00"}, format="json")
    return {"policy": (policy.status_code, policy.json()), "product": (product.status_code, product.json()),
            "top_up": (top_up.status_code, top_up.json())}


def test_a_demoted_admins_old_token_writes_no_policy_product_or_top_up(acme, demoted, boss, wallet):
    old_token = login("demoted@acme.test")
    assert old_token.get("/api/v1/products/").status_code == 200  # the token works, and is cached, before

    changed = login("boss@acme.test").patch(f"/api/v1/instances/acme/members/{demoted.user_id}",
                                            {"role": "customer"}, format="json")
    a_second_later()
    outcome = _attack(old_token, wallet, demoted.user_id)

    assert changed.status_code == 200
    assert outcome == {"policy": (401, ROLE_STALE), "product": (401, ROLE_STALE), "top_up": (401, ROLE_STALE)}
    assert not Policy.objects.exists()
    assert not Product.objects.exists()
    wallet.refresh_from_db()
    assert wallet.balance == Decimal("0.00")


def test_a_removed_members_token_stops(acme, demoted, boss, wallet):
    old_token = login("demoted@acme.test")
    assert old_token.get("/api/v1/products/").status_code == 200

    removed = login("boss@acme.test").delete(f"/api/v1/instances/acme/members/{demoted.user_id}")
    a_second_later()
    outcome = _attack(old_token, wallet, demoted.user_id)
    listing = old_token.get("/api/v1/products/")

    assert removed.status_code == 204
    assert outcome == {"policy": (401, ROLE_STALE), "product": (401, ROLE_STALE), "top_up": (401, ROLE_STALE)}
    assert (listing.status_code, listing.json()) == (401, ROLE_STALE)
    assert not Policy.objects.exists()
    assert not Product.objects.exists()


def test_a_role_change_made_by_another_process_is_seen_within_a_second(acme, demoted, boss, wallet):
    """No cache clearing here: the change bypasses this process (a plain UPDATE, as another process's
    commit would look), and the token stops once the cache's one second has passed."""
    old_token = login("demoted@acme.test")
    assert old_token.post("/api/v1/products/", {"sku": "OK-1", "name": "Fine", "price": "1.00"},
                          format="json").status_code == 201

    Profile.objects.filter(pk=demoted.pk).update(role="customer")
    time.sleep(selectors.STANDING_TTL_SECONDS + 0.05)
    late = old_token.post("/api/v1/products/", {"sku": "X-1", "name": "Stolen", "price": "1.00"}, format="json")

    assert (late.status_code, late.json()) == (401, ROLE_STALE)
    assert list(Product.objects.values_list("sku", flat=True)) == ["OK-1"]


def test_the_same_process_sees_a_role_change_at_once(acme, demoted, boss, wallet, django_capture_on_commit_callbacks):
    old_token = login("demoted@acme.test")
    assert old_token.get("/api/v1/products/").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        login("boss@acme.test").patch(f"/api/v1/instances/acme/members/{demoted.user_id}", {"role": "clerk"},
                                      format="json")
    policy = old_token.post("/api/v1/authz/policies", {"policy": f"{demoted.user_id}:get:orders:*"}, format="json")

    assert (policy.status_code, policy.json()) == (401, ROLE_STALE)
    assert not Policy.objects.exists()


def test_a_switched_down_token_still_backed_by_the_new_role_keeps_working(acme, demoted, boss):
    """An admin who switched down to clerk and is then made clerk still holds a role the profile backs."""
    admin_token = login("demoted@acme.test")
    switched = admin_token.post("/api/v1/auth/switch", {"instance": "acme", "role": "clerk",
                                                        "refresh": admin_token.refresh}, format="json")
    as_clerk = APIClient()
    as_clerk.credentials(HTTP_AUTHORIZATION=f"Bearer {switched.json()['access']}")

    Profile.objects.filter(pk=demoted.pk).update(role="clerk")
    a_second_later()
    created = as_clerk.post("/api/v1/products/", {"sku": "C-1", "name": "Clerk's", "price": "2.00"}, format="json")
    policy = as_clerk.post("/api/v1/authz/policies", {"policy": f"{demoted.user_id}:get:orders:*"}, format="json")

    assert created.status_code == 201
    assert policy.status_code == 403  # clerk never could
    assert list(Product.objects.values_list("sku", flat=True)) == ["C-1"]


def test_an_operator_who_lost_the_global_profile_stops(acme):
    operator = ProfileFactory(instance=None, role="super_admin", user__email="root@example.com")
    token = login("root@example.com")
    switched = token.post("/api/v1/auth/switch", {"instance": "acme", "role": "instance_admin",
                                             "refresh": token.refresh}, format="json")
    as_admin = APIClient()
    as_admin.credentials(HTTP_AUTHORIZATION=f"Bearer {switched.json()['access']}")
    assert as_admin.get("/api/v1/products/").status_code == 200

    operator.delete()
    a_second_later()
    late = as_admin.post("/api/v1/products/", {"sku": "X-1", "name": "Stolen", "price": "1.00"}, format="json")
    unswitched = token.get("/api/v1/instances")

    assert (late.status_code, late.json()) == (401, ROLE_STALE)
    assert (unswitched.status_code, unswitched.json()) == (401, ROLE_STALE)
    assert not Product.objects.exists()
