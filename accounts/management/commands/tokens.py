"""``manage.py tokens revoke --user EMAIL | --family ID | --expired [--json]``: refresh tokens from the command line.

``--user`` revokes every refresh token of the user and stops their live access tokens (as "revoke all tokens" in
the admin); ``--family`` revokes one token family; ``--expired`` deletes tokens already past their expiry (what
beat's ``accounts.refresh_tokens_flush`` does after a grace period). Revocations are audited with origin
``command``. Exit status 1 with one line on stderr on any error.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.emails import normalize_email
from accounts.models import RefreshToken, User
from accounts.services.tokens import (
    refresh_token_revoke_family,
    refresh_tokens_flush_expired,
    user_revoke_all_tokens,
)

REASON = "command"


class Command(BaseCommand):
    help = "Revoke refresh tokens: all of a user's, one family, or delete the expired ones."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{revoke}")
        revoke = actions.add_parser("revoke", help="revoke refresh tokens (one of --user, --family, --expired)",
                                    description="Revoke refresh tokens: give exactly one of --user, --family, "
                                                "--expired.")
        which = revoke.add_mutually_exclusive_group(required=True)
        which.add_argument("--user", metavar="EMAIL",
                           help="every refresh token of this user; their access tokens stop within a second")
        which.add_argument("--family", metavar="ID", help="every live token of this family (a UUID)")
        which.add_argument("--expired", action="store_true", help="delete the tokens past their expiry")
        revoke.add_argument("--json", action="store_true", dest="as_json", help="print JSON")

    def handle(self, *args: Any, action: str, user: str | None, family: str | None, expired: bool,
               as_json: bool, **options: Any) -> None:
        if user is not None:
            target = User.objects.filter(email=normalize_email(user)).first()
            if target is None:
                raise CommandError(f"no user {user!r}")
            count = user_revoke_all_tokens(user=target, reason=REASON, actor=None)
            result = {"user": target.email, "revoked": count}
            line = f"revoked {count} refresh tokens of {target.email}; their access tokens stop within a second"
        elif family is not None:
            try:
                family_id = uuid.UUID(family)
            except ValueError:
                raise CommandError(f"--family {family!r} is not a UUID") from None
            if not RefreshToken.objects.filter(family=family_id).exists():
                raise CommandError(f"no refresh token family {family_id}")
            count = refresh_token_revoke_family(family=family_id, reason=REASON, actor=None)
            result = {"family": str(family_id), "revoked": count}
            line = f"revoked {count} refresh tokens of family {family_id}"
        else:
            count = refresh_tokens_flush_expired()
            result = {"expired_deleted": count}
            line = f"deleted {count} expired refresh tokens"
        self.stdout.write(json.dumps(result, sort_keys=True) if as_json else line)
