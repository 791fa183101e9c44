"""Writes of the AuthZEN app: service clients and keys, instance-defined types and objects, stored
subject properties, conditional policies. Each owns its transaction; bad input raises ApplicationError."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Instance, Profile
from audit.choices import AuditAction
from audit.services import audit_record
from authz import changefeed
from authz.registry import RESOURCE_TYPES, WILDCARD
from authz.roles import LATTICE
from authzen.conditions import ConditionError, condition_compile
from authzen.error_codes import AuthzenErrorCode as Code
from authzen.index import index_clear
from authzen.models import Policy, ResourceObject, ResourceType, ServiceClient, ServiceKey, SubjectProperties
from saaskit.errors import ApplicationError, NotFoundError

KEY_PREFIX = "sk_"
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
MAX_ACTIONS = 64


def key_hash(key: str) -> str:
    """SHA-256 of a key: keys are 256 random bits, so a fast hash is enough (as for refresh tokens)."""
    return hashlib.sha256(key.encode()).hexdigest()


# --- service clients ------------------------------------------------------------------------------
def _check_role(role: str) -> None:
    if role not in LATTICE.instance_roles():
        raise ApplicationError(f"Unknown instance role {role!r}.", code=Code.INVALID_ROLE,
                               fields={"role": [f"one of {', '.join(LATTICE.instance_roles())}"]})


def service_key_create(*, client: ServiceClient, expires_at: datetime | None = None,
                       actor: Any = None) -> tuple[ServiceKey, str]:
    """A new key for ``client``: returns the row and the key itself (shown once, never stored). Audited
    (``service_key_create``: the prefix, never the key) in the same transaction."""
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError("expires_at must lie in the future.", code="invalid",
                               fields={"expires_at": ["must lie in the future"]})
    prefix = KEY_PREFIX + secrets.token_hex(4)
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        row = ServiceKey.objects.create(client=client, prefix=prefix, key_hash=key_hash(key), expires_at=expires_at)
        audit_record(action=AuditAction.SERVICE_KEY_CREATE, actor=actor, instance=client.instance, target=row,
                     before=None, after={"client": client.name, "role": client.role, "prefix": prefix,
                                         "expires_at": expires_at})
    return row, key


@transaction.atomic
def service_client_create(*, instance: Instance, name: str, role: str, expires_at: datetime | None = None,
                          actor: Any = None) -> tuple[ServiceClient, ServiceKey, str]:
    """A service client with its first key (the key is returned once)."""
    _check_role(role)
    try:
        with transaction.atomic():
            client = ServiceClient.objects.create(instance=instance, name=name, role=role)
    except IntegrityError:
        raise ApplicationError(f"A service client named {name!r} exists already.", code=Code.DUPLICATE_NAME,
                               fields={"name": ["already taken"]}) from None
    row, key = service_key_create(client=client, expires_at=expires_at, actor=actor)
    return client, row, key


def service_client_delete(*, client: ServiceClient) -> None:
    """Delete the client and its keys: they stop authenticating within a second (the key cache hears it from
    the change feed: ``authzen.receivers``)."""
    client.delete()


def service_key_revoke(*, key: ServiceKey, actor: Any = None) -> bool:
    """Revoke one key (idempotent); it stops authenticating within a second. Audited (``service_key_revoke``)
    when this call revoked it."""
    with transaction.atomic():
        now = timezone.now()
        revoked = bool(ServiceKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now))
        if revoked:
            client = key.client
            changefeed.publish_on_commit(kind=changefeed.KEY, instance_id=client.instance_id)
            audit_record(action=AuditAction.SERVICE_KEY_REVOKE, actor=actor, instance=client.instance, target=key,
                         before={"client": client.name, "prefix": key.prefix, "revoked_at": None},
                         after={"revoked_at": now})
    return revoked


def service_key_touch(*, key_id: int, now: datetime, every_seconds: float = 60.0) -> None:
    """Record use, at most once a minute per key (one conditional UPDATE, no read)."""
    stale = now - timedelta(seconds=every_seconds)
    ServiceKey.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale), pk=key_id).update(
        last_used_at=now)


# --- instance-defined resource types and their objects --------------------------------------------
def _check_name(value: object, field: str, what: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 32 or not set(value) <= _NAME_CHARS \
            or not value[0].isalpha():
        raise ApplicationError(f"Invalid {what} {value!r}: 1 to 32 lower-case letters, digits, '_' or '-', "
                               "starting with a letter.", code="invalid", fields={field: ["invalid name"]})
    return value


def resource_type_create(*, instance: Instance, name: str, actions: Sequence[str]) -> ResourceType:
    """Define a type with its actions. Built-in types (orders, products, ...) cannot be redefined."""
    _check_name(name, "name", "type name")
    if name in RESOURCE_TYPES:
        raise ApplicationError(f"{name!r} is a built-in resource type and cannot be redefined.",
                               code=Code.BUILTIN_TYPE, fields={"name": ["built-in type"]})
    if not actions or len(actions) > MAX_ACTIONS:
        raise ApplicationError(f"Give 1 to {MAX_ACTIONS} actions.", code="invalid", fields={"actions": ["1 to 64"]})
    names = sorted({_check_name(a, "actions", "action name") for a in actions})
    try:
        with transaction.atomic():
            rtype = ResourceType.objects.create(instance=instance, name=name, actions=names)
    except IntegrityError:
        raise ApplicationError(f"A type named {name!r} exists already.", code=Code.DUPLICATE_NAME,
                               fields={"name": ["already taken"]}) from None
    index_clear()
    return rtype


def resource_object_upsert(*, rtype: ResourceType, object_id: str, properties: dict[str, Any]) -> ResourceObject:
    """Register an object of ``rtype`` (or replace its stored properties)."""
    if not isinstance(object_id, str) or not 1 <= len(object_id) <= 255 or object_id == WILDCARD:
        raise ApplicationError("An object id is 1 to 255 characters and not '*'.", code="invalid",
                               fields={"id": ["invalid id"]})
    if not isinstance(properties, dict):
        raise ApplicationError("properties must be an object.", code="invalid", fields={"properties": ["object"]})
    obj, _ = ResourceObject.objects.update_or_create(
        resource_type=rtype, object_id=object_id, defaults={"instance_id": rtype.instance_id,
                                                            "properties": properties})
    index_clear()
    return obj


def subject_properties_set(*, instance: Instance, user_id: int, properties: dict[str, Any]) -> SubjectProperties:
    if not Profile.objects.filter(instance=instance, user_id=user_id).exists():
        raise NotFoundError("Member not found.", code="member_not_found")
    if not isinstance(properties, dict):
        raise ApplicationError("properties must be an object.", code="invalid", fields={"properties": ["object"]})
    row, _ = SubjectProperties.objects.update_or_create(instance=instance, user_id=user_id,
                                                        defaults={"properties": properties})
    index_clear()
    return row


# --- conditional policies -------------------------------------------------------------------------
def policy_create(*, instance: Instance, subject: str, rtype: ResourceType, action: str,
                  resource_id: str = WILDCARD, condition: str = "") -> Policy:
    """A policy on an instance-defined type. ``subject`` is a member's user id or ``*``; the condition is
    compiled here (400 naming the error) so an evaluation never meets a broken one."""
    if rtype.instance_id != instance.pk:
        raise NotFoundError("Resource type not found.", code=Code.RESOURCE_TYPE_NOT_FOUND)
    if action not in rtype.actions:
        raise ApplicationError(f"{rtype.name} has no action {action!r} (allowed: {', '.join(rtype.actions)}).",
                               code=Code.UNKNOWN_ACTION, fields={"action": [f"one of {', '.join(rtype.actions)}"]})
    user_id: int | None = None
    if subject != WILDCARD:
        if not (isinstance(subject, str) and subject.isdigit() and len(subject) < 19
                and Profile.objects.filter(instance=instance, user_id=int(subject)).exists()):
            raise ApplicationError(f"No member {subject!r} in this instance (give a user id or '*').",
                                   code=Code.UNKNOWN_SUBJECT, fields={"subject": ["unknown member"]})
        user_id = int(subject)
    if not isinstance(resource_id, str) or not 1 <= len(resource_id) <= 255:
        raise ApplicationError("resource_id is 1 to 255 characters or '*'.", code="invalid",
                               fields={"resource_id": ["invalid id"]})
    condition = (condition or "").strip()
    if condition:
        try:
            condition_compile(condition)
        except ConditionError as exc:
            raise ApplicationError(f"Invalid condition: {exc}", code=Code.INVALID_CONDITION,
                                   fields={"condition": [str(exc)]}) from None
    policy, _ = Policy.objects.get_or_create(instance=instance, user_id=user_id, resource_type=rtype, action=action,
                                             resource_id=resource_id, condition=condition)
    index_clear()
    return policy


def policy_delete(*, policy: Policy) -> None:
    policy.delete()
    index_clear()
