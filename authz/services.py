"""Writes of the ACL: policies, groups and resources. Every change owns its transaction, sends
``policy_updated`` inside it and appends to the change feed after commit (caches in every process)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from django.contrib.auth.models import Group as AuthGroup
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from accounts.models import Instance, Profile
from audit.choices import AuditAction
from audit.services import audit_record
from authz import changefeed
from authz.error_codes import AuthzErrorCode
from authz.models import (
    Group,
    GroupMembership,
    Policy,
    Resource,
    ResourceGroupObjectPermission,
    ResourceUserObjectPermission,
)
from authz.policy import GROUP, USER, PolicyError, PolicySpec, parse_policy
from authz.registry import WILDCARD, get_type
from authz.signals import policy_updated
from saaskit.errors import ApplicationError, NotFoundError

MAX_POLICIES_PER_CALL = 1000
_SUBJECT_BROADCAST_LIMIT = 1000


# --- change notification ------------------------------------------------------------------------
def _next_version() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('authz_policy_version_seq')")
        return int(cursor.fetchone()[0])


def _policies_changed(*, instance: Instance | int, subject_ids: Iterable[int] | None,
                      resource_types: Iterable[str]) -> int:
    """Record a change inside the caller's transaction: the signal now, the change feed after commit.

    ``subject_ids=None`` means every subject of the instance (the payload carries an empty list).
    """
    instance_obj = instance if isinstance(instance, Instance) else Instance.objects.filter(pk=instance).first()
    if instance_obj is None:  # the instance itself is being deleted: nobody is left to tell
        return 0
    subjects = None if subject_ids is None else sorted(set(subject_ids))
    if subjects is not None and len(subjects) > _SUBJECT_BROADCAST_LIMIT:
        subjects = None
    types = sorted(set(resource_types))
    version = _next_version()
    policy_updated.send(sender=Policy, instance=instance_obj,
                        payload={"subject_ids": subjects or [], "resource_types": types, "version": version})
    transaction.on_commit(partial(changefeed.publish, instance_id=instance_obj.pk, subject_ids=subjects,
                                  resource_types=types, version=version))
    return version


def _group_member_ids(group_ids: Iterable[int]) -> list[int] | None:
    ids = list(GroupMembership.objects.filter(group_id__in=list(group_ids)).values_list("user_id", flat=True)
               [:_SUBJECT_BROADCAST_LIMIT + 1])
    return None if len(ids) > _SUBJECT_BROADCAST_LIMIT else ids


# --- policies -----------------------------------------------------------------------------------
def policies_validate(*, instance: Instance, policies: Sequence[object],
                      members_only: bool = True) -> list[PolicySpec]:
    """Parse and check every string against the instance; raise PolicyError naming the first bad part.

    Subjects must be members of ``instance`` (users with a profile in it) or its groups; ids of our own
    hierarchical resources must exist in it. Other resource ids need no row (the object may come later).
    ``members_only=False`` (removing) also accepts a user who is no longer a member, so what they left
    behind can be cleaned.
    """
    if len(policies) > MAX_POLICIES_PER_CALL:
        raise ApplicationError(f"At most {MAX_POLICIES_PER_CALL} policies per call.",
                               code=AuthzErrorCode.INVALID_POLICY, fields={"policies": ["too many"]})
    single = len(policies) == 1
    specs = [parse_policy(text, index=None if single else i) for i, text in enumerate(policies)]
    user_ids = {s.subject_id for s in specs if s.subject_kind == USER}
    group_ids = {s.subject_id for s in specs if s.subject_kind == GROUP}
    resource_ids = {int(s.resource_id) for s in specs
                    if get_type(s.resource_type).hierarchical and s.resource_id != WILDCARD}  # type: ignore[union-attr]
    if not members_only:
        known_users = user_ids
    else:
        known_users = set(Profile.objects.filter(instance=instance, user_id__in=user_ids)
                          .values_list("user_id", flat=True)) if user_ids else set()
    known_groups = set(Group.objects.filter(instance=instance, pk__in=group_ids)
                       .values_list("pk", flat=True)) if group_ids else set()
    known_resources = set(Resource.objects.filter(instance=instance, pk__in=resource_ids)
                          .values_list("pk", flat=True)) if resource_ids else set()
    for i, spec in enumerate(specs):
        index = None if single else i
        text = spec.as_string()
        if spec.subject_kind == USER and spec.subject_id not in known_users:
            raise PolicyError(text, "subject", f"no user {spec.subject_id} in this instance",
                              code=AuthzErrorCode.UNKNOWN_SUBJECT, index=index)
        if spec.subject_kind == GROUP and spec.subject_id not in known_groups:
            raise PolicyError(text, "subject", f"no group {spec.subject_id} in this instance",
                              code=AuthzErrorCode.UNKNOWN_SUBJECT, index=index)
        if (get_type(spec.resource_type).hierarchical and spec.resource_id != WILDCARD  # type: ignore[union-attr]
                and int(spec.resource_id) not in known_resources):
            raise PolicyError(text, "resource_id", f"no {spec.resource_type} {spec.resource_id} in this instance",
                              code=AuthzErrorCode.INVALID_RESOURCE_ID, index=index)
    return specs


def _spec_q(spec: PolicySpec) -> Q:
    subject = Q(user_id=spec.subject_id) if spec.subject_kind == USER else Q(group_id=spec.subject_id)
    return subject & Q(resource_type=spec.resource_type, action=spec.action, resource_id=spec.resource_id)


def _subjects_of(specs: Sequence[PolicySpec]) -> list[int] | None:
    users = {s.subject_id for s in specs if s.subject_kind == USER}
    groups = {s.subject_id for s in specs if s.subject_kind == GROUP}
    if not groups:
        return sorted(users)
    members = _group_member_ids(groups)
    return None if members is None else sorted(users | set(members))


def _guardian_permissions() -> dict[str, Permission]:
    ct = ContentType.objects.get_for_model(Resource)
    return {p.codename: p for p in Permission.objects.filter(content_type=ct)}


def _mirror_to_guardian(specs: Sequence[PolicySpec], *, add: bool) -> None:
    """Keep guardian's direct FK tables for Resource in step with grants on specific resources (users, and
    groups through their mirrored ``auth.Group``). ``*`` grants have no object row and are not mirrored."""
    mirrored = [s for s in specs if s.resource_type == "resources" and s.resource_id != WILDCARD]
    if not mirrored:
        return
    perms = _guardian_permissions()
    group_ids = {s.subject_id for s in mirrored if s.subject_kind == GROUP}
    auth_groups = dict(Group.objects.filter(pk__in=group_ids).values_list("pk", "auth_group_id")) if group_ids else {}
    users = [s for s in mirrored if s.subject_kind == USER]
    groups = [s for s in mirrored if s.subject_kind == GROUP and auth_groups.get(s.subject_id)]
    if add:
        ResourceUserObjectPermission.objects.bulk_create(
            [ResourceUserObjectPermission(user_id=s.subject_id, permission=perms[s.action],
                                          content_object_id=int(s.resource_id)) for s in users],
            ignore_conflicts=True)
        ResourceGroupObjectPermission.objects.bulk_create(
            [ResourceGroupObjectPermission(group_id=auth_groups[s.subject_id], permission=perms[s.action],
                                           content_object_id=int(s.resource_id)) for s in groups],
            ignore_conflicts=True)
        return
    user_q, group_q = Q(pk__in=[]), Q(pk__in=[])
    for s in users:
        user_q |= Q(user_id=s.subject_id, permission=perms[s.action], content_object_id=int(s.resource_id))
    for s in groups:
        group_q |= Q(group_id=auth_groups[s.subject_id], permission=perms[s.action],
                     content_object_id=int(s.resource_id))
    ResourceUserObjectPermission.objects.filter(user_q).delete()
    ResourceGroupObjectPermission.objects.filter(group_q).delete()


def policies_upsert(*, instance: Instance, policies: Sequence[object], actor: Any = None) -> list[PolicySpec]:
    """Grant every policy, atomically: one invalid string and none is written. Existing ones are kept.
    Audited (``policy_grant``, the policies newly granted, ``actor``) in the same transaction."""
    specs = policies_validate(instance=instance, policies=policies)
    if not specs:
        return []
    with transaction.atomic():
        existing = Policy.objects.filter(instance=instance).filter(_any_q(specs))
        held = {_row_string(row) for row in existing.values("user_id", "group_id", "action", "resource_type",
                                                                "resource_id")}
        granted = [s.as_string() for s in specs if s.as_string() not in held]
        if granted:
            audit_record(action=AuditAction.POLICY_GRANT, actor=actor, instance=instance,
                         target=("authz.policy", ""), before=None, after={"policies": granted})
        Policy.objects.bulk_create(
            [Policy(instance=instance, user_id=s.subject_id if s.subject_kind == USER else None,
                    group_id=s.subject_id if s.subject_kind == GROUP else None, resource_type=s.resource_type,
                    action=s.action, resource_id=s.resource_id) for s in specs],
            ignore_conflicts=True)
        _mirror_to_guardian(specs, add=True)
        _policies_changed(instance=instance, subject_ids=_subjects_of(specs),
                          resource_types={s.resource_type for s in specs})
    return specs


def _any_q(specs: Sequence[PolicySpec]) -> Q:
    q = Q()
    for spec in specs:
        q |= _spec_q(spec)
    return q


def _row_string(row: dict[str, Any]) -> str:
    subject = str(row["user_id"]) if row["user_id"] is not None else f"group/{row['group_id']}"
    return f"{subject}:{row['action']}:{row['resource_type']}:{row['resource_id']}"


def policies_remove(*, instance: Instance, policies: Sequence[object], actor: Any = None) -> int:
    """Revoke every policy, atomically (one invalid string and none is removed); a user subject need not be
    a member any more. Returns rows removed. Audited (``policy_revoke``, the policies removed) when any went."""
    specs = policies_validate(instance=instance, policies=policies, members_only=False)
    if not specs:
        return 0
    q = Q()
    for spec in specs:
        q |= _spec_q(spec)
    with transaction.atomic():
        subjects = _subjects_of(specs)
        present = sorted(_row_string(row) for row in Policy.objects.filter(instance=instance).filter(q).values(
            "user_id", "group_id", "action", "resource_type", "resource_id"))
        deleted, _ = Policy.objects.filter(instance=instance).filter(q).delete()
        if deleted:
            audit_record(action=AuditAction.POLICY_REVOKE, actor=actor, instance=instance,
                         target=("authz.policy", ""), before={"policies": present}, after=None)
        _mirror_to_guardian(specs, add=False)
        if deleted:
            _policies_changed(instance=instance, subject_ids=subjects,
                              resource_types={s.resource_type for s in specs})
    return deleted


def policies_purge_subject(*, user_id: int) -> int:
    """Remove every policy and group membership of a user in every instance (account deleted)."""
    with transaction.atomic():
        instance_ids = set(Policy.objects.filter(user_id=user_id).values_list("instance_id", flat=True))
        instance_ids |= set(GroupMembership.objects.filter(user_id=user_id)
                            .values_list("group__instance_id", flat=True))
        deleted, _ = Policy.objects.filter(user_id=user_id).delete()
        GroupMembership.objects.filter(user_id=user_id).delete()
        AuthGroup.user_set.through.objects.filter(user_id=user_id, group__authz_group__isnull=False).delete()
        ResourceUserObjectPermission.objects.filter(user_id=user_id).delete()
        for instance_id in sorted(instance_ids):
            _policies_changed(instance=instance_id, subject_ids=[user_id], resource_types=[])
    return deleted


def policies_purge_member(*, instance: Instance, user_id: int) -> int:
    """Remove a user's policies and group memberships in one instance (they left it, or were removed), so a
    user re-added later starts from their new role alone. Other instances keep theirs. Owns its transaction;
    sends ``policy_updated`` and refreshes every process's cache after commit when anything went.
    Returns the policies removed."""
    with transaction.atomic():
        policies = Policy.objects.filter(instance=instance, user_id=user_id)
        memberships = GroupMembership.objects.filter(user_id=user_id, group__instance=instance)
        group_ids = list(memberships.values_list("group_id", flat=True))
        types = set(policies.values_list("resource_type", flat=True).distinct())
        if group_ids:
            types |= set(Policy.objects.filter(group_id__in=group_ids).values_list("resource_type", flat=True)
                         .distinct())
        deleted, _ = policies.delete()
        memberships.delete()
        AuthGroup.user_set.through.objects.filter(user_id=user_id, group__authz_group__instance=instance).delete()
        mirrored, _ = ResourceUserObjectPermission.objects.filter(user_id=user_id,
                                                                  content_object__instance=instance).delete()
        if deleted or group_ids or mirrored:
            _policies_changed(instance=instance, subject_ids=[user_id], resource_types=types)
    return deleted


def policies_purge_object(*, resource_type: str, resource_id: str, instance_id: int | None = None) -> int:
    """Remove every policy naming one object (the object was deleted). ``*`` policies stay."""
    if resource_id == WILDCARD:
        return 0
    qs = Policy.objects.filter(resource_type=resource_type, resource_id=str(resource_id))
    if instance_id is not None:
        qs = qs.filter(instance_id=instance_id)
    with transaction.atomic():
        rows = list(qs.values_list("instance_id", "user_id", "group_id"))
        if not rows:
            return 0
        deleted, _ = qs.delete()
        for iid in sorted({r[0] for r in rows}):
            users = {r[1] for r in rows if r[0] == iid and r[1] is not None}
            groups = {r[2] for r in rows if r[0] == iid and r[2] is not None}
            members = _group_member_ids(groups) if groups else []
            subjects = None if members is None else users | set(members)
            _policies_changed(instance=iid, subject_ids=subjects, resource_types=[resource_type])
    return deleted


# --- groups -------------------------------------------------------------------------------------
def group_create(*, instance: Instance, name: str, description: str = "") -> Group:
    try:
        with transaction.atomic():
            group = Group.objects.create(instance=instance, name=name, description=description)
            group.auth_group = AuthGroup.objects.create(name=f"authz:{instance.pk}:{group.pk}")
            group.save(update_fields=["auth_group"])
            return group
    except IntegrityError:
        raise ApplicationError(f"A group named {name!r} exists already.", code=AuthzErrorCode.DUPLICATE_NAME,
                               fields={"name": ["already taken"]}) from None


def group_add_users(*, instance: Instance, group: Group, user_ids: Sequence[int], actor: Any = None) -> None:
    """Add users (members of the instance) to the group; already-present ones are kept. Audited
    (``group_change``, the members before and after) in the same transaction when anyone was added."""
    if group.instance_id != instance.pk:
        raise NotFoundError("Group not found.", code=AuthzErrorCode.GROUP_NOT_FOUND)
    wanted = set(user_ids)
    known = set(Profile.objects.filter(instance=instance, user_id__in=wanted).values_list("user_id", flat=True))
    missing = sorted(wanted - known)
    if missing:
        raise ApplicationError(f"No user {missing[0]} in this instance.", code=AuthzErrorCode.UNKNOWN_USER,
                               fields={"userId": [f"unknown user {m}" for m in missing]})
    with transaction.atomic():
        before = sorted(GroupMembership.objects.filter(group=group).values_list("user_id", flat=True))
        GroupMembership.objects.bulk_create([GroupMembership(group=group, user_id=u) for u in sorted(wanted)],
                                            ignore_conflicts=True)
        if wanted - set(before):
            audit_record(action=AuditAction.GROUP_CHANGE, actor=actor, instance=instance, target=group,
                         before={"members": before}, after={"members": sorted(set(before) | wanted)})
        if group.auth_group_id is not None:  # guardian's view of the group
            through = AuthGroup.user_set.through
            through.objects.bulk_create([through(group_id=group.auth_group_id, user_id=u) for u in sorted(wanted)],
                                        ignore_conflicts=True)
        if GroupMembership.objects.filter(group=group).exists() and Policy.objects.filter(group=group).exists():
            types = set(Policy.objects.filter(group=group).values_list("resource_type", flat=True).distinct())
            _policies_changed(instance=instance, subject_ids=wanted, resource_types=types)


def group_authorize(*, instance: Instance, group: Group, resource_ids: Sequence[int],
                    action: str = "get", actor: Any = None) -> None:
    """Grant the group ``action`` on each resource (merged with its existing grants)."""
    if group.instance_id != instance.pk:
        raise NotFoundError("Group not found.", code=AuthzErrorCode.GROUP_NOT_FOUND)
    wanted = set(resource_ids)
    known = set(Resource.objects.filter(instance=instance, pk__in=wanted).values_list("pk", flat=True))
    missing = sorted(wanted - known)
    if missing:
        raise ApplicationError(f"No resource {missing[0]} in this instance.",
                               code=AuthzErrorCode.RESOURCE_NOT_FOUND,
                               fields={"resourceId": [f"unknown resource {m}" for m in missing]})
    policies_upsert(instance=instance, policies=[f"group/{group.pk}:{action}:resources:{r}" for r in sorted(wanted)],
                    actor=actor)


# --- resources (folders) ------------------------------------------------------------------------
def _resource_parent(*, instance: Instance, parent_id: int | None) -> Resource | None:
    if parent_id is None:
        return None
    parent = Resource.objects.filter(instance=instance, pk=parent_id).first()
    if parent is None:
        raise ApplicationError(f"No resource {parent_id} in this instance.", code=AuthzErrorCode.INVALID_PARENT,
                               fields={"parentId": ["unknown resource"]})
    return parent


def resource_create(*, instance: Instance, name: str, parent_id: int | None = None) -> Resource:
    parent = _resource_parent(instance=instance, parent_id=parent_id)
    try:
        with transaction.atomic():
            resource = Resource.objects.create(instance=instance, name=name, parent=parent)
            resource.path = f"{parent.path if parent else '/'}{resource.pk}/"
            resource.save(update_fields=["path"])
    except IntegrityError:
        raise ApplicationError(f"A resource named {name!r} exists already.", code=AuthzErrorCode.DUPLICATE_NAME,
                               fields={"name": ["already taken"]}) from None
    return resource


def resource_move(*, instance: Instance, resource: Resource, parent_id: int | None) -> Resource:
    """Move a resource (and its subtree) under another parent. Grants follow the ids: what was granted on
    the subtree stays, grants inherited from the old ancestors stop applying, the new ancestors' start."""
    with transaction.atomic():
        resource = Resource.objects.select_for_update().get(pk=resource.pk, instance=instance)
        parent = _resource_parent(instance=instance, parent_id=parent_id)
        if parent is not None and parent.path.startswith(resource.path):
            raise ApplicationError("A resource cannot move below itself.", code=AuthzErrorCode.INVALID_PARENT,
                                   fields={"parentId": ["would make a cycle"]})
        old_prefix = resource.path
        new_prefix = f"{parent.path if parent else '/'}{resource.pk}/"
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE authz_resource SET path = %s || substr(path, %s) WHERE instance_id = %s AND path LIKE %s",
                [new_prefix, len(old_prefix) + 1, instance.pk, old_prefix + "%"])
        Resource.objects.filter(pk=resource.pk).update(parent=parent)
        _policies_changed(instance=instance, subject_ids=None, resource_types=["resources"])
    resource.refresh_from_db()
    return resource


def resource_delete(*, instance: Instance, resource: Resource) -> int:
    """Delete a resource, its subtree and every policy naming any of them. Returns resources deleted."""
    with transaction.atomic():
        ids = [str(pk) for pk in Resource.objects.filter(instance=instance, path__startswith=resource.path)
               .values_list("pk", flat=True)]
        Policy.objects.filter(instance=instance, resource_type="resources", resource_id__in=ids).delete()
        deleted = Resource.objects.filter(instance=instance, pk__in=[int(i) for i in ids]).delete()[1].get(
            "authz.Resource", 0)
        _policies_changed(instance=instance, subject_ids=None, resource_types=["resources"])
    return deleted


# --- event-driven entry points (called by authz.consumers; tests call them directly) ------------------
def policies_apply_requested(*, instance_id: int | None, policies: Sequence[object], remove: bool) -> list[str]:
    """Apply the policies of an ``event-upsert-policy`` / ``event-remove-policy`` event.

    Unlike the API, an event cannot be answered with a 400: strings that are invalid for the instance
    are skipped (and returned, for the log) and the valid ones are applied together. Idempotent.
    """
    import logging

    if instance_id is None:
        return [str(p) for p in policies]
    instance = Instance.objects.filter(pk=instance_id).first()
    if instance is None:
        return [str(p) for p in policies]
    valid: list[object] = []
    rejected: list[str] = []
    for text in policies:
        try:
            policies_validate(instance=instance, policies=[text], members_only=not remove)
            valid.append(text)
        except ApplicationError:
            rejected.append(str(text))
    for start in range(0, len(valid), MAX_POLICIES_PER_CALL):
        chunk = valid[start:start + MAX_POLICIES_PER_CALL]
        if remove:
            policies_remove(instance=instance, policies=chunk)
        else:
            policies_upsert(instance=instance, policies=chunk)
    if rejected:
        logging.getLogger(__name__).warning("skipped %d invalid policies for instance %s: %s", len(rejected),
                                            instance_id, rejected[:10])
    return rejected


def cache_warm_for(*, user_id: int, instance_slug: str | None) -> bool:
    """Load a freshly authenticated subject into this process's cache (event-account-authenticated)."""
    from authz.cache import default_cache

    if instance_slug is None:
        return False
    instance_id = Instance.objects.filter(slug=instance_slug).values_list("pk", flat=True).first()
    if instance_id is None:
        return False
    default_cache().warm(instance_id, user_id)
    return True
