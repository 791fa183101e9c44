"""The console's own writes: what an instance admin does in the admin that no app's service does in one step."""

from __future__ import annotations

from django.db import transaction

from accounts.models import Instance, User
from accounts.services.instances import member_tokens_revoke
from audit.choices import AuditAction
from audit.services import audit_record


def instance_member_tokens_revoke(*, user: User, instance: Instance, reason: str, actor: User | None) -> int:
    """Revoke ``user``'s refresh tokens in ``instance`` only (an instance admin's "revoke all tokens": the user's
    tokens elsewhere are not theirs to touch); their access tokens there stop acting within a second. Audited
    (``token_revocation``, ``actor``) in the same transaction; returns how many were revoked."""
    with transaction.atomic():
        revoked = member_tokens_revoke(user_id=user.pk, instance_id=instance.pk, reason=reason)
        audit_record(action=AuditAction.TOKEN_REVOCATION, actor=actor, instance=instance, target=user,
                     before=None, after={"instance": instance.slug, "revoked": revoked, "reason": reason[:64]})
    return revoked
