"""The failed-logins rule (accounts.services.users): the M-th failed login of one account within the window sends
``accounts.signals.suspicious_activity`` once per instance of the account; the events app publishes it (accounts
does not import events). Through the bus to an Alert: tests/payments/test_alerts_integration.py."""

import pytest
from rest_framework.test import APIClient

from accounts.signals import suspicious_activity
from events.models import OutboxEvent
from tests.factories import DEFAULT_PASSWORD, InstanceFactory, ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def reports():
    sent = []

    def receiver(sender, *, instance=None, payload=None, **kwargs):
        sent.append((instance.pk if instance else None, payload))

    suspicious_activity.connect(receiver, dispatch_uid="test-failed-logins")
    yield sent
    suspicious_activity.disconnect(dispatch_uid="test-failed-logins")


@pytest.fixture
def rule(settings):
    settings.ACCOUNTS_SUSPICIOUS_FAILED_LOGINS = 3
    settings.ACCOUNTS_SUSPICIOUS_FAILED_LOGINS_WINDOW_SECONDS = 600
    return settings


def login(email, password, **extra):
    return APIClient().post("/api/v1/auth/token", {"email": email, "password": password, **extra}, format="json")


def test_the_mth_failed_login_reports_once_per_instance_of_the_account(rule, reports):
    first = ProfileFactory(role="customer")
    user = first.user
    second = ProfileFactory(user=user, instance=InstanceFactory(), role="member")
    for _ in range(2):
        assert login(user.email, "wrong-password").status_code == 401
    assert reports == []

    assert login(user.email, "wrong-password").status_code == 401
    detail = f"account {user.pk}: 3 failed logins within 600s"
    assert reports == [(first.instance_id, {"kind": "failed_logins", "detail": detail, "user_id": user.pk}),
                       (second.instance_id, {"kind": "failed_logins", "detail": detail, "user_id": user.pk})]
    assert sorted(OutboxEvent.objects.filter(name="event-suspicious-activity").values_list(
        "instance_id", flat=True)) == sorted([first.instance_id, second.instance_id])

    assert login(user.email, "wrong-password").status_code == 401  # the 4th in the same window: reported already
    assert len(reports) == 2


def test_successful_logins_and_unknown_emails_report_nothing(rule, reports):
    profile = ProfileFactory(role="customer")
    for _ in range(4):
        assert login(profile.user.email, DEFAULT_PASSWORD, instance=profile.instance.slug).status_code == 200
    for _ in range(3):
        assert login("nobody-here@example.com", "wrong-password").status_code == 401
    assert reports == []
    assert not OutboxEvent.objects.filter(name="event-suspicious-activity").exists()


def test_an_account_in_no_instance_alerts_nobody(rule, reports):
    user = UserFactory()
    for _ in range(3):
        assert login(user.email, "wrong-password").status_code == 401
    assert reports == []
