"""audit_record: what an entry holds, that it lives and dies with the caller's transaction, and that it outlives
the instance and the actor it names."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from accounts.models import Instance
from audit.choices import AuditAction
from audit.models import AuditEntry
from audit.services import AuditOutsideTransaction, audit_record
from saaskit.request_context import RequestContext, bound_request_context
from tests.factories import InstanceFactory, ProfileFactory, UserFactory

EXPECTED_ACTIONS = {
    "role_change", "member_added", "member_removed", "invitation", "token_revocation", "lock", "unlock",
    "policy_grant", "policy_revoke", "group_change", "balance_adjustment", "restock", "operator_cancel",
    "dead_letter_retry", "password_change", "top_up", "service_key_create", "service_key_revoke",
}


def test_the_actions_are_exactly_the_changes_that_touch_access_or_money():
    assert set(AuditAction.values) == EXPECTED_ACTIONS


@pytest.mark.django_db
def test_an_entry_copies_actor_instance_target_and_the_change():
    actor = UserFactory(email="operator@example.com")
    instance = InstanceFactory(slug="acme")
    profile = ProfileFactory(instance=instance, role="clerk")
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    with transaction.atomic():
        entry = audit_record(action=AuditAction.ROLE_CHANGE, actor=actor, instance=instance, target=profile,
                             before={"role": "clerk", "limit": Decimal("1.50")},
                             after={"role": "accountant", "at": when})

    stored = AuditEntry.objects.get(pk=entry.pk)
    assert (stored.actor_id, stored.actor_email) == (actor.pk, "operator@example.com")
    assert (stored.instance_id, stored.instance_slug) == (instance.pk, "acme")
    assert stored.action == "role_change"
    assert (stored.target_type, stored.target_id) == ("accounts.profile", str(profile.pk))
    assert stored.before == {"role": "clerk", "limit": "1.50"}
    assert stored.after == {"role": "accountant", "at": "2026-01-02T03:04:05Z"}
    assert stored.created_at is not None


@pytest.mark.django_db
def test_outside_a_request_the_context_is_empty_and_the_origin_is_command():
    with transaction.atomic():
        entry = audit_record(action=AuditAction.RESTOCK, actor=None, instance=None, target=("inventory.product", 7))

    stored = AuditEntry.objects.get(pk=entry.pk)
    assert (stored.request_id, stored.address, stored.origin) == ("", None, "command")
    assert (stored.actor_id, stored.actor_email) == (None, "")
    assert (stored.instance_id, stored.instance_slug) == (None, "")
    assert (stored.target_type, stored.target_id) == ("inventory.product", "7")
    assert (stored.before, stored.after) == (None, None)


@pytest.mark.django_db
def test_inside_a_bound_request_context_the_entry_carries_its_id_and_address():
    context = RequestContext(request_id="req-123", address="203.0.113.9", origin="request")
    with bound_request_context(context), transaction.atomic():
        entry = audit_record(action=AuditAction.LOCK, actor=UserFactory(), instance=None, target=None)

    stored = AuditEntry.objects.get(pk=entry.pk)
    assert (stored.request_id, stored.address, stored.origin) == ("req-123", "203.0.113.9", "request")
    assert (stored.target_type, stored.target_id) == ("", "")


@pytest.mark.django_db
def test_an_anonymous_actor_is_recorded_as_the_system():
    with transaction.atomic():
        entry = audit_record(action=AuditAction.UNLOCK, actor=AnonymousUser(), instance=None, target=None)
    assert (entry.actor_id, entry.actor_email) == (None, "")


@pytest.mark.django_db
def test_an_unknown_action_is_refused_and_nothing_is_written():
    with pytest.raises(ValueError, match="unknown audit action 'grant_everything'"), transaction.atomic():
        audit_record(action="grant_everything", actor=None, instance=None, target=None)
    assert AuditEntry.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_it_refuses_and_writes_nothing():
    with pytest.raises(AuditOutsideTransaction, match="inside the transaction"):
        audit_record(action=AuditAction.ROLE_CHANGE, actor=None, instance=None, target=None)
    assert AuditEntry.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_entry_rolls_back_with_the_change_it_records():
    instance = InstanceFactory(slug="acme")

    with pytest.raises(RuntimeError, match="the change failed"), transaction.atomic():
        Instance.objects.filter(pk=instance.pk).update(is_active=False)
        audit_record(action=AuditAction.LOCK, actor=None, instance=instance, target=instance,
                     before={"is_active": True}, after={"is_active": False})
        raise RuntimeError("the change failed")

    assert AuditEntry.objects.count() == 0
    assert Instance.objects.get(pk=instance.pk).is_active is True


@pytest.mark.django_db
def test_entries_outlive_the_instance_and_the_actor_they_name():
    actor = UserFactory(email="gone@example.com")
    instance = InstanceFactory(slug="closed")
    instance_id = instance.pk
    with transaction.atomic():
        entry = audit_record(action=AuditAction.MEMBER_REMOVED, actor=actor, instance=instance,
                             target=("accounts.profile", 1))

    instance.delete()
    actor.delete()

    stored = AuditEntry.objects.get(pk=entry.pk)
    assert (stored.actor_id, stored.actor_email) == (None, "gone@example.com")
    assert (stored.instance_id, stored.instance_slug) == (instance_id, "closed")
    assert not Instance.objects.filter(pk=instance_id).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("action", sorted(EXPECTED_ACTIONS))
def test_every_action_can_be_recorded(action):
    with transaction.atomic():
        audit_record(action=action, actor=None, instance=None, target=None)
    assert list(AuditEntry.objects.values_list("action", flat=True)) == [action]


@pytest.mark.django_db
def test_an_entry_written_during_a_request_carries_that_requests_id_and_address():
    from django.http import HttpResponse
    from django.test import RequestFactory

    from saaskit.middleware import RequestContextMiddleware

    actor = UserFactory()

    def view(request):
        with transaction.atomic():
            audit_record(action=AuditAction.PASSWORD_CHANGE, actor=actor, instance=None, target=actor)
        return HttpResponse("done")

    request = RequestFactory().post("/", HTTP_X_REQUEST_ID="edge-7", REMOTE_ADDR="2001:db8::1")
    response = RequestContextMiddleware(view)(request)

    stored = AuditEntry.objects.get()
    assert (stored.request_id, stored.address, stored.origin) == ("edge-7", "2001:db8::1", "request")
    assert response["X-Request-ID"] == "edge-7"
    assert (stored.target_type, stored.target_id) == ("accounts.user", str(actor.pk))
