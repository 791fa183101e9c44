"""Login and registration throttling over HTTP: atomic check-and-count, proxies, one email normal form."""

import threading
from unittest import mock

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import RefreshToken, User
from tests.factories import DEFAULT_PASSWORD, ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSPHRASE = "a-long-unusual-passphrase"


def login(client, email, password=DEFAULT_PASSWORD, **extra):
    return client.post("/api/v1/auth/token", {"email": email, "password": password, **extra}, format="json")


def register(client, email, password=PASSPHRASE, **extra):
    return client.post("/api/v1/auth/register", {"email": email, "password": password, "name": "N"},
                       format="json", **extra)


@pytest.fixture
def password_checks():
    """Counts every password check of a login (known users and the timing-equaliser dummy alike)."""
    calls: list[str] = []
    lock = threading.Lock()
    original = User.check_password

    def counting(self, raw_password):
        with lock:
            calls.append(self.email)
        return original(self, raw_password)

    with mock.patch.object(User, "check_password", counting):
        yield calls


# --- 4b: the check and the count are one step ------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_fifty_parallel_wrong_logins_let_at_most_the_limit_reach_the_password_check(password_checks):
    profile = ProfileFactory(role="clerk")
    email = profile.user.email
    barrier = threading.Barrier(50)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt():
        try:
            barrier.wait()
            status = login(APIClient(), email, "wrong-password").status_code
            with lock:
                statuses.append(status)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(password_checks) == 5  # the per-account limit (5/min), not 50
    assert sorted(statuses) == [401] * 5 + [429] * 45
    assert RefreshToken.objects.count() == 0


def test_a_throttled_login_does_not_check_the_password(api_client, password_checks):
    profile = ProfileFactory(role="clerk")
    for _ in range(5):
        login(api_client, profile.user.email, "wrong-password")
    password_checks.clear()

    response = login(api_client, profile.user.email)

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert password_checks == []
    assert RefreshToken.objects.count() == 0


def test_successful_logins_give_their_attempt_back(api_client):
    profile = ProfileFactory(role="clerk")
    for _ in range(4):
        assert login(api_client, profile.user.email, "wrong-password").status_code == 401
    for _ in range(10):
        assert login(api_client, profile.user.email).status_code == 200

    assert login(api_client, profile.user.email, "wrong-password").status_code == 401
    assert login(api_client, profile.user.email, "wrong-password").status_code == 429


# --- 4a: the client address behind trusted proxies ----------------------------------------------------------

def _narrow_address_limit(settings, limit="3/min"):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login_failures_address": limit}}


def test_behind_one_trusted_proxy_each_client_has_its_own_address_counter(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    _narrow_address_limit(settings)
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    first = APIClient(HTTP_X_FORWARDED_FOR="203.0.113.7", **proxy)
    second = APIClient(HTTP_X_FORWARDED_FOR="198.51.100.9", **proxy)

    first_statuses = [login(first, f"nobody{i}@example.com", "x").status_code for i in range(4)]
    second_statuses = [login(second, f"other{i}@example.com", "x").status_code for i in range(3)]

    assert first_statuses == [401, 401, 401, 429]
    assert second_statuses == [401, 401, 401]


def test_spoofed_leftmost_forwarded_entries_do_not_reset_the_counter(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    _narrow_address_limit(settings)

    statuses = [
        login(APIClient(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, 203.0.113.7"),
              f"nobody{i}@example.com", "x").status_code
        for i in range(4)
    ]

    assert statuses == [401, 401, 401, 429]


def test_without_trusted_proxies_the_forwarded_header_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    _narrow_address_limit(settings)

    statuses = [
        login(APIClient(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}"),
              f"nobody{i}@example.com", "x").status_code
        for i in range(4)
    ]

    assert statuses == [401, 401, 401, 429]


# --- 4c: one normal form for the email ------------------------------------------------------------------------

def test_rotating_spellings_of_an_email_all_count_against_the_one_account(api_client, password_checks):
    ProfileFactory(role="clerk", user__email="strasse@example.com")
    spellings = ["STRASSE@example.com", "\u017ftrasse@example.com",  # LATIN SMALL LONG S
                 "\uff53trasse@example.com", "STRA\u1e9eE@example.com", "stra\u00dfe@EXAMPLE.com"]

    statuses = [login(api_client, spelling, "wrong-password").status_code for spelling in spellings]
    right_password = login(api_client, "strasse@example.com")

    assert statuses == [401] * 5
    assert right_password.status_code == 429
    assert password_checks == ["strasse@example.com"] * 5  # every spelling found the account
    assert RefreshToken.objects.count() == 0


def test_login_finds_the_account_by_a_compatibility_spelling_of_its_email(api_client):
    ProfileFactory(role="clerk", user__email="kate@example.com")

    response = login(api_client, "\u212aATE@example.com")  # KELVIN SIGN, folded to k

    assert response.status_code == 200


@pytest.mark.parametrize("spelling", ["ADA@example.com", "\uff41da@example.com", "\uff21\uff24\uff21@example.com"])
def test_registering_an_email_that_normalises_to_an_existing_one_is_refused(api_client, spelling):
    UserFactory(email="ada@example.com")

    response = register(api_client, spelling)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "email_taken"
    assert list(User.objects.values_list("email", flat=True)) == ["ada@example.com"]


def test_registration_stores_the_normal_form(api_client):
    response = register(api_client, "  \uff22ob@Example.COM")

    assert response.status_code == 201
    assert response.json()["email"] == "bob@example.com"
    assert list(User.objects.values_list("email", flat=True)) == ["bob@example.com"]


def test_create_user_stores_the_normal_form():
    user = User.objects.create_user("\u212aATE@Example.com", "x")

    assert user.email == "kate@example.com"


# --- 8 (part): registration throttles like login ------------------------------------------------------------------

def test_registration_is_throttled_per_address(api_client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "register_address": "3/hour"}}
    UserFactory(email="taken@example.com")

    statuses = [register(api_client, f"probe{i}@example.com", "short").status_code for i in range(3)]
    probe = register(api_client, "taken@example.com")

    assert statuses == [400, 400, 400]
    assert probe.status_code == 429
    assert probe.json()["error"]["code"] == "throttled"
    assert User.objects.count() == 1


def test_registration_is_throttled_per_email_across_addresses():
    UserFactory(email="taken@example.com")

    statuses = [register(APIClient(REMOTE_ADDR=f"192.0.2.{i}"), "Taken@example.com").status_code for i in range(6)]

    assert statuses == [400] * 5 + [429]
    assert User.objects.count() == 1


def test_successful_registrations_count_too(api_client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "register_address": "2/hour"}}

    statuses = [register(api_client, f"new{i}@example.com").status_code for i in range(3)]

    assert statuses == [201, 201, 429]
    assert sorted(User.objects.values_list("email", flat=True)) == ["new0@example.com", "new1@example.com"]
