"""Stable machine-readable error codes of the accounts app (the ``code`` of ``{"error": {...}}``).

Plain string constants: services raise ``ApplicationError(message, code=error_codes.X)``.
"""

# --- instances and members ----------------------------------------------------------------------
INSTANCE_NOT_FOUND = "instance_not_found"  # same answer for a missing instance and one the caller does not act for
INSTANCE_SLUG_INVALID = "instance_slug_invalid"
INSTANCE_SLUG_TAKEN = "instance_slug_taken"
MEMBER_NOT_FOUND = "member_not_found"
MEMBER_EXISTS = "member_exists"
USER_NOT_FOUND = "user_not_found"
ROLE_UNKNOWN = "role_unknown"
ROLE_NOT_INSTANCE_BOUND = "role_not_instance_bound"
ROLE_ABOVE_CALLER = "role_above_caller"
MEMBER_ABOVE_CALLER = "member_above_caller"
LAST_INSTANCE_ADMIN = "last_instance_admin"
ROLE_REQUIRED = "role_required"  # the caller's current role does not act in the role the operation needs
ROLE_SWITCH_REQUIRED = "role_switch_required"  # a platform operator must switch into the instance first
ROLE_STALE = "role_stale"  # the token's role is no longer backed by the caller's profile
INSTANCE_TOKEN_REQUIRED = "instance_token_required"  # a member whose token does not act for the instance
INVITATION_NOT_FOUND = "invitation_not_found"  # same answer for a missing invitation and another user's
INVITATION_EXPIRED = "invitation_expired"
INVITATION_NOT_PENDING = "invitation_not_pending"  # accepted or declined already
EXTERNAL_ID_TAKEN = "external_id_taken"  # another member of the instance has this external id

# --- authentication and tokens (lead) -----------------------------------------------------------
INVALID_CREDENTIALS = "invalid_credentials"
WEAK_PASSWORD = "weak_password"
EMAIL_TAKEN = "email_taken"
INSTANCE_REQUIRED = "instance_required"
TOKEN_INVALID = "token_invalid"
TOKEN_EXPIRED = "token_expired"
TOKEN_REUSED = "token_reused"
TOKEN_REVOKED = "token_revoked"
ROLE_SWITCH_DENIED = "role_switch_denied"
ROLE_ALREADY_HELD = "role_already_held"  # a switch to the role the session already acts in
LOCK_SELF = "lock_self"  # an operator may not lock their own account
