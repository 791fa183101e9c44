"""ACL storage: policies, groups of users, and folder-shaped resources.

Storage decision: ``Policy`` is the source of truth, one row per (instance, subject, resource_type,
resource_id, action) with a unique index that is also the check index. It needs no object row, so a
policy may name an order that does not exist yet, and ``*`` is just another resource_id. For our own
``Resource`` objects the user grants are mirrored into django-guardian's direct foreign-key tables
(``ResourceUserObjectPermission``, ``ResourceGroupObjectPermission`` with each ``Group`` mirrored by a
``django.contrib.auth`` group), so guardian's own API agrees with us where an object row exists; the
check path never reads guardian.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from accounts.models import Instance


class GroupQuerySet(models.QuerySet["Group"]):
    def for_instance(self, instance: Instance | int) -> GroupQuerySet:
        return self.filter(instance=instance)


class Group(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="authz_groups")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    # django.contrib.auth's group mirroring this one, so guardian's group object permissions can name it
    auth_group = models.OneToOneField("auth.Group", on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="authz_group")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = GroupQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["instance", "name"], name="authz_group_instance_name_unique")]

    def __str__(self) -> str:
        return f"{self.instance_id}:{self.name}"


class GroupMembership(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="authz_memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "group"], name="authz_membership_user_group_unique")]


class ResourceQuerySet(models.QuerySet["Resource"]):
    def for_instance(self, instance: Instance | int) -> ResourceQuerySet:
        return self.filter(instance=instance)


class Resource(models.Model):
    """A named resource; with a parent it sits in a folder tree.

    ``path`` is the materialized path of ids from the root down to this row, ``/3/17/42/``. The subtree of
    a folder is ``path LIKE '/3/17/%'`` (text_pattern_ops index), its ancestors are the ids in its path.
    """

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="authz_resources")
    name = models.CharField(max_length=255)
    parent = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="children")
    path = models.TextField(default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ResourceQuerySet.as_manager()

    class Meta:
        default_permissions = ()
        permissions = [("get", "Can get"), ("update", "Can update"), ("delete", "Can delete")]
        constraints = [models.UniqueConstraint(fields=["instance", "name"], name="authz_resource_instance_name_unique")]
        indexes = [models.Index(fields=["path"], name="authz_resource_path_prefix", opclasses=["text_pattern_ops"])]

    def __str__(self) -> str:
        return self.name

    def ancestor_ids(self) -> list[int]:
        """Ids from the root down to and including this resource."""
        return [int(part) for part in self.path.strip("/").split("/") if part]


class ResourceUserObjectPermission(UserObjectPermissionBase):
    """guardian's direct foreign-key user permission for ``Resource`` (kept in step by authz.services)."""

    content_object = models.ForeignKey(Resource, on_delete=models.CASCADE)


class ResourceGroupObjectPermission(GroupObjectPermissionBase):
    """guardian's direct foreign-key group permission for ``Resource`` (kept in step by authz.services)."""

    content_object = models.ForeignKey(Resource, on_delete=models.CASCADE)


class Policy(models.Model):
    """``subject:action:resource_type:resource_id`` inside one instance; the subject is a user or a group."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="authz_policies")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="authz_policies")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, null=True, blank=True, related_name="policies")
    resource_type = models.CharField(max_length=32)
    action = models.CharField(max_length=32)
    resource_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "policies"
        constraints = [
            # Also the check index: every column of a check is an equality on a prefix of it.
            models.UniqueConstraint(fields=["instance", "user", "resource_type", "action", "resource_id"],
                                    condition=Q(user__isnull=False), name="authz_policy_user_unique"),
            models.UniqueConstraint(fields=["instance", "group", "resource_type", "action", "resource_id"],
                                    condition=Q(group__isnull=False), name="authz_policy_group_unique"),
            models.CheckConstraint(condition=Q(user__isnull=False, group__isnull=True)
                                   | Q(user__isnull=True, group__isnull=False),
                                   name="authz_policy_one_subject"),
        ]
        indexes = [
            models.Index(fields=["instance", "resource_type", "resource_id", "action"], name="authz_policy_object"),
        ]

    def __str__(self) -> str:
        return self.as_string()

    def as_string(self) -> str:
        subject = str(self.user_id) if self.user_id is not None else f"group/{self.group_id}"
        return f"{subject}:{self.action}:{self.resource_type}:{self.resource_id}"
