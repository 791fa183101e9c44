"""The console's own ModelAdmins: the audit log (read-only for everyone, scoped per instance), and a read-only
profile list (the target of the roles page's links) when accounts registers none."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.contrib.auth.models import Group as AuthGroup
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from accounts.models import Profile
from audit.models import AuditEntry
from authz.roles import LATTICE

# Filters list the values found among this many newest visible entries (bounded work on a large log);
# any other value is reached through the search box or the URL (?instance=<id>, ?actor=<id>).
FILTER_SAMPLE = 1000


class _RecentValuesFilter(admin.SimpleListFilter):
    """Choices from the newest FILTER_SAMPLE entries the user may see, never from a whole table."""

    id_field = ""
    label_field = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        recent = model_admin.get_queryset(request).exclude(**{f"{self.id_field}__isnull": True})
        ids = recent.order_by("-created_at").values_list("pk", flat=True)[:FILTER_SAMPLE]
        pairs = (AuditEntry.objects.filter(pk__in=ids).values_list(self.id_field, self.label_field)
                 .distinct().order_by(self.label_field))
        return [(str(pk), label or str(pk)) for pk, label in pairs]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEntry]) -> QuerySet[AuditEntry]:
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(**{self.id_field: int(value)})


def _shown(values: dict[str, Any], key: str) -> str:
    return json.dumps(values[key], ensure_ascii=False) if key in values else "-"


class InstanceFilter(_RecentValuesFilter):
    title = "instance"
    parameter_name = "instance"
    id_field = "instance_id"
    label_field = "instance_slug"


class ActorFilter(_RecentValuesFilter):
    title = "actor"
    parameter_name = "actor"
    id_field = "actor_id"
    label_field = "actor_email"


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only for everyone, superusers included: no add, no change, no delete, no Save buttons.

    Who sees which entries is ``console.admin_base.ScopedModelAdmin``'s rule (beneath every ModelAdmin): a
    superuser every entry, a staff instance admin their instances' entries (by ``instance_id``), other staff what
    Django's stock permissions grant them.
    """

    list_display = ["created_at", "action", "actor_email", "instance_slug", "target_type", "target_id", "origin",
                    "address", "request_id"]
    list_filter = ["action", ("created_at", admin.DateFieldListFilter), InstanceFilter, ActorFilter]
    search_fields = ["actor_email", "instance_slug", "target_id", "request_id", "=target_type"]
    fields = ["created_at", "action", "actor", "actor_email", "instance_id", "instance_slug", "target_type",
              "target_id", "changes", "before", "after", "request_id", "address", "origin"]
    readonly_fields = fields
    raw_id_fields = ["actor"]
    list_select_related = False
    ordering = ["-created_at", "-id"]
    list_per_page = 50

    @admin.display(description="changes")
    def changes(self, entry: AuditEntry) -> str:
        """Each field of before/after on one row: field, before, after (values as JSON)."""
        before = entry.before if isinstance(entry.before, dict) else {}
        after = entry.after if isinstance(entry.after, dict) else {}
        keys = list(dict.fromkeys([*before, *after]))
        if not keys:
            return "-"
        rows = format_html_join(
            "", '<tr data-field="{}"><th>{}</th><td>{}</td><td>{}</td></tr>',
            ((key, key, _shown(before, key), _shown(after, key)) for key in keys))
        return format_html('<table class="audit-changes"><thead><tr><th>field</th><th>before</th><th>after</th>'
                           "</tr></thead><tbody>{}</tbody></table>", rows)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RoleFilter(admin.SimpleListFilter):
    """The roles of the lattice (from the code, not from a DISTINCT over the profiles)."""

    title = "role"
    parameter_name = "role"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(name, name) for name in LATTICE.roles]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Profile]) -> QuerySet[Profile]:
        value = self.value()
        return queryset if value is None else queryset.filter(role=value)


class ProfileListAdmin(admin.ModelAdmin):
    """Profiles across instances, read-only: a profile's role is changed on its instance's or user's page,
    where the accounts admin revokes the tokens the change invalidates. Scoped by ``ScopedModelAdmin``."""

    list_display = ["user", "instance", "role", "created_at", "updated_at"]
    list_filter = [RoleFilter]
    list_select_related = ["user", "instance"]
    search_fields = ["user__email", "instance__slug"]
    fields = ["user", "instance", "role", "created_at", "updated_at"]
    readonly_fields = fields
    ordering = ["-id"]  # newest first through the primary key (no sort of every profile)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# accounts may register its own profile admin (issue 10's "Users" page); this one stands in until it does.
# console/admin.py is imported after accounts/admin.py (console comes last in INSTALLED_APPS).
if not admin.site.is_registered(Profile):
    admin.site.register(Profile, ProfileListAdmin)


# Django's auth groups are the guardian mirror of authz's groups (authz.services keeps them in step): they are
# not edited by hand, and a second "Groups" beside authz's read wrong.
if admin.site.is_registered(AuthGroup):
    admin.site.unregister(AuthGroup)
