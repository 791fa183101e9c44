"""Changing a password. Whatever the path (this service, the admin, ``manage.py changepassword``), saving a
new password revokes every refresh token of the user and stops their live access tokens: ``User.save``
calls ``accounts.services.tokens.user_revoke_all_tokens`` (see the comment there)."""

from __future__ import annotations

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from accounts import error_codes
from accounts.models import User
from accounts.throttling import attempt_give_back, login_attempt_take
from saaskit.errors import ApplicationError


def user_password_change(*, user: User, current_password: str, new_password: str, client_address: str) -> None:
    """Set ``new_password`` after checking ``current_password``; every token of the user stops.

    A wrong current password is a 400 ``invalid_credentials`` and counts as a failed login (throttled like
    login, so a stolen access token cannot be used to guess the password); a weak one is ``weak_password``.
    Nothing changes on a refusal.
    """
    user = User.objects.get(pk=user.pk)  # not the per-process cached row of the authenticator
    attempt = login_attempt_take(email=user.email, address=client_address)  # counted unless given back
    if not user.check_password(current_password):
        raise ApplicationError("The current password is wrong.", code=error_codes.INVALID_CREDENTIALS,
                               fields={"current_password": ["The current password is wrong."]})
    attempt_give_back(attempt)
    try:
        password_validation.validate_password(new_password, user=user)
    except DjangoValidationError as exc:
        raise ApplicationError("The password is too weak.", code=error_codes.WEAK_PASSWORD,
                               fields={"new_password": list(exc.messages)}) from None
    with transaction.atomic():
        user.set_password(new_password)
        user._password_changed_by = user  # the audit entry's actor (User.save)
        user.save(update_fields=["password"])  # revokes the user's tokens (User.save)
