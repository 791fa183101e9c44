import secrets
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

import authz.roles
from accounts.models import Instance, Invitation, Profile, RefreshToken
from authz.context import ActingContext
from authz.roles import Role, RoleLattice
from tests.factories import InstanceFactory, ProfileFactory, UserFactory, context_for

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": {"code": "instance_not_found", "message": "Instance not found.", "fields": {}}}


def TOKEN_REQUIRED(slug: str) -> dict:  # noqa: N802 - reads like the constant above
    return {"error": {"code": "instance_token_required", "fields": {}, "message": (
        "This token does not act for the instance; get a token for it: POST /api/v1/auth/token with "
        f'"instance": "{slug}", or POST /api/v1/auth/switch.')}}

# The default lattice has nothing above instance_admin inside an instance; this one adds an "owner".
OWNER_LATTICE = RoleLattice([
    Role("super_admin", instance_bound=False, switches_to=("owner",), spans_instances=True),
    Role("owner", instance_bound=True, implies=("instance_admin",)),
    Role("instance_admin", instance_bound=True, implies=("clerk", "accountant")),
    Role("clerk", instance_bound=True, implies=("customer",)),
    Role("accountant", instance_bound=True, implies=("customer",)),
    Role("customer", instance_bound=True, implies=("anonymous",)),
    Role("anonymous", instance_bound=False),
])


@pytest.fixture
def owner_lattice(monkeypatch):
    monkeypatch.setattr(authz.roles, "LATTICE", OWNER_LATTICE)


def as_(client: APIClient, profile: Profile, role: str | None = None) -> APIClient:
    client.force_authenticate(user=profile.user, token=context_for(profile, role=role))
    return client


def switched_super_admin(client: APIClient, instance: Instance, *, role: str = "instance_admin") -> Profile:
    operator = ProfileFactory(instance=None, role="super_admin")
    ctx = ActingContext(user_id=operator.user_id, instance_id=instance.pk, instance_slug=instance.slug,
                        role=role, profile_role="super_admin")
    client.force_authenticate(user=operator.user, token=ctx)
    return operator


def refresh_token(profile: Profile) -> RefreshToken:
    now = timezone.now()
    return RefreshToken.objects.create(
        user=profile.user, instance=profile.instance, role=profile.role, profile_role=profile.role,
        family=uuid.uuid4(), token_hash=secrets.token_hex(32), expires_at=now + timedelta(days=1))


def roles_of(instance: Instance) -> dict[str, str]:
    return dict(Profile.objects.filter(instance=instance).values_list("user__email", "role"))


@pytest.fixture
def acme():
    return InstanceFactory(slug="acme", name="Acme")


@pytest.fixture
def globex():
    return InstanceFactory(slug="globex", name="Globex")


@pytest.fixture
def admin(acme):
    return ProfileFactory(instance=acme, role="instance_admin", user__email="admin@acme.test")


@pytest.fixture
def clerk(acme):
    return ProfileFactory(instance=acme, role="clerk", user__email="clerk@acme.test")


@pytest.fixture
def outsider(globex):
    return ProfileFactory(instance=globex, role="customer", user__email="customer@globex.test")


# --- POST instances ---------------------------------------------------------------------------------

def test_create_instance_makes_the_creator_its_instance_admin(api_client):
    creator = UserFactory()
    api_client.force_authenticate(user=creator)

    response = api_client.post("/api/v1/instances", {"slug": "initech", "name": "Initech"}, format="json")

    assert response.status_code == 201
    assert response.json() == {"slug": "initech", "name": "Initech", "is_active": True}
    instance = Instance.objects.get(slug="initech")
    assert list(Profile.objects.filter(instance=instance).values_list("user_id", "role")) == [
        (creator.pk, "instance_admin")]


def test_create_instance_with_a_taken_slug_is_a_field_error(api_client, acme):
    creator = UserFactory()
    api_client.force_authenticate(user=creator)

    response = api_client.post("/api/v1/instances", {"slug": "acme", "name": "Another"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"error": {
        "code": "instance_slug_taken", "message": "An instance with this slug already exists.",
        "fields": {"slug": ["An instance with this slug already exists."]}}}
    assert list(Instance.objects.values_list("slug", "name")) == [("acme", "Acme")]
    assert not Profile.objects.filter(user=creator).exists()


@pytest.mark.parametrize("slug", ["Acme", "-acme", "acme-", "ac_me", "ac me", "a" * 64, "acmé", "a.b"])
def test_create_instance_with_a_bad_slug_is_a_field_error(api_client, slug):
    api_client.force_authenticate(user=UserFactory())

    response = api_client.post("/api/v1/instances", {"slug": slug, "name": "Bad"}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] in {"instance_slug_invalid", "invalid"}
    assert list(error["fields"]) == ["slug"]
    assert Instance.objects.count() == 0
    assert Profile.objects.count() == 0


def test_create_instance_with_a_lowercase_slug_error_names_the_rule(api_client):
    api_client.force_authenticate(user=UserFactory())

    response = api_client.post("/api/v1/instances", {"slug": "Acme", "name": "Bad"}, format="json")

    assert response.json() == {"error": {
        "code": "instance_slug_invalid",
        "message": "A slug is 1 to 63 lower-case letters, digits and inner hyphens.",
        "fields": {"slug": ["A slug is 1 to 63 lower-case letters, digits and inner hyphens."]}}}


@pytest.mark.parametrize(("body", "fields"), [
    ({}, ["slug", "name"]),
    ({"slug": "ok"}, ["name"]),
    ({"slug": "ok", "name": ""}, ["name"]),
    ({"slug": "ok", "name": "   "}, ["name"]),
    ({"slug": ["ok"], "name": "Ok"}, ["slug"]),
])
def test_create_instance_with_missing_fields_is_a_400(api_client, body, fields):
    api_client.force_authenticate(user=UserFactory())

    response = api_client.post("/api/v1/instances", body, format="json")

    assert response.status_code == 400
    assert sorted(response.json()["error"]["fields"]) == sorted(fields)
    assert Instance.objects.count() == 0


def test_create_instance_needs_authentication(api_client):
    response = api_client.post("/api/v1/instances", {"slug": "initech", "name": "Initech"}, format="json")

    assert response.status_code == 401
    assert Instance.objects.count() == 0


def test_create_instance_with_malformed_json_is_a_400(api_client):
    api_client.force_authenticate(user=UserFactory())

    response = api_client.post("/api/v1/instances", "{nope", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert Instance.objects.count() == 0


# --- GET instances ----------------------------------------------------------------------------------

def test_list_instances_shows_only_the_callers(api_client, acme, globex, django_assert_num_queries):
    user = UserFactory()
    zulu = InstanceFactory(slug="zulu", name="Zulu", is_active=False)
    ProfileFactory(user=user, instance=zulu, role="customer")
    ProfileFactory(user=user, instance=acme, role="clerk")
    ProfileFactory(instance=globex, role="instance_admin")
    api_client.force_authenticate(user=user)

    with django_assert_num_queries(3):
        response = api_client.get("/api/v1/instances")

    assert response.status_code == 200
    assert response.json() == {"count": 2, "next": None, "previous": None, "results": [
        {"slug": "acme", "name": "Acme", "is_active": True},
        {"slug": "zulu", "name": "Zulu", "is_active": False},
    ]}


def test_list_instances_of_a_user_without_profiles_is_empty(api_client, acme):
    api_client.force_authenticate(user=UserFactory())

    response = api_client.get("/api/v1/instances")

    assert response.json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_a_super_admin_profile_lists_every_instance(api_client, acme, globex, django_assert_num_queries):
    operator = ProfileFactory(instance=None, role="super_admin")
    api_client.force_authenticate(user=operator.user, token=context_for(operator))

    with django_assert_num_queries(3):
        response = api_client.get("/api/v1/instances")

    assert [row["slug"] for row in response.json()["results"]] == ["acme", "globex"]
    assert response.json()["count"] == 2


def test_list_instances_is_paginated(api_client, acme, globex):
    operator = ProfileFactory(instance=None, role="super_admin")
    api_client.force_authenticate(user=operator.user)

    response = api_client.get("/api/v1/instances?limit=1&offset=1")

    body = response.json()
    assert body["count"] == 2
    assert body["results"] == [{"slug": "globex", "name": "Globex", "is_active": True}]
    assert body["next"] is None
    assert body["previous"] == "http://testserver/api/v1/instances?limit=1"


def test_list_instances_needs_authentication(api_client, acme):
    assert api_client.get("/api/v1/instances").status_code == 401


# --- GET instances/{slug}/members -------------------------------------------------------------------

def test_members_lists_only_that_instance(api_client, admin, clerk, outsider, django_assert_num_queries):
    as_(api_client, clerk)

    with django_assert_num_queries(4):  # instance, caller's profile, count, page
        response = api_client.get("/api/v1/instances/acme/members")

    assert response.status_code == 200
    assert response.json() == {"count": 2, "next": None, "previous": None, "results": [
        {"user_id": admin.user_id, "email": "admin@acme.test", "role": "instance_admin"},
        {"user_id": clerk.user_id, "email": "clerk@acme.test", "role": "clerk"},
    ]}


def test_a_customer_may_list_members(api_client, admin, acme):
    customer = ProfileFactory(instance=acme, role="customer")

    response = as_(api_client, customer).get("/api/v1/instances/acme/members")

    assert response.status_code == 200
    assert response.json()["count"] == 2


def test_members_of_a_foreign_instance_answer_like_a_missing_one(api_client, admin, outsider):
    as_(api_client, admin)

    foreign = api_client.get("/api/v1/instances/globex/members")
    missing = api_client.get("/api/v1/instances/nope/members")

    assert (foreign.status_code, foreign.json()) == (404, NOT_FOUND)
    assert (missing.status_code, missing.json()) == (404, NOT_FOUND)


def test_a_member_of_two_instances_acts_only_for_the_one_in_the_token(api_client, admin, globex):
    ProfileFactory(user=admin.user, instance=globex, role="instance_admin")

    response = as_(api_client, admin).get("/api/v1/instances/globex/members")

    assert (response.status_code, response.json()) == (403, TOKEN_REQUIRED("globex"))


def test_members_of_an_inactive_instance_are_not_found(api_client, admin, acme):
    Instance.objects.filter(pk=acme.pk).update(is_active=False)

    response = as_(api_client, admin).get("/api/v1/instances/acme/members")

    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_a_token_for_an_instance_the_user_left_is_not_found(api_client, admin, clerk):
    ctx = context_for(clerk)
    clerk.delete()
    api_client.force_authenticate(user=clerk.user, token=ctx)

    response = api_client.get("/api/v1/instances/acme/members")

    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_a_super_admin_switched_in_lists_members(api_client, admin, acme):
    switched_super_admin(api_client, acme)

    response = api_client.get("/api/v1/instances/acme/members")

    assert response.status_code == 200
    assert [row["email"] for row in response.json()["results"]] == ["admin@acme.test"]


def test_a_super_admin_must_switch_in_first(api_client, admin, acme):
    operator = ProfileFactory(instance=None, role="super_admin")
    as_(api_client, operator)

    response = api_client.get("/api/v1/instances/acme/members")
    missing = api_client.get("/api/v1/instances/nope/members")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "role_switch_required"
    assert (missing.status_code, missing.json()) == (404, NOT_FOUND)


def test_a_forged_super_admin_token_without_the_profile_is_not_found(api_client, admin, acme):
    user = UserFactory()
    api_client.force_authenticate(user=user, token=ActingContext(
        user_id=user.pk, instance_id=acme.pk, instance_slug="acme", role="instance_admin",
        profile_role="super_admin"))

    response = api_client.get("/api/v1/instances/acme/members")

    assert (response.status_code, response.json()) == (404, NOT_FOUND)


def test_the_instances_admin_with_a_token_for_no_instance_is_told_to_get_one(api_client, admin):
    api_client.force_authenticate(user=admin.user, token=ActingContext(
        user_id=admin.user_id, instance_id=None, instance_slug=None, role="anonymous", profile_role="anonymous"))

    response = api_client.get("/api/v1/instances/acme/members")

    assert (response.status_code, response.json()) == (403, TOKEN_REQUIRED("acme"))


def test_members_needs_authentication(api_client, admin):
    assert api_client.get("/api/v1/instances/acme/members").status_code == 401


# --- POST instances/{slug}/members ------------------------------------------------------------------

def invitation_body(invitation: Invitation) -> dict:
    return {"id": str(invitation.pk), "instance": invitation.instance.slug, "instance_name": invitation.instance.name,
            "email": invitation.email, "role": invitation.role, "state": "pending",
            "created_at": invitation.created_at.isoformat().replace("+00:00", "Z"),
            "expires_at": invitation.expires_at.isoformat().replace("+00:00", "Z")}


def invitations_of(instance: Instance) -> list[tuple[str, str, str]]:
    return sorted(Invitation.objects.filter(instance=instance).values_list("email", "role", "state"))


@pytest.mark.parametrize("role", ["instance_admin", "clerk", "accountant", "customer"])
def test_an_admin_invites_an_existing_user_in_any_instance_role(api_client, admin, role):
    UserFactory(email="new@example.com")

    response = as_(api_client, admin).post("/api/v1/instances/acme/members",
                                           {"email": "New@Example.com", "role": role}, format="json")

    assert response.status_code == 201
    assert response.json() == invitation_body(Invitation.objects.get())
    assert invitations_of(admin.instance) == [("new@example.com", role, "pending")]
    assert roles_of(admin.instance) == {"admin@acme.test": "instance_admin"}  # a member once they accept


def test_a_member_of_another_instance_may_be_invited_too(api_client, admin, outsider):
    response = as_(api_client, admin).post("/api/v1/instances/acme/members",
                                           {"email": "customer@globex.test", "role": "clerk"}, format="json")
    accepted = as_(APIClient(), outsider).post(f"/api/v1/invitations/{response.json()['id']}/accept")

    assert response.status_code == 201
    assert (accepted.status_code, accepted.json()) == (201, {"instance": "acme", "role": "clerk"})
    assert roles_of(outsider.instance) == {"customer@globex.test": "customer"}
    assert roles_of(admin.instance)["customer@globex.test"] == "clerk"


@pytest.mark.parametrize("email", ["ghost@example.com", "gone@example.com", "taken@example.com"])
def test_inviting_answers_the_same_whether_or_not_an_account_holds_the_email(api_client, admin, email):
    UserFactory(email="gone@example.com", is_active=False)
    UserFactory(email="taken@example.com")

    response = as_(api_client, admin).post("/api/v1/instances/acme/members", {"email": email, "role": "clerk"},
                                           format="json")

    assert response.status_code == 201
    assert response.json() == invitation_body(Invitation.objects.get())
    assert invitations_of(admin.instance) == [(email, "clerk", "pending")]
    assert roles_of(admin.instance) == {"admin@acme.test": "instance_admin"}


def test_adding_an_existing_member_is_a_400(api_client, admin, clerk):
    response = as_(api_client, admin).post("/api/v1/instances/acme/members",
                                           {"email": "clerk@acme.test", "role": "accountant"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"error": {"code": "member_exists",
                                         "message": "This user is already a member of the instance.",
                                         "fields": {"email": ["Already a member of this instance."]}}}
    assert roles_of(admin.instance) == {"admin@acme.test": "instance_admin", "clerk@acme.test": "clerk"}


def test_adding_with_an_unknown_role_names_it(api_client, admin):
    UserFactory(email="new@example.com")

    response = as_(api_client, admin).post("/api/v1/instances/acme/members",
                                           {"email": "new@example.com", "role": "janitor"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"error": {"code": "role_unknown", "message": "Unknown role 'janitor'.",
                                         "fields": {"role": ["Unknown role 'janitor'."]}}}
    assert roles_of(admin.instance) == {"admin@acme.test": "instance_admin"}


@pytest.mark.parametrize("role", ["super_admin", "anonymous"])
def test_adding_with_a_role_not_bound_to_an_instance_is_a_400(api_client, admin, role):
    UserFactory(email="new@example.com")

    response = as_(api_client, admin).post("/api/v1/instances/acme/members",
                                           {"email": "new@example.com", "role": role}, format="json")

    assert response.status_code == 400
    assert response.json() == {"error": {
        "code": "role_not_instance_bound", "message": f"Role {role!r} is not bound to an instance.",
        "fields": {"role": [f"Role {role!r} is not bound to an instance."]}}}
    assert roles_of(admin.instance) == {"admin@acme.test": "instance_admin"}


@pytest.mark.parametrize(("body", "fields"), [
    ({}, ["email", "role"]),
    ({"email": "not-an-email", "role": "clerk"}, ["email"]),
    ({"email": "new@example.com"}, ["role"]),
    ({"email": "new@example.com", "role": ""}, ["role"]),
    ({"email": "new@example.com", "role": "x" * 65}, ["role"]),
])
def test_adding_with_bad_input_is_a_400(api_client, admin, body, fields):
    UserFactory(email="new@example.com")

    response = as_(api_client, admin).post("/api/v1/instances/acme/members", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert sorted(response.json()["error"]["fields"]) == sorted(fields)
    assert roles_of(admin.instance) == {"admin@acme.test": "instance_admin"}


@pytest.mark.parametrize("caller_role", ["clerk", "accountant", "customer"])
def test_only_an_instance_admin_adds_members(api_client, acme, caller_role):
    caller = ProfileFactory(instance=acme, role=caller_role, user__email="caller@acme.test")
    UserFactory(email="new@example.com")

    response = as_(api_client, caller).post("/api/v1/instances/acme/members",
                                            {"email": "new@example.com", "role": "customer"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "role_required"
    assert roles_of(acme) == {"caller@acme.test": caller_role}


def test_an_admin_acting_as_clerk_cannot_add_members(api_client, admin):
    UserFactory(email="new@example.com")

    response = as_(api_client, admin, role="clerk").post(
        "/api/v1/instances/acme/members", {"email": "new@example.com", "role": "customer"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "role_required"
    assert roles_of(admin.instance) == {"admin@acme.test": "instance_admin"}


def test_a_demoted_admin_with_an_old_token_is_refused(api_client, admin, acme):
    ctx = context_for(admin)
    ProfileFactory(instance=acme, role="instance_admin", user__email="other@acme.test")
    Profile.objects.filter(pk=admin.pk).update(role="clerk")
    UserFactory(email="new@example.com")
    api_client.force_authenticate(user=admin.user, token=ctx)

    response = api_client.post("/api/v1/instances/acme/members",
                               {"email": "new@example.com", "role": "customer"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "role_stale"
    assert roles_of(acme) == {"admin@acme.test": "clerk", "other@acme.test": "instance_admin"}


def test_adding_to_a_foreign_instance_is_not_found(api_client, admin, outsider):
    UserFactory(email="new@example.com")

    response = as_(api_client, admin).post("/api/v1/instances/globex/members",
                                           {"email": "new@example.com", "role": "customer"}, format="json")

    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert roles_of(outsider.instance) == {"customer@globex.test": "customer"}


def test_a_switched_super_admin_invites_members(api_client, admin, acme):
    UserFactory(email="new@example.com")
    operator = switched_super_admin(api_client, acme)

    response = api_client.post("/api/v1/instances/acme/members",
                               {"email": "new@example.com", "role": "instance_admin"}, format="json")

    assert response.status_code == 201
    assert response.json() == invitation_body(Invitation.objects.get(invited_by=operator.user))
    assert invitations_of(acme) == [("new@example.com", "instance_admin", "pending")]


def test_an_unswitched_super_admin_cannot_add_members(api_client, admin, acme):
    UserFactory(email="new@example.com")
    as_(api_client, ProfileFactory(instance=None, role="super_admin"))

    response = api_client.post("/api/v1/instances/acme/members",
                               {"email": "new@example.com", "role": "customer"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "role_switch_required"
    assert roles_of(acme) == {"admin@acme.test": "instance_admin"}


def test_granting_a_role_above_the_callers_is_forbidden(api_client, admin, owner_lattice):
    UserFactory(email="new@example.com")

    response = as_(api_client, admin).post("/api/v1/instances/acme/members",
                                           {"email": "new@example.com", "role": "owner"}, format="json")

    assert response.status_code == 403
    assert response.json() == {"error": {
        "code": "role_above_caller", "message": "You cannot grant 'owner', which is above your role 'instance_admin'.",
        "fields": {}}}
    assert roles_of(admin.instance) == {"admin@acme.test": "instance_admin"}


def test_an_owner_may_grant_owner(api_client, acme, owner_lattice):
    owner = ProfileFactory(instance=acme, role="owner")
    UserFactory(email="new@example.com")

    response = as_(api_client, owner).post("/api/v1/instances/acme/members",
                                           {"email": "new@example.com", "role": "owner"}, format="json")

    assert response.status_code == 201
    assert response.json()["role"] == "owner"


# --- PATCH instances/{slug}/members/{user_id} -------------------------------------------------------

def test_changing_a_role_revokes_that_members_tokens_for_the_instance_only(api_client, admin, clerk, globex):
    clerk_in_globex = ProfileFactory(user=clerk.user, instance=globex, role="clerk")
    acme_token, globex_token, admin_token = refresh_token(clerk), refresh_token(clerk_in_globex), refresh_token(admin)

    response = as_(api_client, admin).patch(f"/api/v1/instances/acme/members/{clerk.user_id}",
                                            {"role": "accountant"}, format="json")

    assert response.status_code == 200
    assert response.json() == {"user_id": clerk.user_id, "email": "clerk@acme.test", "role": "accountant"}
    assert roles_of(admin.instance) == {"admin@acme.test": "instance_admin", "clerk@acme.test": "accountant"}
    assert roles_of(globex) == {"clerk@acme.test": "clerk"}
    acme_token.refresh_from_db()
    globex_token.refresh_from_db()
    admin_token.refresh_from_db()
    assert acme_token.revoked_at is not None
    assert acme_token.revoked_reason == "role_changed"
    assert (globex_token.revoked_at, admin_token.revoked_at) == (None, None)


def test_changing_to_the_same_role_changes_nothing(api_client, admin, clerk):
    token = refresh_token(clerk)

    response = as_(api_client, admin).patch(f"/api/v1/instances/acme/members/{clerk.user_id}",
                                            {"role": "clerk"}, format="json")

    assert response.status_code == 200
    assert response.json()["role"] == "clerk"
    token.refresh_from_db()
    assert token.revoked_at is None


def test_changing_a_member_of_another_instance_is_not_found(api_client, admin, outsider):
    response = as_(api_client, admin).patch(f"/api/v1/instances/acme/members/{outsider.user_id}",
                                            {"role": "clerk"}, format="json")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "member_not_found", "message": "Member not found.", "fields": {}}}
    assert roles_of(outsider.instance) == {"customer@globex.test": "customer"}
    assert roles_of(admin.instance) == {"admin@acme.test": "instance_admin"}


def test_changing_an_unknown_user_is_not_found(api_client, admin):
    response = as_(api_client, admin).patch("/api/v1/instances/acme/members/999999999",
                                            {"role": "clerk"}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "member_not_found"


def test_changing_a_member_through_a_foreign_instance_is_not_found(api_client, admin, outsider):
    token = refresh_token(outsider)

    response = as_(api_client, admin).patch(f"/api/v1/instances/globex/members/{outsider.user_id}",
                                            {"role": "clerk"}, format="json")

    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert roles_of(outsider.instance) == {"customer@globex.test": "customer"}
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.parametrize("caller_role", ["clerk", "accountant", "customer"])
def test_only_an_instance_admin_changes_roles(api_client, admin, acme, caller_role):
    caller = ProfileFactory(instance=acme, role=caller_role, user__email="caller@acme.test")

    response = as_(api_client, caller).patch(f"/api/v1/instances/acme/members/{admin.user_id}",
                                             {"role": "customer"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "role_required"
    assert roles_of(acme) == {"admin@acme.test": "instance_admin", "caller@acme.test": caller_role}


@pytest.mark.parametrize(("role", "code"), [("janitor", "role_unknown"), ("super_admin", "role_not_instance_bound"),
                                            ("anonymous", "role_not_instance_bound")])
def test_changing_to_a_bad_role_is_a_400(api_client, admin, clerk, role, code):
    response = as_(api_client, admin).patch(f"/api/v1/instances/acme/members/{clerk.user_id}",
                                            {"role": role}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["fields"] == {"role": [response.json()["error"]["message"]]}
    assert role in response.json()["error"]["message"]
    assert roles_of(admin.instance)["clerk@acme.test"] == "clerk"


def test_changing_without_a_role_is_a_400(api_client, admin, clerk):
    response = as_(api_client, admin).patch(f"/api/v1/instances/acme/members/{clerk.user_id}", {}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"role": ["This field is required."]}


def test_changing_to_a_role_above_the_callers_is_forbidden(api_client, admin, clerk, owner_lattice):
    response = as_(api_client, admin).patch(f"/api/v1/instances/acme/members/{clerk.user_id}",
                                            {"role": "owner"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "role_above_caller"
    assert roles_of(admin.instance)["clerk@acme.test"] == "clerk"


def test_changing_a_member_above_the_caller_is_forbidden(api_client, admin, acme, owner_lattice):
    owner = ProfileFactory(instance=acme, role="owner", user__email="owner@acme.test")
    token = refresh_token(owner)

    response = as_(api_client, admin).patch(f"/api/v1/instances/acme/members/{owner.user_id}",
                                            {"role": "customer"}, format="json")

    assert response.status_code == 403
    assert response.json() == {"error": {"code": "member_above_caller",
                                         "message": "This member's role 'owner' is above yours.", "fields": {}}}
    assert roles_of(acme)["owner@acme.test"] == "owner"
    token.refresh_from_db()
    assert token.revoked_at is None


def test_the_last_instance_admin_cannot_demote_themselves(api_client, admin, clerk):
    response = as_(api_client, admin).patch(f"/api/v1/instances/acme/members/{admin.user_id}",
                                            {"role": "clerk"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"error": {
        "code": "last_instance_admin",
        "message": "An instance needs at least one instance_admin; appoint another first.", "fields": {}}}
    assert roles_of(admin.instance)["admin@acme.test"] == "instance_admin"


def test_an_instance_admin_may_demote_themselves_when_another_remains(api_client, admin, acme):
    ProfileFactory(instance=acme, role="instance_admin", user__email="other@acme.test")
    token = refresh_token(admin)

    response = as_(api_client, admin).patch(f"/api/v1/instances/acme/members/{admin.user_id}",
                                            {"role": "clerk"}, format="json")

    assert response.status_code == 200
    assert roles_of(acme) == {"admin@acme.test": "clerk", "other@acme.test": "instance_admin"}
    token.refresh_from_db()
    assert token.revoked_reason == "role_changed"


def test_a_switched_super_admin_changes_roles(api_client, admin, clerk, acme):
    switched_super_admin(api_client, acme)

    response = api_client.patch(f"/api/v1/instances/acme/members/{clerk.user_id}",
                                {"role": "instance_admin"}, format="json")

    assert response.status_code == 200
    assert roles_of(acme)["clerk@acme.test"] == "instance_admin"


# --- DELETE instances/{slug}/members/{user_id} ------------------------------------------------------

def test_removing_a_member_revokes_their_tokens_for_the_instance_only(api_client, admin, clerk, globex):
    clerk_in_globex = ProfileFactory(user=clerk.user, instance=globex, role="clerk")
    acme_token, globex_token = refresh_token(clerk), refresh_token(clerk_in_globex)

    response = as_(api_client, admin).delete(f"/api/v1/instances/acme/members/{clerk.user_id}")

    assert response.status_code == 204
    assert response.content == b""
    assert roles_of(admin.instance) == {"admin@acme.test": "instance_admin"}
    assert roles_of(globex) == {"clerk@acme.test": "clerk"}
    acme_token.refresh_from_db()
    globex_token.refresh_from_db()
    assert (acme_token.revoked_at is not None, acme_token.revoked_reason) == (True, "member_removed")
    assert globex_token.revoked_at is None


def test_removing_a_member_of_another_instance_is_not_found(api_client, admin, outsider):
    response = as_(api_client, admin).delete(f"/api/v1/instances/acme/members/{outsider.user_id}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "member_not_found"
    assert roles_of(outsider.instance) == {"customer@globex.test": "customer"}


def test_removing_through_a_foreign_instance_is_not_found(api_client, admin, outsider):
    response = as_(api_client, admin).delete(f"/api/v1/instances/globex/members/{outsider.user_id}")

    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert roles_of(outsider.instance) == {"customer@globex.test": "customer"}


@pytest.mark.parametrize("caller_role", ["clerk", "accountant", "customer"])
def test_only_an_instance_admin_removes_members(api_client, admin, acme, caller_role):
    caller = ProfileFactory(instance=acme, role=caller_role, user__email="caller@acme.test")

    response = as_(api_client, caller).delete(f"/api/v1/instances/acme/members/{admin.user_id}")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "role_required"
    assert roles_of(acme) == {"admin@acme.test": "instance_admin", "caller@acme.test": caller_role}


def test_removing_a_member_above_the_caller_is_forbidden(api_client, admin, acme, owner_lattice):
    ProfileFactory(instance=acme, role="owner", user__email="owner@acme.test")
    owner_id = Profile.objects.get(user__email="owner@acme.test").user_id

    response = as_(api_client, admin).delete(f"/api/v1/instances/acme/members/{owner_id}")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "member_above_caller"
    assert roles_of(acme) == {"admin@acme.test": "instance_admin", "owner@acme.test": "owner"}


def test_the_last_instance_admin_cannot_remove_themselves(api_client, admin, clerk):
    token = refresh_token(admin)

    response = as_(api_client, admin).delete(f"/api/v1/instances/acme/members/{admin.user_id}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "last_instance_admin"
    assert roles_of(admin.instance) == {"admin@acme.test": "instance_admin", "clerk@acme.test": "clerk"}
    token.refresh_from_db()
    assert token.revoked_at is None


def test_an_instance_admin_may_leave_when_another_admin_remains(api_client, admin, acme):
    ProfileFactory(instance=acme, role="instance_admin", user__email="other@acme.test")

    response = as_(api_client, admin).delete(f"/api/v1/instances/acme/members/{admin.user_id}")

    assert response.status_code == 204
    assert roles_of(acme) == {"other@acme.test": "instance_admin"}


def test_a_switched_super_admin_removes_members(api_client, admin, clerk, acme):
    switched_super_admin(api_client, acme)

    response = api_client.delete(f"/api/v1/instances/acme/members/{clerk.user_id}")

    assert response.status_code == 204
    assert roles_of(acme) == {"admin@acme.test": "instance_admin"}


def test_removing_needs_authentication(api_client, admin, clerk):
    response = api_client.delete(f"/api/v1/instances/acme/members/{clerk.user_id}")

    assert response.status_code == 401
    assert roles_of(admin.instance) == {"admin@acme.test": "instance_admin", "clerk@acme.test": "clerk"}


# --- concurrency ------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_two_admins_removing_each_other_at_once_leave_one_admin():
    import threading

    from django.db import connection

    from accounts.selectors import InstanceActor
    from accounts.services.instances import member_remove
    from saaskit.errors import ApplicationError

    acme = InstanceFactory(slug="acme")
    first = ProfileFactory(instance=acme, role="instance_admin")
    second = ProfileFactory(instance=acme, role="instance_admin")
    barrier = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def remove(actor: Profile, target: Profile) -> None:
        try:
            barrier.wait(timeout=10)
            member_remove(actor=InstanceActor(instance=acme, user_id=actor.user_id, role="instance_admin"),
                          user_id=target.user_id)
            outcomes[actor.pk] = "removed"
        except ApplicationError as exc:
            outcomes[actor.pk] = exc.code
        finally:
            connection.close()

    threads = [threading.Thread(target=remove, args=(first, second)),
               threading.Thread(target=remove, args=(second, first))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes.values()) == ["last_instance_admin", "removed"]
    assert Profile.objects.filter(instance=acme, role="instance_admin").count() == 1


# --- with real tokens (login, switch, refresh) ------------------------------------------------------

def _bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def test_with_real_tokens_an_operator_switches_in_and_a_re_roled_member_cannot_refresh(acme):
    from tests.factories import DEFAULT_PASSWORD

    operator = ProfileFactory(instance=None, role="super_admin", user__email="root@example.com")
    clerk = ProfileFactory(instance=acme, role="clerk", user__email="clerk@acme.test")
    newcomer = UserFactory(email="new@example.com")
    anonymous = APIClient()
    clerk_pair = anonymous.post("/api/v1/auth/token", {"email": "clerk@acme.test", "password": DEFAULT_PASSWORD,
                                                       "instance": "acme"}, format="json").json()
    operator_pair = anonymous.post("/api/v1/auth/token", {"email": "root@example.com", "password": DEFAULT_PASSWORD},
                                   format="json").json()

    unswitched = _bearer(operator_pair["access"]).get("/api/v1/instances/acme/members")
    switched = _bearer(operator_pair["access"]).post("/api/v1/auth/switch", {"refresh": operator_pair["refresh"],
                                                                             "instance": "acme",
                                                                             "role": "instance_admin"},
                                                     format="json").json()
    as_admin = _bearer(switched["access"])
    added = as_admin.post("/api/v1/instances/acme/members", {"email": "new@example.com", "role": "customer"},
                          format="json")
    changed = as_admin.patch(f"/api/v1/instances/acme/members/{clerk.user_id}", {"role": "customer"}, format="json")
    refreshed = anonymous.post("/api/v1/auth/token/refresh", {"refresh": clerk_pair["refresh"]}, format="json")

    assert unswitched.status_code == 403
    assert unswitched.json()["error"]["code"] == "role_switch_required"
    assert added.status_code == 201
    assert added.json() == invitation_body(Invitation.objects.get(email=newcomer.email))
    assert changed.status_code == 200
    assert refreshed.status_code == 401
    assert roles_of(acme) == {"clerk@acme.test": "customer"}
    assert not Profile.objects.filter(user=operator.user, instance=acme).exists()


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_a_user_id_beyond_the_column_range_is_not_found(api_client, admin, method):
    response = getattr(as_(api_client, admin), method)("/api/v1/instances/acme/members/99999999999999999999",
                                                       {"role": "clerk"}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "member_not_found"


def test_a_super_admin_switched_in_as_clerk_cannot_manage_members(api_client, admin, acme):
    UserFactory(email="new@example.com")
    switched_super_admin(api_client, acme, role="clerk")

    listed = api_client.get("/api/v1/instances/acme/members")
    added = api_client.post("/api/v1/instances/acme/members", {"email": "new@example.com", "role": "customer"},
                            format="json")

    assert listed.status_code == 200
    assert added.status_code == 403
    assert added.json()["error"]["code"] == "role_required"
    assert roles_of(acme) == {"admin@acme.test": "instance_admin"}


def test_members_are_paginated_with_the_same_queries_for_a_switched_operator(api_client, admin, clerk, acme,
                                                                              django_assert_num_queries):
    for index in range(3):
        ProfileFactory(instance=acme, role="customer", user__email=f"customer{index}@acme.test")
    switched_super_admin(api_client, acme)

    with django_assert_num_queries(4):  # instance, operator's global profile, count, page
        response = api_client.get("/api/v1/instances/acme/members?limit=2&offset=2")

    body = response.json()
    assert body["count"] == 5
    assert [row["email"] for row in body["results"]] == ["customer0@acme.test", "customer1@acme.test"]
    assert body["next"] == "http://testserver/api/v1/instances/acme/members?limit=2&offset=4"


# --- a token for no instance (issue 8, item 9) --------------------------------------------------------

def _login(email: str, **extra: str) -> APIClient:
    from tests.factories import DEFAULT_PASSWORD

    response = APIClient().post("/api/v1/auth/token", {"email": email, "password": DEFAULT_PASSWORD, **extra},
                                format="json")
    assert response.status_code == 200, response.json()
    return _bearer(response.json()["access"])


def test_right_after_creating_an_instance_its_admin_is_told_to_get_a_token_for_it(acme):
    UserFactory(email="founder@example.com")
    UserFactory(email="stranger@example.com")
    founder = _login("founder@example.com")  # no profile yet: a token for no instance

    created = founder.post("/api/v1/instances", {"slug": "newco", "name": "NewCo"}, format="json")
    members = founder.get("/api/v1/instances/newco/members")
    scoped = founder.get("/api/v1/products/")
    missing = founder.get("/api/v1/instances/nope/members")
    foreign = founder.get("/api/v1/instances/acme/members")
    stranger = _login("stranger@example.com").get("/api/v1/instances/newco/members")
    with_token = _login("founder@example.com", instance="newco").get("/api/v1/instances/newco/members")

    assert created.status_code == 201
    assert (members.status_code, members.json()) == (403, TOKEN_REQUIRED("newco"))
    assert scoped.status_code == 403
    assert scoped.json()["error"]["code"] == "instance_token_required"
    assert (missing.status_code, missing.json()) == (404, NOT_FOUND)
    assert (foreign.status_code, foreign.json()) == (404, NOT_FOUND)
    assert (stranger.status_code, stranger.json()) == (404, NOT_FOUND)
    assert with_token.status_code == 200
    assert [row["email"] for row in with_token.json()["results"]] == ["founder@example.com"]
