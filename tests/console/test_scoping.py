"""Who sees what in the console (issue 10): a walk over every registered ModelAdmin (``admin.site._registry``, so a
new ModelAdmin is covered without touching this file) as a staff instance admin of instance A, with data in A and
B: changelists, searches, filters, change / add / history / delete pages, every foreign-key choice, autocompletes,
raw-id lookups and actions find nothing of B, B's objects answer 403/404, and no action changes a row of B.

B's world is built first; every row that exists once it is built belongs to B."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.db import models, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Instance, Invitation, Profile, RefreshToken, User
from audit.models import AuditEntry
from authz import models as authz_models
from authzen import models as authzen_models
from console.admin_base import grantable_roles, scope_path
from events.models import Delivery, OutboxEvent, RejectedMessage
from inventory.models import PriceQuote, Product, Reservation
from orders.models import DeadLetter, Order, OrderEvent, OrderLine
from payments.models import Alert, Payment, Wallet
from payments.services import wallet_adjust
from tests.console.conftest import make_instance_admin, staff_client
from tests.factories import ProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

MARK = "bravo"  # every text of B's world carries it


def _choice(model: type[models.Model], field: str) -> str:
    return model._meta.get_field(field).choices[0][0]


def build_world(tag: str) -> Instance:
    """One instance with a row of every registered model (and of their inlines)."""
    now = timezone.now()
    instance = Instance.objects.create(slug=tag, name=f"{tag} shop")
    member = UserFactory(email=f"member@{tag}.example", name=f"{tag} member")
    ProfileFactory(user=member, instance=instance, role="customer")
    RefreshToken.objects.create(user=member, instance=instance, role="customer", profile_role="customer",
                                family=uuid.uuid4(), token_hash=uuid.uuid4().hex * 2, expires_at=now + timedelta(days=1))
    Invitation.objects.create(instance=instance, email=f"invitee@{tag}.example", role="customer",
                              expires_at=now + timedelta(days=1))
    group = authz_models.Group.objects.create(instance=instance, name=f"{tag}-group")
    authz_models.GroupMembership.objects.create(group=group, user=member)
    authz_models.Resource.objects.create(instance=instance, name=f"{tag}-resource")
    authz_models.Policy.objects.create(instance=instance, user=member, resource_type="product", action="read",
                                       resource_id=f"{tag}-1")
    client = authzen_models.ServiceClient.objects.create(instance=instance, name=f"{tag}-client", role="customer")
    authzen_models.ServiceKey.objects.create(client=client, prefix=f"{tag}-key", key_hash=uuid.uuid4().hex * 2)
    rtype = authzen_models.ResourceType.objects.create(instance=instance, name=f"{tag}doc", actions=["read"])
    authzen_models.ResourceObject.objects.create(instance=instance, resource_type=rtype, object_id=f"{tag}-object")
    authzen_models.SubjectProperties.objects.create(instance=instance, user=member, properties={"team": tag})
    authzen_models.Policy.objects.create(instance=instance, user=member, resource_type=rtype, action="read",
                                         resource_id=f"{tag}-doc")
    event = OutboxEvent.objects.create(name=f"{tag}.event", version=1, occurred_at=now, instance_id=instance.pk,
                                       instance_slug=tag, correlation_id=f"{tag}-corr", payload={"tag": tag})
    Delivery.objects.create(event=event, consumer=f"{tag}-consumer", queue="default")
    RejectedMessage.objects.create(task_name=f"{tag}.task", body=tag, reason=f"{tag} reason")
    product = Product.objects.create(instance=instance, sku=f"{tag}-sku", name=f"{tag} widget", price=Decimal("2.00"))
    order = Order.objects.create(instance=instance, customer=member, currency="USD", total=Decimal("2.00"),
                                 reason=f"{tag}-reason")
    OrderLine.objects.create(order=order, product_id=product.pk, quantity=1, unit_price=Decimal("2.00"))
    OrderEvent.objects.create(order=order, kind=_choice(OrderEvent, "kind"), causation_id=f"{tag}-cause")
    DeadLetter.objects.create(delivery_id=abs(hash(tag)) % 10**9, order=order, event_name=f"{tag}.event",
                              consumer=f"{tag}-consumer", action=_choice(DeadLetter, "action"))
    Reservation.objects.create(instance=instance, order_id=order.pk, status=_choice(Reservation, "status"),
                               reason=f"{tag}-reason")
    PriceQuote.objects.create(instance=instance, order_id=order.pk, currency="USD", amount=Decimal("2.00"))
    wallet = Wallet.objects.create(instance=instance, user=member, currency="USD")
    with transaction.atomic():
        wallet_adjust(wallet=wallet, amount="5.00", reason=f"{tag} goodwill", actor=None)
    Payment.objects.create(instance=instance, order_id=order.pk, customer=member, wallet=wallet,
                           amount=Decimal("2.00"), currency="USD", status=_choice(Payment, "status"),
                           reason=f"{tag}-reason")
    Alert.objects.create(instance=instance, kind=f"{tag}-alert", subject=f"user:{member.pk}", event_id=uuid.uuid4())
    AuditEntry.objects.create(action=_choice(AuditEntry, "action"), actor=member, actor_email=member.email,
                              instance_id=instance.pk, instance_slug=tag, target_id=f"{tag}-target")
    return instance


def every_model() -> list[type[models.Model]]:
    found: dict[type[models.Model], None] = {}
    for model, model_admin in admin.site._registry.items():
        found[model] = None
        for inline in model_admin.inlines:
            found[inline.model] = None
    return list(found)


def snapshot(pks: dict[type[models.Model], set[Any]]) -> dict[str, list[dict[str, Any]]]:
    return {model._meta.label: list(model._default_manager.filter(pk__in=ids).order_by("pk").values())
            for model, ids in pks.items()}


@pytest.fixture
def world() -> dict[str, Any]:
    bravo = build_world(MARK)
    bravo_admin = make_instance_admin(bravo, email=f"admin@{MARK}.example")
    assert bravo_admin.pk
    b_rows = {model: set(model._default_manager.values_list("pk", flat=True)) for model in every_model()}
    alpha = build_world("alpha")
    alpha_admin = make_instance_admin(alpha, email="admin@alpha.example")
    return {"alpha": alpha, "bravo": bravo, "b_rows": b_rows, "client": staff_client(alpha_admin),
            "admin": alpha_admin}


def _url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _choice_pks(form: Any) -> dict[type[models.Model], set[Any]]:
    """The pks offered by every model-choice field of ``form`` (not an inline row's hidden own id: the formset
    matches a posted id against the parent's rows only)."""
    offered: dict[type[models.Model], set[Any]] = {}
    own_pk = form._meta.model._meta.pk.name if hasattr(form, "_meta") else None
    for name, field in form.fields.items():
        if name == own_pk:
            continue
        queryset = getattr(field, "queryset", None)
        if queryset is not None:
            offered.setdefault(queryset.model, set()).update(queryset.values_list("pk", flat=True))
    return offered


def _assert_forms_offer_nothing_of_b(response: Any, b_rows: dict[type[models.Model], set[Any]], where: str) -> None:
    forms_seen = []
    if response.context and "adminform" in response.context:
        forms_seen.append(response.context["adminform"].form)
        for inline in response.context["inline_admin_formsets"]:
            forms_seen.append(inline.formset.empty_form)
            forms_seen.extend(inline.formset.forms)
    for form in forms_seen:
        for model, offered in _choice_pks(form).items():
            assert not offered & b_rows.get(model, set()), f"{where}: {model._meta.label} choices offer B's rows"


REGISTRY = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


@pytest.mark.parametrize(("model", "model_admin"), REGISTRY, ids=[m._meta.label for m, _ in REGISTRY])
def test_an_instance_admin_finds_nothing_of_another_instance(world, model, model_admin):
    client: Client = world["client"]
    b_rows: dict[type[models.Model], set[Any]] = world["b_rows"]
    mine = b_rows.get(model, set())
    assert mine, f"build_world makes no {model._meta.label}: add one so the walk covers it"
    platform = scope_path(model) is None
    before = snapshot(b_rows)

    changelist = client.get(_url(model, "changelist"))
    searched = client.get(_url(model, "changelist"), {"q": MARK})
    if platform:
        assert (changelist.status_code, searched.status_code) == (403, 403)
    else:
        assert (changelist.status_code, searched.status_code) == (200, 200)
        for response in (changelist, searched):
            listed = {obj.pk for obj in response.context["cl"].result_list}
            assert not listed & mine
        assert MARK not in changelist.content.decode()  # rows, filters, counts (the search page echoes the term)
        assert {obj.pk for obj in changelist.context["cl"].result_list}, "A's own rows are listed"

    # B's objects: 403 or 404, on every page of theirs.
    for pk in sorted(mine, key=str):
        for view in ("change", "history", "delete"):
            response = client.get(_url(model, view, pk))
            assert response.status_code in (403, 404), (view, pk, response.status_code)
        posted = client.post(_url(model, "change", pk), {})
        assert posted.status_code in (403, 404)

    # The add form and A's own change form offer no choice of B (selects, inlines) and show nothing of B.
    add = client.get(_url(model, "add"))
    assert add.status_code in (200, 403)
    pages = [("add", add)]
    if not platform:
        own = model._default_manager.exclude(pk__in=mine).order_by("pk").first()
        change = client.get(_url(model, "change", own.pk))
        assert change.status_code == 200
        pages.append(("change", change))
    for where, response in pages:
        if response.status_code == 200:
            assert MARK not in response.content.decode(), where
            _assert_forms_offer_nothing_of_b(response, b_rows, where)

    # Autocompletes and raw-id lookups on every relation of the model.
    for field in model._meta.get_fields():
        if not (field.is_relation and field.concrete and (field.many_to_one or field.many_to_many or field.one_to_one)):
            continue
        related = field.related_model
        answer = client.get(reverse("admin:autocomplete"), {"app_label": model._meta.app_label,
                                                            "model_name": model._meta.model_name,
                                                            "field_name": field.name, "term": ""})
        assert answer.status_code in (200, 403), (field.name, answer.status_code)
        if answer.status_code == 200:
            ids = {str(result["id"]) for result in answer.json()["results"]}
            assert not ids & {str(pk) for pk in b_rows.get(related, set())}, field.name
        if field.name in model_admin.raw_id_fields and admin.site.is_registered(related):
            lookup = client.get(_url(related, "changelist"), {"_to_field": field.target_field.name, "_popup": 1})
            assert lookup.status_code in (200, 403)
            if lookup.status_code == 200:
                assert not {o.pk for o in lookup.context["cl"].result_list} & b_rows.get(related, set())

    # Every action offered, applied to B's rows (with whatever its form asks for), changes nothing of B.
    actions = [name for name, _ in changelist.context["action_form"].fields["action"].choices if name] \
        if changelist.status_code == 200 and changelist.context.get("action_form") else []
    for name in actions:
        response = client.post(_url(model, "changelist"), {
            "action": name, "_selected_action": [str(pk) for pk in mine], "index": 0, "apply": "1", "post": "yes",
            "quantity": "5", "amount": "10.00", "reason": "walk", "note": "walk"})
        assert response.status_code in (200, 302, 403), (name, response.status_code)
        assert snapshot(b_rows) == before, f"action {name} changed B's rows"
    assert snapshot(b_rows) == before


def test_the_index_and_dashboard_show_nothing_of_another_instance(world):
    response = world["client"].get(reverse("admin:index"))

    assert response.status_code == 200
    page = response.content.decode()
    assert MARK not in page
    assert "alpha" in page


def test_platform_level_models_are_for_superusers_only(world):
    platform = {model._meta.label for model in admin.site._registry if scope_path(model) is None}
    listed = {model["object_name"] for app in admin.site.get_app_list(_request(world["admin"]))
              for model in app["models"]}

    assert platform == {"events.OutboxEvent", "events.Delivery", "events.RejectedMessage"}
    assert not listed & {"OutboxEvent", "Delivery", "RejectedMessage"}


def _request(user: User) -> Any:
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_an_instance_admin_cannot_grant_a_role_above_their_own(world):
    alpha = world["alpha"]
    newcomer = UserFactory(email="newcomer@alpha.example")
    ProfileFactory(user=newcomer, instance=alpha, role="customer")
    profile = Profile.objects.get(user=newcomer, instance=alpha)
    url = _url(Instance, "change", alpha.pk)
    page = world["client"].get(url)
    offered = {value for value, _ in page.context["inline_admin_formsets"][0].formset.empty_form.fields["role"].choices}
    members = list(Profile.objects.filter(instance=alpha).order_by("pk"))
    body = {"slug": alpha.slug, "name": alpha.name, "is_active": "on",
            "profiles-TOTAL_FORMS": str(len(members)), "profiles-INITIAL_FORMS": str(len(members)),
            "profiles-MIN_NUM_FORMS": "0", "profiles-MAX_NUM_FORMS": "1000"}
    for i, member in enumerate(members):
        body.update({f"profiles-{i}-id": str(member.pk), f"profiles-{i}-instance": str(alpha.pk),
                     f"profiles-{i}-user": str(member.user_id), f"profiles-{i}-role": member.role,
                     f"profiles-{i}-external_id": ""})
    index = members.index(profile)

    refused = world["client"].post(url, {**body, f"profiles-{index}-role": "super_admin"})

    assert offered == grantable_roles() == {"instance_admin", "clerk", "accountant", "customer"}
    assert refused.status_code == 200
    profile.refresh_from_db()
    assert profile.role == "customer"
    granted = world["client"].post(url, {**body, f"profiles-{index}-role": "clerk"})
    assert granted.status_code == 302
    profile.refresh_from_db()
    assert profile.role == "clerk"


def test_an_instance_admin_cannot_add_a_member_of_another_instance(world):
    alpha, bravo_member = world["alpha"], User.objects.get(email=f"member@{MARK}.example")
    url = _url(Instance, "change", alpha.pk)
    members = list(Profile.objects.filter(instance=alpha).order_by("pk"))
    body = {"slug": alpha.slug, "name": alpha.name, "is_active": "on",
            "profiles-TOTAL_FORMS": str(len(members) + 1), "profiles-INITIAL_FORMS": str(len(members)),
            "profiles-MIN_NUM_FORMS": "0", "profiles-MAX_NUM_FORMS": "1000"}
    for i, member in enumerate(members):
        body.update({f"profiles-{i}-id": str(member.pk), f"profiles-{i}-instance": str(alpha.pk),
                     f"profiles-{i}-user": str(member.user_id), f"profiles-{i}-role": member.role})
    n = len(members)
    body.update({f"profiles-{n}-instance": str(alpha.pk), f"profiles-{n}-user": str(bravo_member.pk),
                 f"profiles-{n}-role": "customer"})

    response = world["client"].post(url, body)

    assert response.status_code == 200  # the form again, with the error
    assert not Profile.objects.filter(user=bravo_member, instance=alpha).exists()


def test_a_user_of_two_instances_is_seen_but_not_changed_by_one_instance_admin(world):
    shared = UserFactory(email="shared@example.com", name="Shared")
    ProfileFactory(user=shared, instance=world["alpha"], role="customer")
    ProfileFactory(user=shared, instance=world["bravo"], role="customer")
    client = world["client"]

    page = client.get(_url(User, "change", shared.pk))
    posted = client.post(_url(User, "change", shared.pk), {"email": "taken@example.com", "name": "Taken",
                                                          "is_active": "on"})
    password = client.post(f"{_url(User, 'changelist')}{shared.pk}/password/", {"password1": "taken-over-passphrase", "password2": "taken-over-passphrase"})

    assert page.status_code == 200
    assert 'name="email"' not in page.content.decode()  # the read-only view
    assert MARK not in page.content.decode()  # their profile in B is not shown
    assert posted.status_code == 403 and password.status_code == 403
    shared.refresh_from_db()
    assert (shared.email, shared.name) == ("shared@example.com", "Shared")
    assert not shared.check_password("taken-over-passphrase")


def test_revoking_a_shared_users_tokens_reaches_only_the_admins_instance(world):
    shared = UserFactory(email="shared@example.com")
    tokens = {}
    for tag in ("alpha", "bravo"):
        instance = world[tag]
        ProfileFactory(user=shared, instance=instance, role="customer")
        tokens[tag] = RefreshToken.objects.create(
            user=shared, instance=instance, role="customer", profile_role="customer", family=uuid.uuid4(),
            token_hash=uuid.uuid4().hex * 2, expires_at=timezone.now() + timedelta(days=1))

    response = world["client"].post(_url(User, "changelist"),
                                    {"action": "revoke_all_tokens", "_selected_action": [str(shared.pk)]})

    assert response.status_code == 302
    revoked = {tag: RefreshToken.objects.get(pk=token.pk).revoked_at is not None for tag, token in tokens.items()}
    assert revoked == {"alpha": True, "bravo": False}


def test_no_list_filter_enumerates_users_or_instances():
    """Scale: a filter on a relation to users or instances lists every one of them on each page."""
    offending = []
    for model, model_admin in admin.site._registry.items():
        for entry in model_admin.list_filter:
            name = entry[0] if isinstance(entry, (tuple, list)) else entry
            if not isinstance(name, str):
                continue
            field = model
            target = None
            for part in name.split("__"):
                try:
                    found = field._meta.get_field(part)
                except Exception:
                    break
                if found.is_relation:
                    target = field = found.related_model
            if target in (User, Instance):
                offending.append(f"{model._meta.label}.{name}")
    assert offending == []


def test_every_list_skips_the_full_count():
    assert [model._meta.label for model, model_admin in admin.site._registry.items()
            if model_admin.show_full_result_count] == []


@pytest.mark.parametrize("name", ["lock", "unlock"])
def test_an_instance_admin_cannot_lock_or_unlock_a_user_who_belongs_to_another_instance_too(world, name):
    shared = UserFactory(email="shared@example.com")
    only_mine = UserFactory(email="mine@example.com")
    ProfileFactory(user=shared, instance=world["alpha"], role="customer")
    ProfileFactory(user=shared, instance=world["bravo"], role="customer")
    ProfileFactory(user=only_mine, instance=world["alpha"], role="customer")
    if name == "unlock":
        User.objects.filter(pk__in=[shared.pk, only_mine.pk]).update(locked_at=timezone.now(), is_active=False)
    before = User.objects.filter(pk=shared.pk).values("is_active", "locked_at").get()

    refused = world["client"].post(_url(User, "changelist"), {"action": name, "_selected_action": [str(shared.pk)]})
    done = world["client"].post(_url(User, "changelist"), {"action": name, "_selected_action": [str(only_mine.pk)]})

    assert refused.status_code in (302, 403)
    assert User.objects.filter(pk=shared.pk).values("is_active", "locked_at").get() == before
    assert not AuditEntry.objects.filter(action=name, target_id=str(shared.pk)).exists()
    assert done.status_code == 302
    assert User.objects.get(pk=only_mine.pk).is_active is (name == "unlock")
