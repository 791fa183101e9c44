import threading
import time

import jwt
import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import RefreshToken, User
from accounts.services.tokens import access_token_issue
from accounts.signals import account_authenticated, account_created
from audit.choices import AuditAction
from audit.models import AuditEntry
from tests.factories import DEFAULT_PASSWORD, InstanceFactory, ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


def login(client, email, password=DEFAULT_PASSWORD, **extra):
    return client.post("/api/v1/auth/token", {"email": email, "password": password, **extra}, format="json")


def claims_of(access: str) -> dict:
    return jwt.decode(access, options={"verify_signature": False})


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


@pytest.fixture
def captured():
    seen = []

    def receiver(sender, **kwargs):
        seen.append(kwargs["payload"])

    account_created.connect(receiver, dispatch_uid="test-created")
    account_authenticated.connect(receiver, dispatch_uid="test-authenticated")
    yield seen
    account_created.disconnect(dispatch_uid="test-created")
    account_authenticated.disconnect(dispatch_uid="test-authenticated")


# --- register -----------------------------------------------------------------------------------

def test_register_creates_the_user_and_publishes_account_created(api_client, captured):
    response = api_client.post("/api/v1/auth/register",
                               {"email": "Ada@Example.com", "password": "a-long-unusual-passphrase", "name": "Ada"},
                               format="json")

    assert response.status_code == 201
    user = User.objects.get()
    assert response.json() == {"id": user.pk, "email": "ada@example.com", "name": "Ada"}
    assert user.password.startswith("argon2$")
    assert captured == [{"user_id": user.pk, "email": "ada@example.com"}]


def test_register_with_a_taken_email_in_any_case_is_a_field_error(api_client):
    UserFactory(email="ada@example.com")

    response = api_client.post("/api/v1/auth/register",
                               {"email": "ADA@example.com", "password": "a-long-unusual-passphrase", "name": "A"},
                               format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "email_taken"
    assert list(response.json()["error"]["fields"]) == ["email"]
    assert User.objects.count() == 1


@pytest.mark.parametrize("password", ["short", "password123", "12345678901234"])
def test_register_with_a_weak_password_is_refused(api_client, password):
    response = api_client.post("/api/v1/auth/register", {"email": "a@example.com", "password": password, "name": "A"},
                               format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "weak_password"
    assert User.objects.count() == 0


@pytest.mark.parametrize("body", [{}, {"email": "not-an-email", "password": "a-long-unusual-passphrase", "name": "A"},
                                  {"email": ["a@b.c"], "password": 5, "name": None}])
def test_register_with_missing_or_mistyped_fields_is_a_400(api_client, body):
    response = api_client.post("/api/v1/auth/register", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert User.objects.count() == 0


# --- token --------------------------------------------------------------------------------------

def test_login_returns_tokens_acting_in_the_profile_role(api_client, captured):
    profile = ProfileFactory(role="clerk", instance__slug="acme")

    response = login(api_client, profile.user.email)

    assert response.status_code == 200
    claims = claims_of(response.json()["access"])
    assert (claims["sub"], claims["instance"], claims["role"]) == (str(profile.user_id), "acme", "clerk")
    assert captured == [{"user_id": profile.user_id, "instance": "acme", "role": "clerk"}]
    assert RefreshToken.objects.get().token_hash != response.json()["refresh"]
    assert not RefreshToken.objects.filter(token_hash__contains=response.json()["refresh"][:20]).exists()


def test_login_naming_the_instance_picks_that_profile(api_client):
    user = UserFactory()
    ProfileFactory(user=user, role="clerk", instance__slug="acme")
    ProfileFactory(user=user, role="accountant", instance__slug="globex")

    claims = claims_of(login(api_client, user.email, instance="globex").json()["access"])

    assert (claims["instance"], claims["role"]) == ("globex", "accountant")


def test_login_without_an_instance_for_a_member_of_several_acts_for_none_and_lists_them(api_client):
    user = UserFactory()
    ProfileFactory(user=user, role="clerk", instance__slug="acme", instance__name="Acme")
    ProfileFactory(user=user, role="accountant", instance__slug="globex", instance__name="Globex")

    response = login(api_client, user.email)

    assert response.status_code == 200
    claims = claims_of(response.json()["access"])
    assert (claims["instance"], claims["role"], claims["profile_role"]) == (None, "anonymous", "anonymous")
    assert response.json()["instances"] == [{"slug": "acme", "name": "Acme", "role": "clerk"},
                                            {"slug": "globex", "name": "Globex", "role": "accountant"}]


def test_super_admin_logs_in_without_an_instance(api_client):
    profile = ProfileFactory(role="super_admin", instance=None)

    claims = claims_of(login(api_client, profile.user.email).json()["access"])

    assert (claims["instance"], claims["role"]) == (None, "super_admin")


@pytest.mark.parametrize("case", ["wrong_password", "unknown_email", "not_a_member", "inactive"])
def test_failed_logins_all_answer_the_same_401(api_client, case):
    profile = ProfileFactory(role="clerk", instance__slug="acme")
    InstanceFactory(slug="globex")
    email, password, extra = profile.user.email, DEFAULT_PASSWORD, {}
    if case == "wrong_password":
        password = "wrong-password"
    elif case == "unknown_email":
        email = "nobody@example.com"
    elif case == "not_a_member":
        extra = {"instance": "globex"}
    else:
        User.objects.filter(pk=profile.user_id).update(is_active=False)

    response = login(api_client, email, password, **extra)

    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "invalid_credentials", "message": "Invalid credentials.", "fields": {}}}
    assert RefreshToken.objects.count() == 0


def test_failed_logins_are_throttled_per_account_even_with_the_right_password_after(api_client):
    profile = ProfileFactory(role="clerk")
    statuses = [login(api_client, profile.user.email, "wrong-password").status_code for _ in range(6)]

    assert statuses == [401, 401, 401, 401, 401, 429]
    blocked = login(api_client, profile.user.email)
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "throttled"


def test_failed_logins_are_throttled_per_address_across_accounts(api_client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "login_failures_account": "5/min", "login_failures_address": "3/min"}}

    statuses = [login(api_client, f"nobody{i}@example.com", "x").status_code for i in range(4)]

    assert statuses == [401, 401, 401, 429]


def test_successful_logins_are_not_throttled(api_client):
    profile = ProfileFactory(role="clerk")

    statuses = {login(api_client, profile.user.email).status_code for _ in range(12)}

    assert statuses == {200}


# --- refresh ------------------------------------------------------------------------------------

def test_refresh_rotates_and_the_old_token_is_dead(api_client):
    profile = ProfileFactory(role="clerk")
    first = login(api_client, profile.user.email).json()

    rotated = api_client.post("/api/v1/auth/token/refresh", {"refresh": first["refresh"]}, format="json")

    assert rotated.status_code == 200
    assert rotated.json()["refresh"] != first["refresh"]
    assert claims_of(rotated.json()["access"])["role"] == "clerk"
    parent, child = RefreshToken.objects.order_by("created_at")
    assert (child.parent_id, child.family) == (parent.pk, parent.family)
    assert parent.used_at is not None and child.used_at is None


def test_reusing_a_rotated_token_revokes_the_whole_family(api_client):
    profile = ProfileFactory(role="clerk")
    first = login(api_client, profile.user.email).json()
    second = api_client.post("/api/v1/auth/token/refresh", {"refresh": first["refresh"]}, format="json").json()

    reuse = api_client.post("/api/v1/auth/token/refresh", {"refresh": first["refresh"]}, format="json")

    assert reuse.status_code == 401
    assert reuse.json()["error"]["code"] == "token_reused"
    assert set(RefreshToken.objects.values_list("revoked_reason", flat=True)) == {"reuse_detected"}
    later = api_client.post("/api/v1/auth/token/refresh", {"refresh": second["refresh"]}, format="json")
    assert later.status_code == 401


def test_a_detected_reuse_writes_an_audit_entry_for_the_family_it_revoked(api_client):
    profile = ProfileFactory(role="clerk")
    first = login(api_client, profile.user.email).json()
    api_client.post("/api/v1/auth/token/refresh", {"refresh": first["refresh"]}, format="json")
    family = RefreshToken.objects.get(used_at__isnull=False).family

    api_client.post("/api/v1/auth/token/refresh", {"refresh": first["refresh"]}, format="json")

    entry = AuditEntry.objects.get(action=AuditAction.TOKEN_REVOCATION)
    assert entry.actor_id is None
    assert (entry.instance_id, entry.target_type, entry.target_id) == (
        profile.instance_id, "accounts.refreshtoken_family", str(family))
    assert entry.after == {"user_id": profile.user_id, "revoked": 2, "reason": "reuse_detected"}


def test_refresh_carries_the_current_profile_role(api_client):
    profile = ProfileFactory(role="clerk")
    first = login(api_client, profile.user.email).json()
    profile.role = "accountant"
    profile.save()

    rotated = api_client.post("/api/v1/auth/token/refresh", {"refresh": first["refresh"]}, format="json")

    assert claims_of(rotated.json()["access"])["role"] == "accountant"


def test_refresh_after_losing_the_profile_is_refused(api_client):
    profile = ProfileFactory(role="clerk")
    first = login(api_client, profile.user.email).json()
    profile.delete()

    response = api_client.post("/api/v1/auth/token/refresh", {"refresh": first["refresh"]}, format="json")

    assert response.status_code == 401


@pytest.mark.parametrize("refresh", ["not-a-token", "x" * 64])
def test_unknown_refresh_tokens_are_401(api_client, refresh):
    response = api_client.post("/api/v1/auth/token/refresh", {"refresh": refresh}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"


def test_expired_refresh_tokens_are_401(api_client):
    profile = ProfileFactory(role="clerk")
    first = login(api_client, profile.user.email).json()
    RefreshToken.objects.update(expires_at="2000-01-01T00:00:00Z")

    response = api_client.post("/api/v1/auth/token/refresh", {"refresh": first["refresh"]}, format="json")

    assert response.status_code == 401
    assert RefreshToken.objects.count() == 1


def test_refresh_without_a_body_is_a_400(api_client):
    assert api_client.post("/api/v1/auth/token/refresh", {}, format="json").status_code == 400


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_refreshes_of_one_token_give_exactly_one_200():
    profile = ProfileFactory(role="clerk")
    refresh = login(APIClient(), profile.user.email).json()["refresh"]
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt():
        try:
            barrier.wait()
            status = APIClient().post("/api/v1/auth/token/refresh", {"refresh": refresh}, format="json").status_code
            with lock:
                statuses.append(status)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] + [401] * 7
    assert RefreshToken.objects.filter(parent__isnull=False).count() == 1


# --- logout -------------------------------------------------------------------------------------

def test_logout_revokes_that_refresh_token_only(api_client):
    profile = ProfileFactory(role="clerk")
    first = login(api_client, profile.user.email).json()
    second = login(api_client, profile.user.email).json()

    response = api_client.post("/api/v1/auth/logout", {"refresh": first["refresh"]}, format="json")

    assert response.status_code == 204
    refresh_url = "/api/v1/auth/token/refresh"
    assert api_client.post(refresh_url, {"refresh": first["refresh"]}, format="json").status_code == 401
    assert api_client.post(refresh_url, {"refresh": second["refresh"]}, format="json").status_code == 200


def test_logout_with_an_unknown_token_is_401(api_client):
    assert api_client.post("/api/v1/auth/logout", {"refresh": "nope"}, format="json").status_code == 401


def test_logout_all_revokes_every_refresh_token_and_stops_live_access_tokens(api_client):
    profile = ProfileFactory(role="clerk")
    tokens = [login(api_client, profile.user.email).json() for _ in range(3)]
    earlier_access = access_token_issue(user_id=profile.user_id, instance=profile.instance, role="clerk",
                                        profile_role="clerk", now=time.time() - 5)
    assert bearer(earlier_access).get("/api/v1/me").status_code == 200

    response = bearer(tokens[0]["access"]).post("/api/v1/auth/logout-all")

    assert response.status_code == 204
    assert RefreshToken.objects.filter(revoked_at__isnull=True).count() == 0
    revoked = bearer(earlier_access).get("/api/v1/me")
    assert revoked.status_code == 401
    assert revoked.json()["error"]["code"] == "token_revoked"
    assert login(api_client, profile.user.email).status_code == 200


def test_logout_all_needs_an_access_token(api_client):
    response = api_client.post("/api/v1/auth/logout-all")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


# --- access tokens on requests ------------------------------------------------------------------

@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer not.a.token", "Bearer \u00e9t\u00e9"])
def test_malformed_bearer_headers_are_401(api_client, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)

    assert api_client.get("/api/v1/me").status_code == 401


def test_an_access_token_of_a_deactivated_user_is_401(api_client):
    profile = ProfileFactory(role="clerk")
    access = login(api_client, profile.user.email).json()["access"]
    User.objects.filter(pk=profile.user_id).update(is_active=False)
    from accounts import authentication

    authentication._user_cache.clear()  # what 0.5 s of waiting does

    assert bearer(access).get("/api/v1/me").status_code == 401


# --- switch -------------------------------------------------------------------------------------

def test_super_admin_switches_into_an_instance_as_instance_admin(api_client):
    admin = ProfileFactory(role="super_admin", instance=None)
    InstanceFactory(slug="acme")
    pair = login(api_client, admin.user.email).json()

    response = bearer(pair["access"]).post("/api/v1/auth/switch", {"refresh": pair["refresh"], "instance": "acme",
                                                                   "role": "instance_admin"}, format="json")

    assert response.status_code == 200
    claims = claims_of(response.json()["access"])
    assert (claims["instance"], claims["role"], claims["profile_role"]) == ("acme", "instance_admin", "super_admin")


def test_instance_admin_switches_down_within_the_instance(api_client):
    profile = ProfileFactory(role="instance_admin", instance__slug="acme")
    pair = login(api_client, profile.user.email).json()

    response = bearer(pair["access"]).post("/api/v1/auth/switch", {"refresh": pair["refresh"], "role": "accountant"},
                                           format="json")

    assert response.status_code == 200
    assert claims_of(response.json()["access"])["role"] == "accountant"


@pytest.mark.parametrize(("role", "instance"), [("clerk", None), ("instance_admin", None), ("super_admin", None),
                                                ("clerk", "globex"), ("clerk", "missing")])
def test_switches_against_the_lattice_or_into_foreign_instances_are_403(api_client, role, instance):
    profile = ProfileFactory(role="customer", instance__slug="acme")
    InstanceFactory(slug="globex")
    pair = login(api_client, profile.user.email).json()
    body = {"refresh": pair["refresh"], "role": role} | ({"instance": instance} if instance else {})

    response = bearer(pair["access"]).post("/api/v1/auth/switch", body, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "role_switch_denied"
    assert RefreshToken.objects.usable().count() == RefreshToken.objects.count() == 1


def test_switch_to_an_unknown_role_is_a_400(api_client):
    profile = ProfileFactory(role="instance_admin")
    pair = login(api_client, profile.user.email).json()

    response = bearer(pair["access"]).post("/api/v1/auth/switch", {"refresh": pair["refresh"], "role": "wizard"},
                                           format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "role_unknown"


def test_switch_needs_authentication(api_client):
    assert api_client.post("/api/v1/auth/switch", {"refresh": "x", "role": "clerk"}, format="json").status_code == 401


# --- switch needs the session's refresh token (issue 8, item 2) -------------------------------------

def token_rows() -> list[tuple[bool, bool, str]]:
    return [(t.used_at is not None, t.revoked_at is not None, t.revoked_reason)
            for t in RefreshToken.objects.order_by("created_at")]


def test_a_stolen_access_token_alone_cannot_switch_and_gets_nothing(api_client):
    profile = ProfileFactory(role="instance_admin", instance__slug="acme")
    pair = login(api_client, profile.user.email).json()

    response = bearer(pair["access"]).post("/api/v1/auth/switch", {"role": "accountant"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"refresh": ["This field is required."]}
    assert token_rows() == [(False, False, "")]


@pytest.mark.parametrize("whose", ["another user's", "made up"])
def test_a_refresh_token_that_is_not_the_callers_cannot_switch(api_client, whose):
    profile = ProfileFactory(role="instance_admin", instance__slug="acme")
    other = ProfileFactory(role="instance_admin", instance=profile.instance)
    pair = login(api_client, profile.user.email).json()
    other_refresh = login(api_client, other.user.email).json()["refresh"] if whose == "another user's" else "x" * 64

    response = bearer(pair["access"]).post("/api/v1/auth/switch", {"refresh": other_refresh, "role": "accountant"},
                                           format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"
    assert RefreshToken.objects.usable().count() == RefreshToken.objects.count()


def test_switch_rotates_the_presented_refresh_token_into_the_same_family(api_client):
    profile = ProfileFactory(role="instance_admin", instance__slug="acme")
    pair = login(api_client, profile.user.email).json()
    before = RefreshToken.objects.get()

    response = bearer(pair["access"]).post("/api/v1/auth/switch", {"refresh": pair["refresh"], "role": "accountant"},
                                           format="json")

    assert response.status_code == 200
    before.refresh_from_db()
    child = RefreshToken.objects.exclude(pk=before.pk).get()
    assert (before.used_at is not None, before.revoked_at) == (True, None)
    assert (child.family, child.parent_id, child.role, child.profile_role) == (
        before.family, before.pk, "accountant", "instance_admin")
    assert claims_of(response.json()["access"])["role"] == "accountant"
    again = api_client.post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert again.status_code == 401  # the presented token is used up


def test_reusing_the_refresh_token_a_switch_consumed_revokes_the_switched_session(api_client):
    profile = ProfileFactory(role="instance_admin", instance__slug="acme")
    pair = login(api_client, profile.user.email).json()
    switched = bearer(pair["access"]).post("/api/v1/auth/switch", {"refresh": pair["refresh"], "role": "accountant"},
                                           format="json").json()

    reused = api_client.post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    after = api_client.post("/api/v1/auth/token/refresh", {"refresh": switched["refresh"]}, format="json")

    assert reused.json()["error"]["code"] == "token_reused"
    assert after.status_code == 401
    assert token_rows() == [(True, True, "reuse_detected"), (False, True, "reuse_detected")]


def test_switching_to_the_role_already_held_is_refused_and_issues_nothing(api_client):
    profile = ProfileFactory(role="clerk", instance__slug="acme")
    pair = login(api_client, profile.user.email).json()

    response = bearer(pair["access"]).post("/api/v1/auth/switch", {"refresh": pair["refresh"], "role": "clerk"},
                                           format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "role_already_held"
    assert token_rows() == [(False, False, "")]  # nothing issued, and the presented token is still usable
    assert api_client.post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]},
                           format="json").status_code == 200


def test_a_denied_switch_leaves_the_presented_refresh_token_usable(api_client):
    profile = ProfileFactory(role="customer", instance__slug="acme")
    pair = login(api_client, profile.user.email).json()

    response = bearer(pair["access"]).post("/api/v1/auth/switch", {"refresh": pair["refresh"], "role": "clerk"},
                                           format="json")

    assert response.status_code == 403
    assert token_rows() == [(False, False, "")]


# --- refresh racing logout-all (issue 8, item 3) -----------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_fifty_refreshes_racing_one_logout_all_leave_no_usable_refresh_token():
    """50 threads, each with its own session and database connection, keep rotating their refresh token
    while one logout-all runs in the middle: every token a refresh made before or during it is revoked."""
    profile = ProfileFactory(role="clerk")
    pairs = [login(APIClient(), profile.user.email).json() for _ in range(50)]
    access = pairs[0]["access"]
    started = threading.Barrier(51)
    first_round = threading.Barrier(51)
    outcomes: list[str] = []
    lock = threading.Lock()

    def keep_refreshing(refresh: str) -> None:
        try:
            client = APIClient()
            started.wait()
            for round_ in range(20):
                response = client.post("/api/v1/auth/token/refresh", {"refresh": refresh}, format="json")
                if round_ == 0:
                    first_round.wait()  # the logout-all starts while the later rounds run
                if response.status_code != 200:
                    with lock:
                        outcomes.append(response.json()["error"]["code"])
                    return
                refresh = response.json()["refresh"]
            with lock:
                outcomes.append("still refreshing")
        finally:
            connection.close()

    threads = [threading.Thread(target=keep_refreshing, args=(pair["refresh"],)) for pair in pairs]
    for thread in threads:
        thread.start()
    try:
        started.wait()
        first_round.wait()
        assert bearer(access).post("/api/v1/auth/logout-all").status_code == 204
    finally:
        for thread in threads:
            thread.join()
        connection.close()

    assert RefreshToken.objects.filter(user=profile.user).usable().count() == 0
    assert "still refreshing" not in outcomes
    assert len(outcomes) == 50


# --- changing the password (issue 8, item 11) -------------------------------------------------------

NEW_PASSWORD = "a-brand-new-long-passphrase"


def test_changing_the_password_revokes_every_refresh_token_and_stops_access_tokens(
        api_client, django_capture_on_commit_callbacks):
    profile = ProfileFactory(role="clerk")
    first = login(api_client, profile.user.email).json()
    second = login(api_client, profile.user.email).json()
    assert bearer(second["access"]).get("/api/v1/me").status_code == 200  # the user is cached in this process

    with django_capture_on_commit_callbacks(execute=True):  # the commit drops the cached user
        response = bearer(first["access"]).post("/api/v1/me/password", {"current_password": DEFAULT_PASSWORD,
                                                                         "new_password": NEW_PASSWORD},
                                                format="json")

    assert response.status_code == 204
    assert [bearer(p["access"]).get("/api/v1/me").status_code for p in (first, second)] == [401, 401]
    assert RefreshToken.objects.usable().count() == 0
    assert set(RefreshToken.objects.values_list("revoked_reason", flat=True)) == {"password_changed"}
    assert login(api_client, profile.user.email).status_code == 401
    relogin = login(api_client, profile.user.email, password=NEW_PASSWORD)
    assert relogin.status_code == 200
    assert bearer(relogin.json()["access"]).get("/api/v1/me").status_code == 200


@pytest.mark.parametrize(("body", "code", "field"), [
    ({"current_password": "not-my-password", "new_password": NEW_PASSWORD}, "invalid_credentials",
     "current_password"),
    ({"current_password": DEFAULT_PASSWORD, "new_password": "short"}, "weak_password", "new_password"),
    ({"current_password": DEFAULT_PASSWORD}, "invalid", "new_password"),
])
def test_a_refused_password_change_is_a_400_and_changes_nothing(api_client, body, code, field):
    profile = ProfileFactory(role="clerk")
    pair = login(api_client, profile.user.email).json()
    stored_hash = User.objects.get().password

    response = bearer(pair["access"]).post("/api/v1/me/password", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert list(response.json()["error"]["fields"]) == [field]
    assert User.objects.get().password == stored_hash
    assert bearer(pair["access"]).get("/api/v1/me").status_code == 200
    assert RefreshToken.objects.usable().count() == 1


def test_wrong_current_passwords_are_throttled_like_logins(api_client, settings):
    profile = ProfileFactory(role="clerk")
    pair = login(api_client, profile.user.email).json()
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login_failures_account"].split("/")[0])
    body = {"current_password": "not-my-password", "new_password": NEW_PASSWORD}

    statuses = [bearer(pair["access"]).post("/api/v1/me/password", body, format="json").status_code
                for _ in range(limit + 1)]

    assert statuses == [400] * limit + [429]


def test_changing_the_password_needs_an_access_token(api_client):
    response = api_client.post("/api/v1/me/password", {"current_password": DEFAULT_PASSWORD,
                                                       "new_password": NEW_PASSWORD}, format="json")
    assert response.status_code == 401


def test_changepassword_command_revokes_the_users_tokens(api_client, monkeypatch):
    import getpass

    from django.core.management import call_command

    profile = ProfileFactory(role="clerk")
    pair = login(api_client, profile.user.email).json()
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": NEW_PASSWORD)

    call_command("changepassword", profile.user.email, stdout=__import__("io").StringIO())

    assert bearer(pair["access"]).get("/api/v1/me").status_code == 401
    assert RefreshToken.objects.usable().count() == 0


def test_a_hash_upgrade_at_login_is_not_a_password_change(api_client):
    from django.contrib.auth.hashers import make_password

    profile = ProfileFactory(role="clerk")
    pair = login(api_client, profile.user.email).json()
    User.objects.filter(pk=profile.user_id).update(password=make_password(DEFAULT_PASSWORD, hasher="pbkdf2_sha256"))

    assert login(api_client, profile.user.email).status_code == 200  # upgrades the hash to argon2

    assert User.objects.get().password.startswith("argon2$")
    assert bearer(pair["access"]).get("/api/v1/me").status_code == 200
    assert RefreshToken.objects.usable().count() == 2
