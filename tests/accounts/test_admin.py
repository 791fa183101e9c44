import secrets
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Instance, Profile, RefreshToken, User
from events.models import OutboxEvent
from tests.factories import InstanceFactory, ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKENS_URL = "/admin/accounts/refreshtoken/"
USERS_URL = "/admin/accounts/user/"
INSTANCES_URL = "/admin/accounts/instance/"


@pytest.fixture
def staff() -> User:
    return User.objects.create_superuser("root@example.com", "root-password-123")


@pytest.fixture
def admin_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def make_token(user: User, instance: Instance | None = None, *, family: uuid.UUID | None = None,
               used: bool = False, revoked: bool = False, expired: bool = False) -> RefreshToken:
    now = timezone.now()
    return RefreshToken.objects.create(
        user=user, instance=instance, role="customer", profile_role="customer", family=family or uuid.uuid4(),
        token_hash=secrets.token_hex(32), created_at=now - timedelta(hours=1),
        expires_at=now - timedelta(minutes=1) if expired else now + timedelta(days=1),
        used_at=now if used else None, revoked_at=now if revoked else None,
        revoked_reason="earlier" if revoked else "")


def revoked(*tokens: RefreshToken) -> list[tuple[bool, str]]:
    for token in tokens:
        token.refresh_from_db()
    return [(token.revoked_at is not None, token.revoked_reason) for token in tokens]


# --- pages render -----------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [INSTANCES_URL, f"{INSTANCES_URL}?q=acme", USERS_URL, f"{USERS_URL}?q=someone",
                                 TOKENS_URL, f"{TOKENS_URL}?q=someone", f"{INSTANCES_URL}add/",
                                 f"{USERS_URL}add/"])
def test_admin_pages_render(admin_client, url):
    user = UserFactory(email="someone@example.com")
    acme = InstanceFactory(slug="acme")
    ProfileFactory(user=user, instance=acme, role="clerk")
    make_token(user, acme)

    response = admin_client.get(url)

    assert response.status_code == 200


def test_instance_search_finds_by_slug_and_name(admin_client):
    InstanceFactory(slug="acme", name="Acme Corporation")
    InstanceFactory(slug="globex", name="Globex")

    by_slug = admin_client.get(f"{INSTANCES_URL}?q=glob")
    by_name = admin_client.get(f"{INSTANCES_URL}?q=corporation")

    assert [i.slug for i in by_slug.context["cl"].result_list] == ["globex"]
    assert [i.slug for i in by_name.context["cl"].result_list] == ["acme"]


def test_instance_list_shows_member_counts_and_the_active_flag(admin_client, django_assert_max_num_queries):
    acme, globex, empty = InstanceFactory(slug="acme"), InstanceFactory(slug="globex", is_active=False), \
        InstanceFactory(slug="empty")
    for role in ("clerk", "customer", "customer"):
        ProfileFactory(instance=acme, role=role)
    ProfileFactory(instance=globex, role="clerk")
    ProfileFactory(user=Profile.objects.filter(instance=acme).first().user, instance=globex, role="customer")

    with django_assert_max_num_queries(8):  # one query for the page's rows and their counts, whatever their number
        response = admin_client.get(INSTANCES_URL)

    rows = {i.slug: (i.member_count, i.is_active) for i in response.context["cl"].result_list}
    assert rows == {"acme": (3, True), "globex": (2, False), "empty": (0, True)}
    assert '<td class="field-members">3</td>' in response.content.decode()
    assert list(admin_client.get(f"{INSTANCES_URL}?o=4").context["cl"].result_list) == [empty, globex, acme]


def test_user_search_finds_by_email(admin_client):
    UserFactory(email="alice@example.com")
    UserFactory(email="bob@example.com")

    response = admin_client.get(f"{USERS_URL}?q=alice")

    assert [u.email for u in response.context["cl"].result_list] == ["alice@example.com"]


def test_instance_page_offers_only_instance_roles_for_members(admin_client):
    acme = InstanceFactory(slug="acme")
    ProfileFactory(instance=acme, role="clerk")

    response = admin_client.get(f"{INSTANCES_URL}{acme.pk}/change/")

    form = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert [value for value, _ in form.fields["role"].choices] == ["instance_admin", "clerk", "accountant",
                                                                   "customer"]


def test_user_page_lists_tokens_read_only_without_hashes(admin_client):
    user = UserFactory()
    token = make_token(user)

    response = admin_client.get(f"{USERS_URL}{user.pk}/change/")

    assert response.status_code == 200
    assert str(token.id) in response.content.decode()
    assert token.token_hash not in response.content.decode()
    tokens_inline = next(f for f in response.context["inline_admin_formsets"] if f.formset.model is RefreshToken)
    assert tokens_inline.has_add_permission is False
    assert tokens_inline.has_change_permission is False


# --- refresh tokens: filters ------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["active", "used", "revoked", "expired"])
def test_token_state_filter_uses_in_state(admin_client, state):
    user = UserFactory()
    tokens = {
        "active": make_token(user),
        "used": make_token(user, used=True),
        "revoked": make_token(user, revoked=True),
        "expired": make_token(user, expired=True),
    }

    response = admin_client.get(f"{TOKENS_URL}?state={state}")

    assert response.status_code == 200
    assert [t.pk for t in response.context["cl"].result_list] == [tokens[state].pk]


def test_token_filters_by_user_and_instance(admin_client):
    acme, globex = InstanceFactory(slug="acme"), InstanceFactory(slug="globex")
    alice, bob = UserFactory(), UserFactory()
    wanted = make_token(alice, acme)
    make_token(alice, globex)
    make_token(bob, acme)

    by_both = admin_client.get(f"{TOKENS_URL}?user__id__exact={alice.pk}&instance__id__exact={acme.pk}")
    by_user = admin_client.get(f"{TOKENS_URL}?user__id__exact={bob.pk}")

    assert [t.pk for t in by_both.context["cl"].result_list] == [wanted.pk]
    assert [t.user_id for t in by_user.context["cl"].result_list] == [bob.pk]


def test_token_list_shows_the_state_column(admin_client):
    make_token(UserFactory(), revoked=True)

    response = admin_client.get(TOKENS_URL)

    assert response.context["cl"].list_display[:7] == ["action_checkbox", "id", "user", "instance", "role",
                                                       "profile_role", "state"]
    assert ">revoked<" in response.content.decode()


# --- refresh tokens: no add, hash never editable ------------------------------------------------

def test_tokens_cannot_be_added(admin_client):
    response = admin_client.get(f"{TOKENS_URL}add/")

    assert response.status_code == 403


def test_token_hash_is_never_editable(admin_client):
    token = make_token(UserFactory())
    original = token.token_hash

    page = admin_client.get(f"{TOKENS_URL}{token.pk}/change/")
    posted = admin_client.post(f"{TOKENS_URL}{token.pk}/change/", {"token_hash": "0" * 64, "role": "super_admin"})

    assert page.status_code == 200
    assert original not in page.content.decode()
    assert 'name="token_hash"' not in page.content.decode()
    assert posted.status_code in (302, 403)
    token.refresh_from_db()
    assert (token.token_hash, token.role) == (original, "customer")


# --- refresh tokens: actions ---------------------------------------------------------------------

def test_revoke_action_revokes_only_the_selected_tokens(admin_client):
    user = UserFactory()
    family = uuid.uuid4()
    chosen, sibling, other = make_token(user, family=family), make_token(user, family=family), make_token(user)

    response = admin_client.post(TOKENS_URL, {"action": "revoke", "_selected_action": [str(chosen.pk)]})

    assert response.status_code == 302
    assert revoked(chosen, sibling, other) == [(True, "admin"), (False, ""), (False, "")]


def test_revoke_action_keeps_the_reason_of_already_revoked_tokens(admin_client):
    token = make_token(UserFactory(), revoked=True)
    before = RefreshToken.objects.get(pk=token.pk).revoked_at

    admin_client.post(TOKENS_URL, {"action": "revoke", "_selected_action": [str(token.pk)]})

    token.refresh_from_db()
    assert (token.revoked_at, token.revoked_reason) == (before, "earlier")


def test_revoke_family_action_revokes_every_token_of_the_family(admin_client):
    user = UserFactory()
    family = uuid.uuid4()
    chosen, sibling, other = make_token(user, family=family), make_token(user, family=family, used=True), \
        make_token(user)

    response = admin_client.post(TOKENS_URL, {"action": "revoke_family", "_selected_action": [str(chosen.pk)]})

    assert response.status_code == 302
    assert revoked(chosen, sibling, other) == [(True, "admin"), (True, "admin"), (False, "")]


def test_token_actions_need_a_staff_login():
    token = make_token(UserFactory())
    client = Client()
    client.force_login(UserFactory())  # not staff

    response = client.post(TOKENS_URL, {"action": "revoke", "_selected_action": [str(token.pk)]})

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert revoked(token) == [(False, "")]


def test_token_actions_need_the_change_permission():
    token = make_token(UserFactory())
    clerk_staff = UserFactory(is_staff=True)
    client = Client()
    client.force_login(clerk_staff)

    response = client.post(TOKENS_URL, {"action": "revoke", "_selected_action": [str(token.pk)]})

    assert response.status_code == 403
    assert revoked(token) == [(False, "")]


# --- users: revoke all tokens ------------------------------------------------------------------------

def test_revoke_all_tokens_action_uses_user_revoke_all_tokens(admin_client):
    alice, bob = UserFactory(), UserFactory()
    acme = InstanceFactory()
    alice_tokens = [make_token(alice), make_token(alice, acme)]
    bob_token = make_token(bob)

    response = admin_client.post(USERS_URL, {"action": "revoke_all_tokens", "_selected_action": [str(alice.pk)]})

    assert response.status_code == 302
    assert revoked(*alice_tokens, bob_token) == [(True, "admin"), (True, "admin"), (False, "")]
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert alice.tokens_not_before is not None
    assert bob.tokens_not_before is None


def test_admin_creates_a_user_with_a_lowercased_email(admin_client):
    response = admin_client.post(f"{USERS_URL}add/", _user_add_post("New.Person@Example.com"))

    assert response.status_code == 302
    user = User.objects.get(email="new.person@example.com")
    assert user.check_password("a-long-enough-password-9")
    assert list(OutboxEvent.objects.filter(name="event-account-created").values_list("payload", flat=True)) == [
        {"user_id": user.pk, "email": "new.person@example.com"}]


def test_admin_refuses_a_duplicate_email_in_another_case(admin_client):
    UserFactory(email="taken@example.com")

    response = admin_client.post(f"{USERS_URL}add/", _user_add_post("TAKEN@example.com"))

    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1
    assert not OutboxEvent.objects.filter(name="event-account-created").exists()


def _user_add_post(email: str) -> dict:
    empty_inline = {"TOTAL_FORMS": "0", "INITIAL_FORMS": "0", "MIN_NUM_FORMS": "0", "MAX_NUM_FORMS": "1000"}
    data = {"email": email, "name": "New Person", "usable_password": "true",
            "password1": "a-long-enough-password-9", "password2": "a-long-enough-password-9"}
    for prefix in ("profiles", "refresh_tokens"):
        data.update({f"{prefix}-{key}": value for key, value in empty_inline.items()})
    return data


# --- instances: members inline ---------------------------------------------------------------------

def _instance_post(instance: Instance, profiles: list[Profile], changes: dict[int, dict[str, str]]) -> dict:
    data = {"slug": instance.slug, "name": instance.name, "is_active": "on",
            "profiles-TOTAL_FORMS": str(len(profiles)), "profiles-INITIAL_FORMS": str(len(profiles)),
            "profiles-MIN_NUM_FORMS": "0", "profiles-MAX_NUM_FORMS": "1000"}
    for index, profile in enumerate(profiles):
        data[f"profiles-{index}-id"] = str(profile.pk)
        data[f"profiles-{index}-instance"] = str(instance.pk)
        data[f"profiles-{index}-user"] = str(profile.user_id)
        data[f"profiles-{index}-role"] = profile.role
        data.update({f"profiles-{index}-{key}": value for key, value in changes.get(profile.pk, {}).items()})
    return data


def test_changing_a_members_role_in_the_admin_revokes_their_tokens_for_the_instance(admin_client):
    acme, globex = InstanceFactory(slug="acme"), InstanceFactory(slug="globex")
    clerk = ProfileFactory(instance=acme, role="clerk")
    other = ProfileFactory(instance=acme, role="customer")
    acme_token, globex_token, other_token = make_token(clerk.user, acme), make_token(clerk.user, globex), \
        make_token(other.user, acme)

    response = admin_client.post(f"{INSTANCES_URL}{acme.pk}/change/",
                                 _instance_post(acme, [clerk, other], {clerk.pk: {"role": "accountant"}}))

    assert response.status_code == 302
    assert dict(Profile.objects.filter(instance=acme).values_list("pk", "role")) == {
        clerk.pk: "accountant", other.pk: "customer"}
    assert revoked(acme_token, globex_token, other_token) == [
        (True, "role_changed_by_admin"), (False, ""), (False, "")]


def test_removing_a_member_in_the_admin_revokes_their_tokens_for_the_instance(admin_client):
    acme = InstanceFactory(slug="acme")
    clerk = ProfileFactory(instance=acme, role="clerk")
    token = make_token(clerk.user, acme)

    response = admin_client.post(f"{INSTANCES_URL}{acme.pk}/change/",
                                 _instance_post(acme, [clerk], {clerk.pk: {"DELETE": "on"}}))

    assert response.status_code == 302
    assert not Profile.objects.filter(pk=clerk.pk).exists()
    assert revoked(token) == [(True, "member_removed_by_admin")]


def test_removing_a_member_in_the_admin_removes_their_policies_and_groups_there(admin_client):
    from authz import services as authz_services
    from authz.models import GroupMembership, Policy
    from authz.signals import policy_updated

    acme, globex = InstanceFactory(slug="acme"), InstanceFactory(slug="globex")
    clerk = ProfileFactory(instance=acme, role="clerk")
    ProfileFactory(user=clerk.user, instance=globex, role="customer")
    group = authz_services.group_create(instance=acme, name="ops")
    authz_services.group_add_users(instance=acme, group=group, user_ids=[clerk.user_id])
    authz_services.policies_upsert(instance=acme, policies=[f"{clerk.user_id}:get:orders:*"])
    authz_services.policies_upsert(instance=globex, policies=[f"{clerk.user_id}:get:orders:1"])
    seen: list[tuple[int, list[int]]] = []

    def receiver(sender, instance, payload, **kwargs):
        seen.append((instance.pk, payload["subject_ids"]))

    policy_updated.connect(receiver, weak=False)
    try:
        response = admin_client.post(f"{INSTANCES_URL}{acme.pk}/change/",
                                     _instance_post(acme, [clerk], {clerk.pk: {"DELETE": "on"}}))
    finally:
        policy_updated.disconnect(receiver)

    assert response.status_code == 302
    assert list(Policy.objects.filter(user=clerk.user).values_list("instance__slug", "resource_id")) == [
        ("globex", "1")]
    assert not GroupMembership.objects.filter(user=clerk.user).exists()
    assert seen == [(acme.pk, [clerk.user_id])]


@pytest.mark.parametrize("role", ["super_admin", "anonymous", "janitor"])
def test_the_admin_refuses_a_member_role_outside_the_instance_roles(admin_client, role):
    acme = InstanceFactory(slug="acme")
    clerk = ProfileFactory(instance=acme, role="clerk")
    token = make_token(clerk.user, acme)

    response = admin_client.post(f"{INSTANCES_URL}{acme.pk}/change/",
                                 _instance_post(acme, [clerk], {clerk.pk: {"role": role}}))

    assert response.status_code == 200
    assert "role" in response.context["inline_admin_formsets"][0].formset.forms[0].errors
    clerk.refresh_from_db()
    assert clerk.role == "clerk"
    assert revoked(token) == [(False, "")]


# --- users: deletion and profiles inline ----------------------------------------------------------------

def test_deleting_a_user_in_the_admin_goes_through_user_delete(admin_client):
    user = UserFactory()
    make_token(user)

    response = admin_client.post(f"{USERS_URL}{user.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()
    assert not RefreshToken.objects.filter(user_id=user.pk).exists()
    assert list(OutboxEvent.objects.filter(name="event-account-deleted").values_list("payload", flat=True)) == [
        {"user_id": user.pk}]


def test_bulk_deleting_users_publishes_one_event_each(admin_client):
    alice, bob, kept = UserFactory(), UserFactory(), UserFactory()

    response = admin_client.post(USERS_URL, {"action": "delete_selected", "post": "yes",
                                             "_selected_action": [str(alice.pk), str(bob.pk)]})

    assert response.status_code == 302
    assert list(User.objects.exclude(email="root@example.com").values_list("pk", flat=True)) == [kept.pk]
    assert sorted(p["user_id"] for p in OutboxEvent.objects.filter(name="event-account-deleted")
                  .values_list("payload", flat=True)) == sorted([alice.pk, bob.pk])


def _user_change_post(user: User, profiles: list[dict[str, str]]) -> dict:
    data = {"email": user.email, "name": user.name, "is_active": "on",
            "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
            "profiles-TOTAL_FORMS": str(len(profiles)), "profiles-INITIAL_FORMS": "0",
            "profiles-MIN_NUM_FORMS": "0", "profiles-MAX_NUM_FORMS": "1000",
            "refresh_tokens-TOTAL_FORMS": "0", "refresh_tokens-INITIAL_FORMS": "0",
            "refresh_tokens-MIN_NUM_FORMS": "0", "refresh_tokens-MAX_NUM_FORMS": "0"}
    for index, profile in enumerate(profiles):
        data.update({f"profiles-{index}-{key}": value for key, value in profile.items()})
        data[f"profiles-{index}-user"] = str(user.pk)
    return data


@pytest.mark.parametrize(("instance", "role", "saved"), [
    (True, "clerk", True),
    (False, "super_admin", True),
    (False, "clerk", False),       # an instance role needs an instance
    (True, "super_admin", False),  # a global role takes none
    (True, "anonymous", False),    # not offered
    (True, "janitor", False),      # not in the lattice
])
def test_user_page_profiles_follow_the_lattice(admin_client, instance, role, saved):
    acme = InstanceFactory(slug="acme")
    user = UserFactory()

    response = admin_client.post(f"{USERS_URL}{user.pk}/change/", _user_change_post(
        user, [{"instance": str(acme.pk) if instance else "", "role": role}]))

    assert response.status_code == (302 if saved else 200)
    expected = [(acme.pk if instance else None, role)] if saved else []
    assert list(Profile.objects.filter(user=user).values_list("instance_id", "role")) == expected


# --- users: who may grant power, and password changes (issue 8, item 11) ------------------------------

@pytest.fixture
def user_manager() -> tuple[User, Client]:
    """A staff user who is not a superuser but holds every permission on users."""
    from django.contrib.auth.models import Permission

    manager = UserFactory(is_staff=True, email="manager@example.com")
    manager.user_permissions.set(Permission.objects.filter(content_type__app_label="accounts",
                                                           content_type__model="user"))
    client = Client()
    client.force_login(manager)
    return manager, client


POWER_FIELDS = ("is_superuser", "is_staff", "user_permissions", "groups")


def test_a_staff_user_who_is_not_superuser_does_not_see_the_power_fields(user_manager):
    manager, client = user_manager
    target = UserFactory()

    page = client.get(f"{USERS_URL}{target.pk}/change/").content.decode()

    assert 'name="email"' in page
    assert [field for field in POWER_FIELDS if f'name="{field}"' in page] == []


def test_a_superuser_sees_the_power_fields(admin_client):
    target = UserFactory()

    page = admin_client.get(f"{USERS_URL}{target.pk}/change/").content.decode()

    assert [field for field in POWER_FIELDS if f'name="{field}"' in page] == list(POWER_FIELDS)


def test_a_staff_user_who_is_not_superuser_cannot_make_anyone_superuser(user_manager):
    from django.contrib.auth.models import Permission

    manager, client = user_manager
    every_permission = Permission.objects.order_by("pk").values_list("pk", flat=True)
    body = {"email": manager.email, "name": "Manager", "is_active": "on", "is_staff": "on", "is_superuser": "on",
            "user_permissions": [str(pk) for pk in every_permission],
            "profiles-TOTAL_FORMS": "0", "profiles-INITIAL_FORMS": "0",
            "refresh_tokens-TOTAL_FORMS": "0", "refresh_tokens-INITIAL_FORMS": "0"}
    permissions_before = manager.user_permissions.count()

    response = client.post(f"{USERS_URL}{manager.pk}/change/", body)

    assert response.status_code == 302, response.content.decode()[:2000]
    manager.refresh_from_db()
    assert (manager.is_superuser, manager.is_staff, manager.name) == (False, True, "Manager")
    assert manager.user_permissions.count() == permissions_before


def test_a_staff_user_who_is_not_superuser_cannot_change_a_superuser(user_manager, staff):
    _, client = user_manager

    page = client.get(f"{USERS_URL}{staff.pk}/change/")
    password = client.post(f"{USERS_URL}{staff.pk}/password/",
                           {"password1": "taken-over-passphrase", "password2": "taken-over-passphrase"})

    assert page.status_code == 200  # the read-only view (the manager may view users), no form
    assert 'name="email"' not in page.content.decode()
    assert password.status_code == 403
    staff.refresh_from_db()
    assert staff.check_password("root-password-123")


def test_changing_a_password_in_the_admin_revokes_the_users_tokens(admin_client, django_capture_on_commit_callbacks):
    from rest_framework.exceptions import AuthenticationFailed

    from accounts.authentication import authenticate_access_token
    from accounts.services.tokens import access_token_issue

    user = UserFactory()
    tokens = [make_token(user), make_token(user, InstanceFactory())]
    access = access_token_issue(user_id=user.pk, instance=None, role="anonymous", profile_role="anonymous")
    authenticate_access_token(access)

    with django_capture_on_commit_callbacks(execute=True):  # the commit drops the cached user
        response = admin_client.post(f"{USERS_URL}{user.pk}/password/",
                                     {"password1": "a-brand-new-long-passphrase",
                                      "password2": "a-brand-new-long-passphrase"})

    assert response.status_code == 302
    assert revoked(*tokens) == [(True, "password_changed"), (True, "password_changed")]
    with pytest.raises(AuthenticationFailed):
        authenticate_access_token(access)


# --- invitations ------------------------------------------------------------------------------------------

INVITATIONS_URL = "/admin/accounts/invitation/"


@pytest.mark.parametrize(("state", "emails"), [
    ("", ["accepted@example.com", "declined@example.com", "expired@example.com", "pending@example.com"]),
    ("pending", ["pending@example.com"]),
    ("expired", ["expired@example.com"]),
    ("accepted", ["accepted@example.com"]),
    ("declined", ["declined@example.com"]),
])
def test_invitations_are_listed_and_filtered_by_state(admin_client, state, emails):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import Invitation

    acme = InstanceFactory(slug="acme")
    later, earlier = timezone.now() + timedelta(days=1), timezone.now() - timedelta(days=1)
    for email, invitation_state, expires_at in [("pending@example.com", "pending", later),
                                                ("expired@example.com", "pending", earlier),
                                                ("accepted@example.com", "accepted", later),
                                                ("declined@example.com", "declined", later)]:
        Invitation.objects.create(instance=acme, email=email, role="clerk", state=invitation_state,
                                  expires_at=expires_at)

    response = admin_client.get(f"{INVITATIONS_URL}?state={state}" if state else INVITATIONS_URL)

    assert response.status_code == 200
    assert sorted(i.email for i in response.context["cl"].result_list) == emails
    assert admin_client.get(f"{INVITATIONS_URL}add/").status_code == 403
