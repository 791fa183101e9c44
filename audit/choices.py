from django.db import models


class AuditAction(models.TextChoices):
    """The changes that touch access or money; each writes one AuditEntry in the transaction that makes it."""

    ROLE_CHANGE = "role_change", "role change"
    MEMBER_ADDED = "member_added", "member added"
    MEMBER_REMOVED = "member_removed", "member removed"
    INVITATION = "invitation", "invitation"
    TOKEN_REVOCATION = "token_revocation", "token revocation"
    LOCK = "lock", "lock"
    UNLOCK = "unlock", "unlock"
    POLICY_GRANT = "policy_grant", "policy grant"
    POLICY_REVOKE = "policy_revoke", "policy revoke"
    GROUP_CHANGE = "group_change", "group change"
    BALANCE_ADJUSTMENT = "balance_adjustment", "balance adjustment"
    RESTOCK = "restock", "restock"
    OPERATOR_CANCEL = "operator_cancel", "operator cancel"
    DEAD_LETTER_RETRY = "dead_letter_retry", "dead-letter retry"
    PASSWORD_CHANGE = "password_change", "password change"
    TOP_UP = "top_up", "top-up"
    SERVICE_KEY_CREATE = "service_key_create", "service key created"
    SERVICE_KEY_REVOKE = "service_key_revoke", "service key revoked"
