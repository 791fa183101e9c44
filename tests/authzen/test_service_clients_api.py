from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from authzen import authentication
from authzen.models import ServiceClient, ServiceKey
from tests.authzen.conftest import applied, client_for, key_client
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/instances/acme/service-clients"
EVAL = {"subject": {"type": "user", "id": "nobody"}, "action": {"name": "read"},
        "resource": {"type": "record", "id": "r1"}}


def _evaluate(client, slug="acme"):
    return client.post(f"/authzen/{slug}/access/v1/evaluation", EVAL, format="json")


def test_an_admin_creates_a_client_whose_key_is_shown_once_and_stored_hashed(admin):
    response = admin.post(URL, {"name": "gateway", "role": "clerk"}, format="json")

    assert response.status_code == 201
    body = response.json()
    key = body["key"]
    assert key.startswith("sk_")
    assert body["name"] == "gateway" and body["role"] == "clerk"
    assert [k["prefix"] for k in body["keys"]] == [key[:11]]
    row = ServiceKey.objects.get()
    assert row.prefix == key[:11]
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {str(v) for v in ServiceKey.objects.values_list("prefix", "key_hash").get()}
    listed = admin.get(URL).json()["items"]
    assert [(c["name"], [k["prefix"] for k in c["keys"]]) for c in listed] == [("gateway", [key[:11]])]
    assert "key" not in listed[0] and "key_hash" not in str(listed)


@pytest.mark.parametrize("role", ["super_admin", "anonymous", "owner"])
def test_a_client_role_must_be_an_instance_role_of_the_lattice(admin, role):
    response = admin.post(URL, {"name": "gateway", "role": role}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_role"
    assert not ServiceClient.objects.exists()


def test_a_customer_may_not_manage_clients(instance):
    customer = client_for(ProfileFactory(instance=instance, role="customer"))

    assert customer.post(URL, {"name": "gateway", "role": "clerk"}, format="json").status_code == 403
    assert customer.get(URL).status_code == 403
    assert not ServiceClient.objects.exists()


def test_another_instances_admin_gets_the_same_404_as_for_a_missing_instance(other_instance, instance):
    foreign = client_for(ProfileFactory(instance=other_instance, role="instance_admin"))

    assert foreign.post(URL, {"name": "x", "role": "clerk"}, format="json").status_code == 404
    assert foreign.get("/api/v1/instances/nope/service-clients").status_code == 404
    assert not ServiceClient.objects.exists()


def test_a_key_works_only_for_its_own_instance_and_only_at_the_pdp(pep, other_instance):
    assert _evaluate(pep).status_code == 200
    assert _evaluate(pep, "globex").status_code == 404
    assert pep.get("/api/v1/me").status_code == 401


def test_no_or_an_unknown_key_is_401(instance):
    from rest_framework.test import APIClient

    assert _evaluate(APIClient()).status_code == 401
    assert _evaluate(key_client("sk_00000000_nope")).status_code == 401


def test_a_revoked_key_stops_working_once_the_feed_says_so(synced, admin, django_capture_on_commit_callbacks,
                                                           django_assert_num_queries):
    created = admin.post(URL, {"name": "gateway", "role": "clerk"}, format="json").json()
    pep = key_client(created["key"])
    assert _evaluate(pep).status_code == 200
    with django_assert_num_queries(0):  # warm: the key is a dict lookup
        assert _evaluate(pep).status_code == 200
    before = synced.applied

    with django_capture_on_commit_callbacks(execute=True):
        revoked = admin.delete(f"{URL}/{created['id']}/keys/{created['keys'][0]['prefix']}")
    applied(before)

    assert revoked.status_code == 204
    assert _evaluate(pep).status_code == 401
    assert ServiceKey.objects.get().revoked_at is not None


def test_deleting_a_client_stops_its_keys_and_a_second_key_works_alongside_the_first(
        synced, admin, django_capture_on_commit_callbacks):
    created = admin.post(URL, {"name": "gateway", "role": "clerk"}, format="json").json()
    second = admin.post(f"{URL}/{created['id']}/keys", {}, format="json")
    assert second.status_code == 201
    assert _evaluate(key_client(created["key"])).status_code == 200
    assert _evaluate(key_client(second.json()["key"])).status_code == 200
    before = synced.applied

    with django_capture_on_commit_callbacks(execute=True):
        assert admin.delete(f"{URL}/{created['id']}").status_code == 204
    applied(before)

    assert _evaluate(key_client(created["key"])).status_code == 401
    assert _evaluate(key_client(second.json()["key"])).status_code == 401
    assert not ServiceKey.objects.exists()


def test_an_expired_key_is_refused_and_use_is_recorded(admin):
    created = admin.post(URL, {"name": "gateway", "role": "clerk",
                               "expires_at": (timezone.now() + timedelta(hours=1)).isoformat()}, format="json").json()
    assert _evaluate(key_client(created["key"])).status_code == 200
    assert ServiceKey.objects.get().last_used_at is not None

    ServiceKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    authentication.forget_cached_keys()

    assert _evaluate(key_client(created["key"])).status_code == 401


def test_expiry_is_checked_on_every_request_even_from_memory(synced, admin, monkeypatch, django_assert_num_queries):
    created = admin.post(URL, {"name": "gateway", "role": "clerk",
                               "expires_at": (timezone.now() + timedelta(hours=1)).isoformat()}, format="json").json()
    pep = key_client(created["key"])
    assert _evaluate(pep).status_code == 200
    real = authentication._wall
    monkeypatch.setattr(authentication, "_wall", lambda: real() + 3601)

    with django_assert_num_queries(0):
        assert _evaluate(pep).status_code == 401


def test_last_use_is_written_at_most_once_per_period_per_key(synced, admin, monkeypatch):
    created = admin.post(URL, {"name": "gateway", "role": "clerk"}, format="json").json()
    touches = []
    real_touch = authentication.services.service_key_touch
    monkeypatch.setattr(authentication.services, "service_key_touch",
                        lambda **kwargs: touches.append(kwargs["key_id"]) or real_touch(**kwargs))
    pep = key_client(created["key"])

    for _ in range(5):
        assert _evaluate(pep).status_code == 200
    real = authentication.time.monotonic
    monkeypatch.setattr(authentication.time, "monotonic", lambda: real() + authentication.TOUCH_EVERY_SECONDS + 1)
    assert _evaluate(pep).status_code == 200

    key_id = ServiceKey.objects.get().pk
    assert touches == [key_id, key_id]


def test_an_expiry_in_the_past_is_refused(admin):
    response = admin.post(URL, {"name": "gateway", "role": "clerk",
                                "expires_at": (timezone.now() - timedelta(hours=1)).isoformat()}, format="json")

    assert response.status_code == 400
    assert not ServiceClient.objects.exists()


def test_a_client_of_another_instance_is_not_found(admin, other_instance):
    from authzen import services

    foreign, _, _ = services.service_client_create(instance=other_instance, name="theirs", role="clerk")

    assert admin.get(f"{URL}/{foreign.pk}").status_code == 404
    assert admin.delete(f"{URL}/{foreign.pk}").status_code == 404
    assert ServiceClient.objects.filter(pk=foreign.pk).exists()
