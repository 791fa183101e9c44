"""Read-only admin views: every write goes through authz.services (signals, change feed, guardian mirror)."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.urls import path

from authz.models import Group, GroupMembership, Policy, Resource
from authz.services import policies_remove


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Policy)
class PolicyAdmin(ReadOnlyAdmin):
    list_display = ("id", "instance", "user", "group", "action", "resource_type", "resource_id", "created_at")
    list_filter = ("resource_type", "action")
    search_fields = ("resource_id",)
    raw_id_fields = ("instance", "user", "group")
    change_list_template = "admin/authz/policy/change_list.html"
    actions = ["revoke_selected"]

    def get_search_fields(self, request: Any) -> list[str]:
        """By subject (user email, group name) or by resource (type or id)."""
        return [*super().get_search_fields(request), "resource_type", "user__email", "group__name"]

    def get_urls(self) -> list[Any]:
        from console.authz_pages import bulk_policies_view, explain_view

        def page(view: Any) -> Any:
            return self.admin_site.admin_view(
                lambda request: view(request, admin_site=self.admin_site, opts=self.model._meta))

        return [path("bulk/", page(bulk_policies_view), name="authz_policy_bulk"),
                path("explain/", page(explain_view), name="authz_policy_explain"), *super().get_urls()]

    @admin.action(description="Revoke selected policies (through authz services)")
    def revoke_selected(self, request: Any, queryset: QuerySet[Policy]) -> None:
        from console.scoping import ALL, admin_instance_ids

        allowed = admin_instance_ids(request.user)
        if allowed is not ALL:
            queryset = queryset.filter(instance_id__in=allowed or ())
        by_instance: dict[Any, list[str]] = {}
        for policy in queryset.select_related("instance").order_by("instance_id", "pk"):
            by_instance.setdefault(policy.instance, []).append(policy.as_string())
        removed = sum(policies_remove(instance=instance, policies=texts, actor=request.user)
                      for instance, texts in by_instance.items())
        self.message_user(request, f"Revoked {removed} policy(ies).", messages.SUCCESS)


@admin.register(Group)
class GroupAdmin(ReadOnlyAdmin):
    list_display = ("id", "instance", "name", "description")
    search_fields = ("name",)

    def get_search_fields(self, request: Any) -> list[str]:
        return [*super().get_search_fields(request), "memberships__user__email"]  # by subject (a member)


@admin.register(GroupMembership)
class GroupMembershipAdmin(ReadOnlyAdmin):
    list_display = ("id", "group", "user", "created_at")
    raw_id_fields = ("group", "user")


@admin.register(Resource)
class ResourceAdmin(ReadOnlyAdmin):
    list_display = ("id", "instance", "name", "parent", "path")
    search_fields = ("name", "path")
    raw_id_fields = ("instance", "parent")
