"""Admin console for AuthZEN: service clients (keys shown once, on creation; revoke actions), their keys,
instance-defined resource types with their registered objects, subject properties and conditional
policies (conditions compiled on save; a bad one is a form error naming it)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from authz.roles import LATTICE
from authzen import services
from authzen.conditions import ConditionError, condition_compile
from authzen.models import Policy, ResourceObject, ResourceType, ServiceClient, ServiceKey, SubjectProperties


class ServiceClientForm(forms.ModelForm):
    role = forms.ChoiceField(choices=())

    class Meta:
        model = ServiceClient
        fields = ["instance", "name", "role"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(name, name) for name in LATTICE.instance_roles()]


class ServiceKeyInline(admin.TabularInline):
    """Read-only: prefixes and dates (a key's hash is never shown; the key itself only once)."""

    model = ServiceKey
    fields = ["prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _show_key(model_admin: admin.ModelAdmin, request: HttpRequest, client: ServiceClient, key: str) -> None:
    model_admin.message_user(request, f"New key for {client.name}: {key} — copy it now, it is not shown again.",
                             messages.WARNING)


@admin.register(ServiceClient)
class ServiceClientAdmin(admin.ModelAdmin):
    form = ServiceClientForm
    list_display = ["name", "instance", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["name", "instance__slug"]
    inlines = [ServiceKeyInline]
    actions = ["issue_key", "revoke_keys"]

    def save_model(self, request: HttpRequest, obj: ServiceClient, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            _, key = services.service_key_create(client=obj, actor=request.user)
            _show_key(self, request, obj, key)

    @admin.action(description="Issue a new key for the selected clients", permissions=["change"])
    def issue_key(self, request: HttpRequest, queryset: QuerySet[ServiceClient]) -> None:
        for client in queryset.order_by("pk"):
            _, key = services.service_key_create(client=client, actor=request.user)
            _show_key(self, request, client, key)

    @admin.action(description="Revoke every key of the selected clients", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ServiceClient]) -> None:
        keys = list(ServiceKey.objects.filter(client__in=queryset, revoked_at__isnull=True).order_by("pk"))
        for key in keys:
            services.service_key_revoke(key=key, actor=request.user)
        self.message_user(request, f"Revoked {len(keys)} keys; they stop working within a second.", messages.SUCCESS)


@admin.register(ServiceKey)
class ServiceKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "client", "created_at", "expires_at", "last_used_at", "revoked_at"]
    search_fields = ["prefix", "client__name", "=client__instance__slug"]
    fields = ["prefix", "client", "created_at", "expires_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]
    read_only_record = True  # console.admin_base: no Save buttons; changes go through actions

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ServiceKey]) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True).order_by("pk"))
        for key in keys:
            services.service_key_revoke(key=key, actor=request.user)
        self.message_user(request, f"Revoked {len(keys)} keys; they stop working within a second.", messages.SUCCESS)


class ResourceObjectInline(admin.TabularInline):
    model = ResourceObject
    fields = ["object_id", "properties"]
    extra = 0


class ResourceTypeForm(forms.ModelForm):
    class Meta:
        model = ResourceType
        fields = ["instance", "name", "actions"]

    def clean_name(self) -> str:
        from authz.registry import RESOURCE_TYPES

        name = self.cleaned_data["name"]
        if name in RESOURCE_TYPES:
            raise forms.ValidationError(f"{name} is a built-in resource type and cannot be redefined.")
        return name

    def clean_actions(self) -> list[str]:
        actions = self.cleaned_data["actions"]
        if not isinstance(actions, list) or not actions or not all(isinstance(a, str) and a for a in actions):
            raise forms.ValidationError('A JSON list of action names, e.g. ["read", "write"].')
        return sorted(set(actions))


@admin.register(ResourceType)
class ResourceTypeAdmin(admin.ModelAdmin):
    form = ResourceTypeForm
    list_display = ["name", "instance", "actions"]
    search_fields = ["name", "=instance__slug"]
    inlines = [ResourceObjectInline]

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        for inline_form in formset.forms:  # objects belong to their type's instance
            if inline_form.instance.resource_type_id is None or inline_form.instance.instance_id is None:
                inline_form.instance.instance_id = form.instance.instance_id
        super().save_formset(request, form, formset, change)


@admin.register(SubjectProperties)
class SubjectPropertiesAdmin(admin.ModelAdmin):
    list_display = ["user", "instance", "properties"]
    search_fields = ["user__email", "=instance__slug"]
    raw_id_fields = ["user"]


class PolicyForm(forms.ModelForm):
    class Meta:
        model = Policy
        fields = ["instance", "user", "resource_type", "action", "resource_id", "condition"]
        help_texts = {"user": "Empty: every member of the instance (*).",
                      "condition": 'CEL over subject, resource, action, context, e.g. '
                                   'resource.properties.status != "archived". Empty: always.'}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        rtype, instance = cleaned.get("resource_type"), cleaned.get("instance")
        if rtype is not None and instance is not None and rtype.instance_id != instance.pk:
            self.add_error("resource_type", "The type belongs to another instance.")
        if rtype is not None and cleaned.get("action") not in rtype.actions:
            self.add_error("action", f"One of {', '.join(rtype.actions)}.")
        condition = (cleaned.get("condition") or "").strip()
        cleaned["condition"] = condition
        if condition:
            try:
                condition_compile(condition)
            except ConditionError as exc:
                self.add_error("condition", str(exc))
        return cleaned


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    form = PolicyForm
    list_display = ["__str__", "instance", "resource_type", "action", "resource_id", "condition"]
    search_fields = ["resource_id", "user__email", "=instance__slug"]
    raw_id_fields = ["user"]
