"""Who sees what in the console, in one place: ``ScopedModelAdmin`` and ``ScopedInline``.

``ConsoleAdminSite.register`` slips ``ScopedModelAdmin`` beneath every registered ModelAdmin (just above Django's
``ModelAdmin`` in the MRO, so an admin's own ``has_*_permission`` that says no still wins) and the admin slips
``ScopedInline`` beneath each of its inlines: a new ModelAdmin is scoped without anyone remembering to.

- A superuser: the stock admin (everything).
- A staff **instance admin** (``console.scoping.admin_instance_ids``): the role decides, no per-model permission
  grants: they view, change, add and delete the rows of their instances only: every list, search, filter, inline,
  autocomplete, raw-id lookup and action works on a queryset narrowed to those instances; every foreign-key and
  many-to-many choice too; another instance's object is a 404, the same as a missing one. They cannot grant a
  role above their own, nor change a user who belongs to another instance too.
- Platform-level rows (the bus, Django's auth groups and permissions, anything without a path to an instance):
  superusers only.
- Any other staff user: Django's stock permissions (granted by a superuser), unscoped, as before.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.filters import AllValuesFieldListFilter, FieldListFilter
from django.contrib.admin.options import InlineModelAdmin
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.core.paginator import Paginator
from django.db import connection, models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from accounts.models import Instance, Profile, RefreshToken, User
from accounts.services.tokens import refresh_token_revoke
from authz.roles import INSTANCE_ADMIN, LATTICE
from console.scoping import ALL, admin_instance_ids

# Apps whose rows belong to the platform, not to an instance: superusers only.
PLATFORM_APPS = frozenset({"events", "auth", "admin", "contenttypes", "sessions", "guardian"})

# Models that do not carry their instance themselves: the lookup path to it. Every other model is scoped by its
# ``instance`` foreign key or ``instance_id`` column; a model with neither is platform-level.
SCOPE_PATHS: dict[str, str] = {
    "accounts.instance": "pk",
    "accounts.user": "profiles__instance",
    "orders.orderline": "order__instance",
    "orders.orderevent": "order__instance",
    "orders.deadletter": "order__instance",
    "authz.groupmembership": "group__instance",
    "authzen.servicekey": "client__instance",
}

ADMIN_REVOKE_REASON = "admin"


def scope_path(model: type[models.Model]) -> str | None:
    """The lookup from ``model`` to its instance, or ``None`` for a platform-level model."""
    opts = model._meta
    if opts.app_label in PLATFORM_APPS:
        return None
    if opts.label_lower in SCOPE_PATHS:
        return SCOPE_PATHS[opts.label_lower]
    for name in ("instance", "instance_id"):
        try:
            field = opts.get_field(name)
        except FieldDoesNotExist:
            continue
        if field.concrete:
            return field.name
    return None


def scope_queryset(queryset: QuerySet[Any], ids: frozenset[int] | None) -> QuerySet[Any]:
    """``queryset`` narrowed to the instances ``ids`` (``ALL``: unchanged; platform-level model: empty)."""
    if ids is ALL:
        return queryset
    path = scope_path(queryset.model)
    if path is None or not ids:
        return queryset.none()
    wanted = sorted(ids)
    if issubclass(queryset.model, User):  # through a to-many relation: a subquery, no duplicate rows
        return queryset.filter(pk__in=Profile.objects.filter(instance_id__in=wanted).values("user_id"))
    return queryset.filter(**{f"{path}__in": wanted})


def in_scope(obj: models.Model, ids: frozenset[int] | None) -> bool:
    if ids is ALL:
        return True
    path = scope_path(type(obj))
    if path is None or not ids:
        return False
    if path in ("instance", "instance_id"):
        return obj.instance_id in ids  # type: ignore[attr-defined]
    if obj.pk is None:
        return False
    return scope_queryset(type(obj)._default_manager.filter(pk=obj.pk), ids).exists()


def grantable_roles() -> frozenset[str]:
    """The roles an instance admin may give: instance-bound roles at or below their own."""
    return frozenset(name for name, role in LATTICE.roles.items()
                     if role.instance_bound and LATTICE.acts_in(INSTANCE_ADMIN, name))


def _instance_admin_ids(request: HttpRequest) -> frozenset[int] | None:
    """The caller's instances when the role decides (a staff instance admin); ``None`` otherwise."""
    ids = admin_instance_ids(request.user)
    return ids if ids is not ALL and ids else None


def _limit_roles(form_class: type[forms.BaseForm]) -> type[forms.BaseForm]:
    """``form_class`` whose ``role`` offers and accepts only roles an instance admin may grant, and which refuses
    to change a row whose role is already above theirs."""
    allowed = grantable_roles()

    class RoleLimitedForm(form_class):  # type: ignore[valid-type, misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            field = self.fields.get("role")
            if field is not None and getattr(field, "choices", None):
                field.choices = [(value, label) for value, label in field.choices if value in allowed]

        def clean(self) -> dict[str, Any]:
            cleaned = super().clean()
            held = getattr(getattr(self, "instance", None), "role", "") if getattr(self.instance, "pk", None) else ""
            if held and held not in allowed:
                raise forms.ValidationError(f"{held} is above your own role; only a superuser may change it.")
            if "role" in self.fields and cleaned.get("role") and cleaned["role"] not in allowed:
                self.add_error("role", f"You may grant only {', '.join(sorted(allowed))}.")
            return cleaned

    RoleLimitedForm.__name__ = form_class.__name__
    return RoleLimitedForm


class EstimatedCountPaginator(Paginator):
    """Counts at most ``CAP`` + 1 rows (no COUNT over a whole large table on every page); an unfiltered list
    past the cap takes PostgreSQL's row estimate for the table."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        capped = queryset.order_by()[: self.CAP + 1].count()
        if capped <= self.CAP or queryset.query.where:
            return capped
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                           [queryset.model._meta.db_table])
            row = cursor.fetchone()
        return max(capped, int(row[0])) if row and row[0] else capped


class RecentValuesFieldListFilter(AllValuesFieldListFilter):
    """Django's "all values" filter (a plain field without choices), its choices taken from the newest ``SAMPLE``
    rows the caller may see instead of a DISTINCT over the whole table on every page of a list that only grows.
    An older value is still reached through the URL (``?field=value``)."""

    SAMPLE = 1000

    def __init__(self, field: Any, request: HttpRequest, params: Any, model: Any, model_admin: Any,
                 field_path: str) -> None:
        super().__init__(field, request, params, model, model_admin, field_path)
        if not isinstance(self.lookup_choices, QuerySet):
            return
        queryset = self.lookup_choices.model._default_manager.all()
        if self.lookup_choices.model is model:
            queryset = model_admin.get_queryset(request)
        recent = queryset.order_by("-pk").values("pk")[: self.SAMPLE]
        self.lookup_choices = (queryset.model._default_manager.filter(pk__in=recent).distinct()
                               .order_by(field.name).values_list(field.name, flat=True))


def _stock_filter_class(field: Any) -> type[FieldListFilter] | None:
    for test, filter_class in FieldListFilter._field_list_filters:  # the order Django tries them in
        if test(field):
            return filter_class
    return None


class _ScopedPermissions:
    """The permission and queryset rules shared by ModelAdmins and inlines."""

    model: type[models.Model]

    @property
    def platform_level(self) -> bool:
        return scope_path(self.model) is None

    def _role_allows(self, request: HttpRequest, obj: Any, verb: str) -> bool | None:
        """``True``/``False`` when the role decides, ``None`` to defer to the stock permissions."""
        ids = admin_instance_ids(request.user)
        if ids is ALL:
            return None
        if self.platform_level:
            return False
        if not ids:
            return None
        if obj is not None and isinstance(obj, self.model) and not in_scope(obj, ids):
            return False
        return _model_rule(self.model, verb, obj, ids)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        ids = admin_instance_ids(request.user)
        if ids is ALL:
            return queryset
        if self.platform_level:
            return queryset.none()
        return scope_queryset(queryset, ids) if ids else queryset

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # Scale: a <select> of every user or instance (100,000 options, on each inline row) becomes the stock
        # autocomplete, whose answers are scoped like the lists.
        admin_site = self.admin_site  # type: ignore[attr-defined]
        if ("widget" not in kwargs and db_field.related_model in (User, Instance)
                and db_field.name not in self.raw_id_fields  # type: ignore[attr-defined]
                and db_field.name not in self.get_autocomplete_fields(request)  # type: ignore[attr-defined]
                and db_field.name not in self.radio_fields  # type: ignore[attr-defined]
                and admin_site.is_registered(db_field.related_model)):
            kwargs["widget"] = AutocompleteSelect(db_field, admin_site, using=kwargs.get("using"))
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]
        return _scope_choices(field, request)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]
        return _scope_choices(field, request)


def _scope_choices(field: Any, request: HttpRequest) -> Any:
    ids = _instance_admin_ids(request)
    if ids is not None and field is not None and hasattr(field, "queryset"):
        field.queryset = scope_queryset(field.queryset, ids)
    return field


def _model_rule(model: type[models.Model], verb: str, obj: Any, ids: frozenset[int]) -> bool:
    """What an instance admin may do beyond seeing their instances' rows."""
    label = model._meta.label_lower
    if verb in ("module", "view"):
        return True
    if label == "accounts.instance":  # instances are created and deleted by the platform
        return verb == "change"
    if label == "accounts.user":
        if verb in ("add", "delete"):  # members arrive by invitation and leave on the instance's page
            return False
        if verb == "change" and obj is not None:  # a user who belongs elsewhere too is not theirs to change
            return not obj.is_superuser and not Profile.objects.filter(user=obj).exclude(instance_id__in=ids).exists()
    return True


class ScopedInline(_ScopedPermissions, InlineModelAdmin):
    """Beneath every inline: rows of the caller's instances only; the role decides what an instance admin may do."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        decided = self._role_allows(request, None, "view")
        return super().has_view_permission(request, obj) if decided is None else decided

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        decided = self._role_allows(request, None, "add")
        return super().has_add_permission(request, obj) if decided is None else decided

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        decided = self._role_allows(request, None, "change")
        return super().has_change_permission(request, obj) if decided is None else decided

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        decided = self._role_allows(request, None, "delete")
        return super().has_delete_permission(request, obj) if decided is None else decided

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        if _instance_admin_ids(request) is not None:
            formset.form = _limit_roles(formset.form)
        return formset


_SCOPED_INLINES: dict[type, type] = {}


def scoped_inline(inline_class: type[InlineModelAdmin]) -> type[InlineModelAdmin]:
    if issubclass(inline_class, ScopedInline):
        return inline_class
    if inline_class not in _SCOPED_INLINES:
        _SCOPED_INLINES[inline_class] = type(inline_class.__name__, (inline_class, ScopedInline),
                                             {"__module__": inline_class.__module__})
    return _SCOPED_INLINES[inline_class]


class ScopedModelAdmin(_ScopedPermissions, admin.ModelAdmin):
    """Beneath every registered ModelAdmin (see the module's docstring)."""

    show_full_result_count = False  # no second COUNT over the whole table on a filtered page
    paginator = EstimatedCountPaginator
    # Set on an admin whose records are read-only even where actions may change them (its change page shows no
    # Save buttons and refuses a POST).
    read_only_record = False

    def get_list_filter(self, request: HttpRequest) -> Any:
        """Scale: a plain field's "all values" filter lists the values of the newest rows only (no DISTINCT over
        the whole table on every page)."""
        filters = []
        for item in super().get_list_filter(request):
            if isinstance(item, str):
                try:
                    field = get_fields_from_path(self.model, item)[-1]
                except Exception:  # noqa: BLE001 (Django's own checks report a bad name)
                    field = None
                if field is not None and _stock_filter_class(field) is AllValuesFieldListFilter:
                    item = (item, RecentValuesFieldListFilter)
            filters.append(item)
        return filters

    def get_ordering(self, request: HttpRequest) -> list[str] | tuple[str, ...]:
        """Newest first where the admin and the model name no order: lists and autocompletes page stably."""
        return super().get_ordering(request) or self.model._meta.ordering or ("-pk",)

    def has_module_permission(self, request: HttpRequest) -> bool:
        decided = self._role_allows(request, None, "module")
        return super().has_module_permission(request) if decided is None else decided

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        decided = self._role_allows(request, obj, "view")
        return super().has_view_permission(request, obj) if decided is None else decided

    def has_add_permission(self, request: HttpRequest) -> bool:
        decided = self._role_allows(request, None, "add")
        return super().has_add_permission(request) if decided is None else decided

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        decided = self._role_allows(request, obj, "change")
        return super().has_change_permission(request, obj) if decided is None else decided

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        decided = self._role_allows(request, obj, "delete")
        return super().has_delete_permission(request, obj) if decided is None else decided

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[type[InlineModelAdmin]]:
        return [scoped_inline(inline) for inline in super().get_inlines(request, obj)]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return _limit_roles(form) if _instance_admin_ids(request) is not None else form

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str) -> Any:
        # Another instance's object and a missing one answer alike: 404 (the stock admin redirects home).
        raise Http404(f"No {opts.verbose_name} with id {object_id!r}.")

    def changeform_view(self, request: HttpRequest, object_id: str | None = None, form_url: str = "",
                        extra_context: dict[str, Any] | None = None) -> Any:
        if self.read_only_record and object_id is not None:
            if request.method == "POST":
                raise PermissionDenied("This record is read-only; change it through its actions.")
            extra_context = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False,
                             "show_save_and_add_another": False}
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if _instance_admin_ids(request) is None:
            return actions
        # Actions whose stock effect reaches other instances get an instance admin's narrower version.
        label = self.model._meta.label_lower
        if label == "accounts.user" and "revoke_all_tokens" in actions:
            actions["revoke_all_tokens"] = (_revoke_users_tokens_here, "revoke_all_tokens",
                                            "Revoke the selected users' tokens in your instance")
        if label == "accounts.refreshtoken" and "revoke_family" in actions:
            actions["revoke_family"] = (_revoke_families_here, "revoke_family",
                                        "Revoke the whole family (in your instance) of the selected tokens")
        return actions


def _revoke_users_tokens_here(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[User]) -> None:
    from console.services import instance_member_tokens_revoke

    ids = _instance_admin_ids(request) or frozenset()
    users = list(queryset.order_by("pk"))
    instances = list(Instance.objects.filter(pk__in=ids).order_by("pk"))
    revoked = sum(instance_member_tokens_revoke(user=user, instance=instance, reason=ADMIN_REVOKE_REASON,
                                                actor=request.user)
                  for user in users for instance in instances
                  if Profile.objects.filter(user=user, instance=instance).exists())
    model_admin.message_user(request, f"Revoked {revoked} refresh tokens of {len(users)} users in your instance.",
                             messages.SUCCESS)


def _revoke_families_here(model_admin: admin.ModelAdmin, request: HttpRequest,
                          queryset: QuerySet[RefreshToken]) -> None:
    ids = _instance_admin_ids(request) or frozenset()
    families = set(queryset.values_list("family", flat=True))
    tokens = scope_queryset(RefreshToken.objects.filter(family__in=families, revoked_at__isnull=True), ids)
    revoked = 0
    for token in tokens.order_by("pk"):
        revoked += refresh_token_revoke(token=token, reason=ADMIN_REVOKE_REASON, actor=request.user)
    model_admin.message_user(request, f"Revoked {revoked} refresh tokens in {len(families)} families.",
                             messages.SUCCESS)


def scoped_admin_class(admin_class: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    """``admin_class`` with ``ScopedModelAdmin`` beneath it (C3 puts it just above Django's ``ModelAdmin``)."""
    if issubclass(admin_class, ScopedModelAdmin):
        return admin_class
    return type(admin_class.__name__, (admin_class, ScopedModelAdmin),
                {"__module__": admin_class.__module__, "__doc__": admin_class.__doc__})
