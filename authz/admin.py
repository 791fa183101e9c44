"""Read-only admin views: every write goes through authz.services (signals, change feed, guardian mirror)."""

from typing import Any

from django.contrib import admin

from authz.models import Group, GroupMembership, Policy, Resource


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


@admin.register(Group)
class GroupAdmin(ReadOnlyAdmin):
    list_display = ("id", "instance", "name", "description")
    search_fields = ("name",)


@admin.register(GroupMembership)
class GroupMembershipAdmin(ReadOnlyAdmin):
    list_display = ("id", "group", "user", "created_at")
    raw_id_fields = ("group", "user")


@admin.register(Resource)
class ResourceAdmin(ReadOnlyAdmin):
    list_display = ("id", "instance", "name", "parent", "path")
    search_fields = ("name", "path")
    raw_id_fields = ("instance", "parent")
