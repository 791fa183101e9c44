"""The object-level vocabulary callers use: ``can(actor, action, obj)`` and ``filter_visible(actor,
action, queryset)``. Both answer from the process's cache (``authz.cache``), so a warm check does no I/O
and filtering a list costs no query per row. DRF and view glue lives in ``authz.object_permissions``."""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet

from authz.cache import AuthzCache, default_cache
from authz.context import ActingContext, acting_context
from authz.registry import WILDCARD, type_for_model
from authz.role_grants import role_allows


def resolve_object(obj: Any) -> tuple[str, str]:
    """``(resource_type, resource_id)`` of a registered model instance or an explicit pair."""
    if isinstance(obj, tuple) and len(obj) == 2:
        return str(obj[0]), str(obj[1])
    if isinstance(obj, Model):
        rtype = type_for_model(type(obj))
        if rtype is None:
            raise ValueError(f"{type(obj).__name__} is not a registered resource type")
        return rtype, str(obj.pk)
    raise TypeError("obj must be a registered model instance or a (resource_type, resource_id) pair")


def can(actor: ActingContext | Any, action: str, obj: Any, *, cache: AuthzCache | None = None) -> bool:
    """Whether the actor (an ActingContext or a DRF request) may ``action`` the object, in its instance.

    Counts the actor's acting role (``authz.role_grants``) and its policies. An object carrying an
    ``instance_id`` of another instance is always denied.
    """
    ctx = acting_context(actor)
    if ctx is None or ctx.instance_id is None:
        return False
    if isinstance(obj, Model) and getattr(obj, "instance_id", ctx.instance_id) != ctx.instance_id:
        return False
    rtype, rid = resolve_object(obj)
    return (cache or default_cache()).allowed(ctx.instance_id, ctx.user_id, action, rtype, rid, role=ctx.role)


def filter_visible(actor: ActingContext | Any, action: str, queryset: QuerySet, *,
                   cache: AuthzCache | None = None) -> QuerySet:
    """The rows of ``queryset`` the actor may ``action``: scoped to its instance (when the model has one),
    then all of them when the role or a ``*`` policy allows it, else ``pk IN (granted ids)``."""
    ctx = acting_context(actor)
    if ctx is None or ctx.instance_id is None:
        return queryset.none()
    model = queryset.model
    rtype = type_for_model(model)
    if rtype is None:
        raise ValueError(f"{model.__name__} is not a registered resource type")
    if any(f.name == "instance" for f in model._meta.get_fields()):
        queryset = queryset.filter(instance_id=ctx.instance_id)
    if role_allows(ctx.role, action, rtype):
        return queryset
    ids = (cache or default_cache()).visible_ids(ctx.instance_id, ctx.user_id, action, rtype)
    if WILDCARD in ids:
        return queryset
    pk_field = model._meta.pk
    values = []
    for rid in ids:
        try:
            values.append(pk_field.to_python(rid))
        except Exception:  # noqa: BLE001, S112 - an id naming no possible row simply matches nothing
            continue
    return queryset.filter(pk__in=values)
