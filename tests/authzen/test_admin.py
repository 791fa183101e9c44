from __future__ import annotations

import hashlib

import pytest
from django.test import Client

from authzen.models import Policy, ResourceType, ServiceClient, ServiceKey
from tests.factories import ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_creating_a_client_in_the_admin_shows_its_key_once(staff, instance):
    response = staff.post("/admin/authzen/serviceclient/add/", {
        "instance": instance.pk, "name": "gateway", "role": "clerk",
        "keys-TOTAL_FORMS": "0", "keys-INITIAL_FORMS": "0"}, follow=True)

    shown = [str(m) for m in response.context["messages"]]
    key = shown[0].split("New key for gateway: ")[1].split(" ")[0]
    assert ServiceKey.objects.get().key_hash == hashlib.sha256(key.encode()).hexdigest()
    page = staff.get(f"/admin/authzen/serviceclient/{ServiceClient.objects.get().pk}/change/").content.decode()
    assert key[:11] in page and key not in page


def test_the_admin_refuses_a_condition_that_does_not_compile(staff, instance):
    rtype = ResourceType.objects.create(instance=instance, name="record", actions=["read"])

    response = staff.post("/admin/authzen/policy/add/", {
        "instance": instance.pk, "resource_type": rtype.pk, "action": "read", "resource_id": "*",
        "condition": "resource.properties.status =="})

    assert response.status_code == 200
    assert "Syntax error" in response.content.decode()
    assert not Policy.objects.exists()


def test_the_admin_revokes_keys(staff, instance):
    from authzen import services

    client, _, _ = services.service_client_create(instance=instance, name="gateway", role="clerk")
    staff.post("/admin/authzen/serviceclient/", {"action": "revoke_keys", "_selected_action": [client.pk]})

    assert ServiceKey.objects.get().revoked_at is not None


def test_members_external_ids_are_edited_on_the_instance_page(staff, instance):
    one, two = ProfileFactory(instance=instance, external_id="alice"), ProfileFactory(instance=instance)
    form = {"slug": instance.slug, "name": instance.name, "is_active": "on",
            "profiles-TOTAL_FORMS": "2", "profiles-INITIAL_FORMS": "2",
            "profiles-0-id": one.pk, "profiles-0-instance": instance.pk, "profiles-0-user": one.user_id,
            "profiles-0-role": "customer", "profiles-0-external_id": "alice",
            "profiles-1-id": two.pk, "profiles-1-instance": instance.pk, "profiles-1-user": two.user_id,
            "profiles-1-role": "customer", "profiles-1-external_id": "alice"}

    refused = staff.post(f"/admin/accounts/instance/{instance.pk}/change/", form)
    form["profiles-1-external_id"] = "bob"
    accepted = staff.post(f"/admin/accounts/instance/{instance.pk}/change/", form)

    assert "has this external id" in refused.content.decode()
    assert accepted.status_code == 302
    two.refresh_from_db()
    assert two.external_id == "bob"
