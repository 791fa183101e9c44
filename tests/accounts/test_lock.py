"""Lock and unlock (the users admin's actions, ``accounts.services.users.user_lock``/``user_unlock``), the
instances admin's deactivation, the refresh-token state filter and the periodic flush of expired tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import RefreshToken, User
from accounts.services.tokens import refresh_tokens_flush_expired, token_pair_issue
from accounts.tasks import refresh_tokens_flush
from audit.models import AuditEntry
from tests.factories import DEFAULT_PASSWORD, InstanceFactory, ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

USERS_URL = "/admin/accounts/user/"
TOKENS_URL = "/admin/accounts/refreshtoken/"


@pytest.fixture
def operator() -> User:
    return UserFactory(email="root@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def operator_client(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def member():
    return ProfileFactory(instance=InstanceFactory(slug="acme"), role="clerk", user__email="clerk@acme.test")


def login(email: str, **extra):
    return APIClient().post("/api/v1/auth/token", {"email": email, "password": DEFAULT_PASSWORD, **extra},
                            format="json")


def refresh(token: str):
    return APIClient().post("/api/v1/auth/token/refresh", {"refresh": token}, format="json")


def me(access: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.get("/api/v1/me")


def test_lock_stops_login_refresh_and_live_access_tokens(operator, operator_client, member,
                                                         django_capture_on_commit_callbacks):
    pair = login("clerk@acme.test").json()
    assert me(pair["access"]).status_code == 200  # the user row is now cached by the authenticator

    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(USERS_URL, {"action": "lock", "_selected_action": [str(member.user_id)]})

    assert response.status_code == 302
    user = User.objects.get(pk=member.user_id)
    assert (user.is_active, user.locked_at is not None, user.tokens_not_before is not None) == (False, True, True)
    assert me(pair["access"]).status_code == 401
    assert refresh(pair["refresh"]).status_code == 401
    assert login("clerk@acme.test").status_code == 401
    assert list(RefreshToken.objects.filter(user=user).values_list("revoked_reason", flat=True)) == ["locked"]
    entry = AuditEntry.objects.get(action="lock")
    assert (entry.actor_id, entry.target_id, entry.origin) == (operator.pk, str(user.pk), "request")


def test_unlock_lets_the_user_log_in_again_but_old_tokens_stay_revoked(operator, operator_client, member):
    pair = login("clerk@acme.test").json()
    operator_client.post(USERS_URL, {"action": "lock", "_selected_action": [str(member.user_id)]})

    response = operator_client.post(USERS_URL, {"action": "unlock", "_selected_action": [str(member.user_id)]})

    assert response.status_code == 302
    user = User.objects.get(pk=member.user_id)
    assert (user.is_active, user.locked_at) == (True, None)
    assert refresh(pair["refresh"]).status_code == 401
    assert login("clerk@acme.test").status_code == 200
    assert AuditEntry.objects.get(action="unlock").actor_id == operator.pk


def test_unlock_leaves_a_deactivated_but_not_locked_user_alone(operator_client):
    user = UserFactory(is_active=False)

    operator_client.post(USERS_URL, {"action": "unlock", "_selected_action": [str(user.pk)]})

    user.refresh_from_db()
    assert (user.is_active, user.locked_at) == (False, None)
    assert not AuditEntry.objects.exists()


def test_an_operator_cannot_lock_themselves(operator, operator_client):
    response = operator_client.post(USERS_URL, {"action": "lock", "_selected_action": [str(operator.pk)]},
                                    follow=True)

    assert "You cannot lock or unlock your own account" in response.content.decode()
    operator.refresh_from_db()
    assert (operator.is_active, operator.locked_at) == (True, None)
    assert not AuditEntry.objects.exists()


def test_revoke_all_tokens_action_is_audited_with_the_operator(operator, operator_client, member):
    login("clerk@acme.test")

    operator_client.post(USERS_URL, {"action": "revoke_all_tokens", "_selected_action": [str(member.user_id)]})

    entry = AuditEntry.objects.get(action="token_revocation")
    assert (entry.actor_id, entry.target_type, entry.target_id) == (operator.pk, "accounts.user", str(member.user_id))
    assert entry.after["revoked"] == 1 and entry.after["reason"] == "admin"


def test_deactivating_an_instance_in_the_admin_blocks_its_logins_and_refreshes_at_once(operator_client, member):
    instance = member.instance
    pair = login("clerk@acme.test", instance="acme").json()
    data = {"slug": "acme", "name": instance.name, "profiles-TOTAL_FORMS": "1", "profiles-INITIAL_FORMS": "1",
            "profiles-MIN_NUM_FORMS": "0", "profiles-MAX_NUM_FORMS": "1000", "profiles-0-id": str(member.pk),
            "profiles-0-instance": str(instance.pk), "profiles-0-user": str(member.user_id),
            "profiles-0-role": "clerk", "profiles-0-external_id": ""}  # is_active left out: unchecked

    response = operator_client.post(f"/admin/accounts/instance/{instance.pk}/change/", data)

    assert response.status_code == 302, response.content.decode()[:2000]
    instance.refresh_from_db()
    assert instance.is_active is False
    assert login("clerk@acme.test", instance="acme").status_code == 401
    assert refresh(pair["refresh"]).status_code == 401


# --- the refresh-token list ---------------------------------------------------------------------------------------

def test_the_state_filter_offers_live_rotated_revoked_expired(operator_client, member):
    live = token_pair_issue(user=member.user, instance=member.instance, role="clerk", profile_role="clerk")
    expired = token_pair_issue(user=member.user, instance=member.instance, role="clerk", profile_role="clerk")
    RefreshToken.objects.filter(pk=expired.refresh_token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    page = operator_client.get(TOKENS_URL).content.decode()
    live_page = operator_client.get(TOKENS_URL, {"state": "active"}).content.decode()

    for label in ("live", "rotated", "revoked", "expired"):
        assert f">{label}</a>" in page
    assert str(live.refresh_token.pk) in live_page and str(expired.refresh_token.pk) not in live_page


# --- flushing expired tokens ----------------------------------------------------------------------------------------

def _token_expired(member, ago: timedelta) -> RefreshToken:
    token = token_pair_issue(user=member.user, instance=member.instance, role="clerk",
                             profile_role="clerk").refresh_token
    RefreshToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - ago)
    return token


def test_the_periodic_flush_deletes_tokens_expired_longer_than_the_grace(member, settings):
    settings.REFRESH_TOKEN_FLUSH_GRACE_SECONDS = 3600
    old = _token_expired(member, timedelta(hours=2))
    child = token_pair_issue(user=member.user, instance=member.instance, role="clerk", profile_role="clerk",
                             family=old.family, parent=old).refresh_token
    recent = _token_expired(member, timedelta(minutes=5))

    assert refresh_tokens_flush() == 1  # the task's function, run here (beat runs it on the accounts queue)

    assert set(RefreshToken.objects.values_list("pk", flat=True)) == {child.pk, recent.pk}
    assert RefreshToken.objects.get(pk=child.pk).parent_id is None


def test_the_flush_works_in_batches_and_keeps_live_tokens(member):
    expired = [_token_expired(member, timedelta(days=1)).pk for _ in range(5)]
    live = token_pair_issue(user=member.user, instance=member.instance, role="clerk", profile_role="clerk")

    assert refresh_tokens_flush_expired(batch=2) == 5

    assert not RefreshToken.objects.filter(pk__in=expired).exists()
    assert list(RefreshToken.objects.values_list("pk", flat=True)) == [live.refresh_token.pk]


def test_beat_schedules_the_flush_on_the_accounts_queue():
    from saaskit.celery import app

    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE["accounts-refresh-tokens-flush"]
    assert entry["task"] == "accounts.refresh_tokens_flush" and entry["options"] == {"queue": "accounts"}
    assert entry["schedule"] == settings.REFRESH_TOKEN_FLUSH_INTERVAL_SECONDS
    assert "accounts.refresh_tokens_flush" in app.tasks
    assert settings.CELERY_TASK_ROUTES["accounts.refresh_tokens_flush"] == {"queue": "accounts"}


def test_a_password_set_in_the_admin_is_audited_with_the_operator(operator, operator_client, member):
    login("clerk@acme.test")

    response = operator_client.post(f"{USERS_URL}{member.user_id}/password/", {
        "password1": "a-brand-new-passphrase-42", "password2": "a-brand-new-passphrase-42", "usable_password": "true"})

    assert response.status_code == 302, response.content.decode()[:1500]
    entry = AuditEntry.objects.get(action="password_change")
    assert (entry.actor_id, entry.target_id, entry.origin) == (operator.pk, str(member.user_id), "request")
    assert entry.after["revoked"] == 1 and entry.after["reason"] == "password_changed"
