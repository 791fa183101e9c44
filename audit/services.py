"""Writing the audit log. Every app may call this (audit sits at the bottom, beside saaskit)."""

from __future__ import annotations

from typing import Any, Protocol

from django.db import models, router, transaction

from audit.choices import AuditAction
from audit.models import AuditEntry
from saaskit.request_context import current_request_context


class AuditOutsideTransaction(RuntimeError):
    """audit_record was called with no transaction open: the entry could commit without the change, or the
    change without the entry."""


class _InstanceLike(Protocol):
    pk: Any
    slug: str


Target = models.Model | tuple[str, Any] | None


def _target_key(target: Target) -> tuple[str, str]:
    if target is None:
        return "", ""
    if isinstance(target, models.Model):
        return target._meta.label_lower, str(target.pk)
    kind, pk = target
    return str(kind), str(pk)


def audit_record(
    *,
    action: AuditAction | str,
    actor: Any,
    instance: _InstanceLike | None,
    target: Target,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write one audit entry for a change the caller is making, in the caller's transaction.

    - Must be called inside ``transaction.atomic()`` (the one that writes the change): raises
      ``AuditOutsideTransaction`` otherwise, so an entry never exists without its change or the reverse.
    - ``actor``: the user who acted, or None (or an anonymous user) for the system; the email is copied. A
      principal with no user row (an AuthZEN service client) is kept by name in ``actor_email`` only.
    - ``instance``: the tenant the change belongs to (anything with ``pk`` and ``slug``), or None for a
      platform-level change; copied, not referenced.
    - ``target``: the changed row (a model instance) or ``("app_label.model", id)``, or None.
    - ``before``/``after``: JSON-able dicts of the fields that changed (Decimal, datetime and UUID allowed).
    - The request id, client address and origin come from ``saaskit.request_context`` (set by
      ``RequestContextMiddleware``; empty with origin ``command`` outside a request).
    """
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action {action!r}")
    if not transaction.get_connection(router.db_for_write(AuditEntry)).in_atomic_block:
        raise AuditOutsideTransaction(f"audit_record({action}) must run inside the transaction making the change")
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    actor_email = (getattr(actor, "email", "") or "") if actor is not None else ""
    if actor is not None and getattr(actor, "pk", None) is None:  # a principal with no user row (a service client)
        actor_email, actor = str(actor)[:254], None
    target_type, target_id = _target_key(target)
    context = current_request_context()
    return AuditEntry.objects.create(
        actor=actor,
        actor_email=actor_email,
        instance_id=instance.pk if instance is not None else None,
        instance_slug=instance.slug if instance is not None else "",
        action=str(action),
        target_type=target_type,
        target_id=target_id,
        before=before,
        after=after,
        request_id=context.request_id,
        address=context.address,
        origin=context.origin,
    )
