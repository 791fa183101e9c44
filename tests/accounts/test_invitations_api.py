"""Issue 8 item 8: adding a member is an invitation the holder of the email sees in ``/me`` and accepts or
declines; it expires, only the addressee can answer it, and the API never tells whether an account exists.
A login without ``instance`` by an account in several instances gets a token for no instance and the list."""

import threading
from datetime import timedelta

import jwt
import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Instance, Invitation, Profile, User
from tests.factories import DEFAULT_PASSWORD, InstanceFactory, ProfileFactory, UserFactory, context_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def as_user(user: User) -> APIClient:
    """A token for no instance, as a freshly registered user (or one in several instances) holds."""
    from authz.context import ActingContext

    client = APIClient()
    client.force_authenticate(user=user, token=ActingContext(user_id=user.pk, instance_id=None, instance_slug=None,
                                                             role="anonymous", profile_role="anonymous"))
    return client


def as_member(profile: Profile) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=profile.user, token=context_for(profile))
    return client


def login(email: str, **extra: str):
    return APIClient().post("/api/v1/auth/token", {"email": email, "password": DEFAULT_PASSWORD, **extra},
                            format="json")


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


@pytest.fixture
def acme() -> Instance:
    return InstanceFactory(slug="acme", name="Acme")


@pytest.fixture
def admin(acme) -> Profile:
    return ProfileFactory(instance=acme, role="instance_admin", user__email="admin@acme.test")


def invite(admin: Profile, email: str, role: str = "clerk") -> dict:
    response = as_member(admin).post(f"/api/v1/instances/{admin.instance.slug}/members",
                                     {"email": email, "role": role}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def roles_of(instance: Instance) -> dict[str, str]:
    return dict(Profile.objects.filter(instance=instance).values_list("user__email", "role"))


def test_the_invited_user_sees_the_invitation_in_me_accepts_it_and_logs_into_the_instance(acme, admin):
    invitation = invite(admin, "bob@example.com", "accountant")
    bob = UserFactory(email="bob@example.com")  # registers after the invitation: it waits for the account
    token = login("bob@example.com").json()["access"]

    me = bearer(token).get("/api/v1/me").json()
    accepted = bearer(token).post(f"/api/v1/invitations/{invitation['id']}/accept")
    me_after = bearer(token).get("/api/v1/me").json()
    into_acme = login("bob@example.com", instance="acme")
    members = bearer(into_acme.json()["access"]).get("/api/v1/instances/acme/members")

    assert me["invitations"] == [invitation]
    assert me["invitations"][0]["instance_name"] == "Acme"
    assert (accepted.status_code, accepted.json()) == (201, {"instance": "acme", "role": "accountant"})
    assert me_after["invitations"] == []
    assert me_after["profiles"] == [{"instance": "acme", "role": "accountant"}]
    assert jwt.decode(into_acme.json()["access"], options={"verify_signature": False})["role"] == "accountant"
    assert members.status_code == 200
    assert roles_of(acme) == {"admin@acme.test": "instance_admin", "bob@example.com": "accountant"}
    assert Invitation.objects.values_list("state", "responded_by").get() == ("accepted", bob.pk)


def test_another_user_cannot_accept_or_decline_it_nor_see_it(acme, admin):
    invitation = invite(admin, "bob@example.com")
    mallory = UserFactory(email="mallory@example.com")

    accepted = as_user(mallory).post(f"/api/v1/invitations/{invitation['id']}/accept")
    declined = as_user(mallory).post(f"/api/v1/invitations/{invitation['id']}/decline")
    missing = as_user(mallory).post("/api/v1/invitations/00000000-0000-0000-0000-000000000000/accept")
    me = as_user(mallory).get("/api/v1/me").json()

    not_found = {"error": {"code": "invitation_not_found", "message": "Invitation not found.", "fields": {}}}
    assert (accepted.status_code, accepted.json()) == (404, not_found)
    assert (declined.status_code, declined.json()) == (404, not_found)
    assert (missing.status_code, missing.json()) == (404, not_found)
    assert me["invitations"] == []
    assert roles_of(acme) == {"admin@acme.test": "instance_admin"}
    assert Invitation.objects.get().state == "pending"


def test_the_admin_who_invited_cannot_accept_it_for_the_invitee(acme, admin):
    invitation = invite(admin, "bob@example.com")

    response = as_member(admin).post(f"/api/v1/invitations/{invitation['id']}/accept")

    assert response.status_code == 404
    assert roles_of(acme) == {"admin@acme.test": "instance_admin"}


def test_emails_match_after_normalisation(acme, admin):
    invitation = invite(admin, "  Bob@Ｅxample.COM ")  # a full-width E, mixed case, spaces
    bob = UserFactory(email="bob@example.com")

    me = as_user(bob).get("/api/v1/me").json()
    accepted = as_user(bob).post(f"/api/v1/invitations/{invitation['id']}/accept")

    assert invitation["email"] == "bob@example.com"
    assert [row["id"] for row in me["invitations"]] == [invitation["id"]]
    assert accepted.status_code == 201


def test_an_expired_invitation_cannot_be_accepted_and_is_not_shown(acme, admin, settings):
    invitation = invite(admin, "bob@example.com")
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    bob = UserFactory(email="bob@example.com")

    me = as_user(bob).get("/api/v1/me").json()
    response = as_user(bob).post(f"/api/v1/invitations/{invitation['id']}/accept")

    assert me["invitations"] == []
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invitation_expired"
    assert roles_of(acme) == {"admin@acme.test": "instance_admin"}


def test_invitations_expire_after_the_configured_lifetime(acme, admin, settings):
    settings.INVITATION_LIFETIME = timedelta(days=3)
    before = timezone.now()

    invite(admin, "bob@example.com")

    invitation = Invitation.objects.get()
    assert before + timedelta(days=3) <= invitation.expires_at <= timezone.now() + timedelta(days=3)


def test_a_declined_invitation_cannot_be_accepted_afterwards(acme, admin):
    invitation = invite(admin, "bob@example.com")
    bob = UserFactory(email="bob@example.com")

    declined = as_user(bob).post(f"/api/v1/invitations/{invitation['id']}/decline")
    accepted = as_user(bob).post(f"/api/v1/invitations/{invitation['id']}/accept")
    again = as_user(bob).post(f"/api/v1/invitations/{invitation['id']}/decline")

    assert declined.status_code == 204
    assert (accepted.status_code, accepted.json()["error"]["code"]) == (400, "invitation_not_pending")
    assert (again.status_code, again.json()["error"]["code"]) == (400, "invitation_not_pending")
    assert Invitation.objects.get().state == "declined"
    assert roles_of(acme) == {"admin@acme.test": "instance_admin"}


def test_an_accepted_invitation_cannot_be_accepted_twice(acme, admin):
    invitation = invite(admin, "bob@example.com")
    bob = UserFactory(email="bob@example.com")

    first = as_user(bob).post(f"/api/v1/invitations/{invitation['id']}/accept")
    second = as_user(bob).post(f"/api/v1/invitations/{invitation['id']}/accept")

    assert first.status_code == 201
    assert (second.status_code, second.json()["error"]["code"]) == (400, "invitation_not_pending")
    assert Profile.objects.filter(user=bob, instance=acme).count() == 1


def test_re_inviting_renews_the_pending_invitation(acme, admin):
    first = invite(admin, "bob@example.com", "customer")
    Invitation.objects.update(expires_at=timezone.now() - timedelta(days=1))

    second = invite(admin, "BOB@example.com", "clerk")

    assert second["id"] == first["id"]
    assert list(Invitation.objects.values_list("email", "role", "state")) == [("bob@example.com", "clerk", "pending")]
    assert Invitation.objects.get().expires_at > timezone.now()


def test_inviting_a_current_member_is_refused(acme, admin):
    ProfileFactory(instance=acme, role="clerk", user__email="clerk@acme.test")

    response = as_member(admin).post("/api/v1/instances/acme/members", {"email": "Clerk@Acme.test", "role": "clerk"},
                                     format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "member_exists"
    assert not Invitation.objects.exists()


def test_a_user_who_became_a_member_meanwhile_cannot_accept(acme, admin):
    invitation = invite(admin, "bob@example.com", "accountant")
    bob = ProfileFactory(instance=acme, role="customer", user__email="bob@example.com").user

    response = as_user(bob).post(f"/api/v1/invitations/{invitation['id']}/accept")

    assert (response.status_code, response.json()["error"]["code"]) == (400, "member_exists")
    assert roles_of(acme)["bob@example.com"] == "customer"


def test_an_invitation_to_a_deactivated_instance_is_not_found(acme, admin):
    invitation = invite(admin, "bob@example.com")
    bob = UserFactory(email="bob@example.com")
    Instance.objects.filter(pk=acme.pk).update(is_active=False)

    response = as_user(bob).post(f"/api/v1/invitations/{invitation['id']}/accept")

    assert response.status_code == 404
    assert not Profile.objects.filter(user=bob).exists()


@pytest.mark.parametrize("path", ["not-a-uuid/accept", "1/decline"])
def test_a_malformed_invitation_id_is_a_json_404(acme, path):
    response = as_user(UserFactory()).post(f"/api/v1/invitations/{path}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_answering_needs_authentication(acme, admin):
    invitation = invite(admin, "bob@example.com")

    response = APIClient().post(f"/api/v1/invitations/{invitation['id']}/accept")

    assert response.status_code == 401
    assert Invitation.objects.get().state == "pending"


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_accepts_make_one_profile():
    acme = InstanceFactory(slug="acme")
    admin = ProfileFactory(instance=acme, role="instance_admin")
    invitation = invite(admin, "bob@example.com")
    bob = UserFactory(email="bob@example.com")
    barrier = threading.Barrier(4)
    codes: list[int] = []

    def accept() -> None:
        try:
            barrier.wait()
            codes.append(as_user(bob).post(f"/api/v1/invitations/{invitation['id']}/accept").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(codes) == [201, 400, 400, 400]
    assert Profile.objects.filter(user=bob, instance=acme).count() == 1


# --- login without an instance -------------------------------------------------------------------------

def test_an_account_in_several_instances_gets_a_token_for_no_instance_and_the_list(acme):
    globex = InstanceFactory(slug="globex", name="Globex")
    user = ProfileFactory(instance=acme, role="clerk", user__email="two@example.com").user
    ProfileFactory(user=user, instance=globex, role="customer")
    ProfileFactory(user=user, instance=InstanceFactory(slug="closed", is_active=False), role="customer")

    response = login("two@example.com")

    assert response.status_code == 200
    body = response.json()
    claims = jwt.decode(body["access"], options={"verify_signature": False})
    assert (claims["instance"], claims["role"]) == (None, "anonymous")
    assert body["instances"] == [{"slug": "acme", "name": "Acme", "role": "clerk"},
                                 {"slug": "globex", "name": "Globex", "role": "customer"}]
    members = bearer(body["access"]).get("/api/v1/instances/acme/members")
    assert (members.status_code, members.json()["error"]["code"]) == (403, "instance_token_required")


# --- the instance's own view: list and withdraw -------------------------------------------------------------

def test_an_admin_lists_and_withdraws_pending_invitations(acme, admin):
    bob = invite(admin, "bob@example.com")
    invite(admin, "carol@example.com", "customer")
    Invitation.objects.filter(email="carol@example.com").update(expires_at=timezone.now() - timedelta(seconds=1))
    answered = invite(admin, "dave@example.com")
    as_user(UserFactory(email="dave@example.com")).post(f"/api/v1/invitations/{answered['id']}/decline")

    listed = as_member(admin).get("/api/v1/instances/acme/invitations")
    withdrawn = as_member(admin).delete(f"/api/v1/instances/acme/invitations/{bob['id']}")
    again = as_member(admin).delete(f"/api/v1/instances/acme/invitations/{bob['id']}")
    declined = as_member(admin).delete(f"/api/v1/instances/acme/invitations/{answered['id']}")
    accept = as_user(UserFactory(email="bob@example.com")).post(f"/api/v1/invitations/{bob['id']}/accept")

    assert listed.status_code == 200
    assert [(row["email"], row["state"]) for row in listed.json()["results"]] == [
        ("carol@example.com", "expired"), ("bob@example.com", "pending")]
    assert withdrawn.status_code == 204
    assert (again.status_code, again.json()["error"]["code"]) == (404, "invitation_not_found")
    assert (declined.status_code, declined.json()["error"]["code"]) == (404, "invitation_not_found")
    assert accept.status_code == 404
    assert sorted(Invitation.objects.values_list("email", "state")) == [
        ("carol@example.com", "pending"), ("dave@example.com", "declined")]


@pytest.mark.parametrize("role", ["clerk", "accountant", "customer"])
def test_only_an_admin_sees_or_withdraws_invitations(acme, admin, role):
    invitation = invite(admin, "bob@example.com")
    member = ProfileFactory(instance=acme, role=role)

    listed = as_member(member).get("/api/v1/instances/acme/invitations")
    withdrawn = as_member(member).delete(f"/api/v1/instances/acme/invitations/{invitation['id']}")

    assert (listed.status_code, listed.json()["error"]["code"]) == (403, "role_required")
    assert (withdrawn.status_code, withdrawn.json()["error"]["code"]) == (403, "role_required")
    assert Invitation.objects.get().state == "pending"


def test_another_instances_admin_cannot_see_or_withdraw_them(acme, admin):
    invitation = invite(admin, "bob@example.com")
    globex_admin = ProfileFactory(instance=InstanceFactory(slug="globex"), role="instance_admin")

    listed = as_member(globex_admin).get("/api/v1/instances/acme/invitations")
    through_own = as_member(globex_admin).delete(f"/api/v1/instances/globex/invitations/{invitation['id']}")

    assert listed.status_code == 404
    assert (through_own.status_code, through_own.json()["error"]["code"]) == (404, "invitation_not_found")
    assert Invitation.objects.get().state == "pending"
