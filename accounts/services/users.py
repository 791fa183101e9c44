from __future__ import annotations

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import error_codes
from accounts.emails import normalize_email
from accounts.models import Instance, Profile, User
from accounts.services.tokens import TokenPair, token_pair_issue
from accounts.signals import account_authenticated, account_created, account_deleted, suspicious_activity
from accounts.throttling import attempt_give_back, failures_count, login_attempt_take, register_attempt_take
from audit.choices import AuditAction
from audit.services import audit_record
from authz.roles import ANONYMOUS
from saaskit.errors import ApplicationError


class InvalidCredentials(ApplicationError):
    status_code = 401

    def __init__(self) -> None:
        super().__init__("Invalid credentials.", code=error_codes.INVALID_CREDENTIALS)


def _email_taken() -> ApplicationError:
    return ApplicationError("A user with this email already exists.", code=error_codes.EMAIL_TAKEN,
                            fields={"email": ["A user with this email already exists."]})


def user_register(*, email: str, password: str, name: str, client_address: str | None = None) -> User:
    """Create an account under the normal form of ``email``; refused when an account already has that form.

    With ``client_address`` (the HTTP API) every attempt is throttled per address and per email first, so
    ``email_taken`` tells whether an email is registered no more often than the throttle allows.
    """
    if client_address is not None:
        register_attempt_take(email=email, address=client_address)
    email = normalize_email(email)
    candidate = User(email=email, name=name)
    try:
        password_validation.validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise ApplicationError("The password is too weak.", code=error_codes.WEAK_PASSWORD,
                               fields={"password": list(exc.messages)}) from None
    if User.objects.filter(email=email).exists():
        raise _email_taken()
    try:
        with transaction.atomic():
            user = User.objects.create_user(email, password, name=name)
            account_created.send(sender=User, instance=None, payload={"user_id": user.pk, "email": user.email})
    except IntegrityError:  # a concurrent registration with the same email won
        raise _email_taken() from None
    return user


def user_delete(*, user: User) -> None:
    with transaction.atomic():
        user_id = user.pk
        user.delete()
        account_deleted.send(sender=User, instance=None, payload={"user_id": user_id})


# One hash made at import time, so an unknown email costs the same as a wrong password.
_DUMMY_USER = User(email="nobody@invalid")
_DUMMY_USER.set_password("timing-equaliser-password")


def _login_profile(*, user: User, instance_slug: str | None) -> tuple[Instance | None, str]:
    """The instance and role a login acts in: the named instance's profile; else the global profile, the
    one instance profile, or, for an account in several instances (or none), the anonymous role in no
    instance (the login response lists the instances; the client then asks for a token for one)."""
    if instance_slug:
        profile = (Profile.objects.select_related("instance")
                   .filter(user=user, instance__slug=instance_slug, instance__is_active=True).first())
        if profile is None:
            raise InvalidCredentials()
        return profile.instance, profile.role
    profiles = list(Profile.objects.select_related("instance").filter(user=user)
                    .exclude(instance__is_active=False)[:3])
    global_profile = next((p for p in profiles if p.instance_id is None), None)
    if global_profile is not None:
        return None, global_profile.role
    if len(profiles) == 1:
        return profiles[0].instance, profiles[0].role
    return None, ANONYMOUS


def user_login(*, email: str, password: str, instance_slug: str | None, client_address: str) -> TokenPair:
    """Check credentials and issue a token pair acting in the profile's role. Failures are throttled per
    account (the email's normal form) and per address, and answer the same whether or not the email exists.

    The attempt is counted before the password is checked (one atomic step, ``accounts.throttling``) and
    given back when the login succeeds or fails for a reason other than the credentials.
    """
    attempt = login_attempt_take(email=email, address=client_address)
    try:
        pair = _user_login_checked(email=email, password=password, instance_slug=instance_slug)
    except InvalidCredentials:
        _failed_login_count(email=email)
        raise
    except BaseException:
        attempt_give_back(attempt)
        raise
    attempt_give_back(attempt)
    return pair


def _failed_login_count(*, email: str) -> None:
    """Rule: the ``ACCOUNTS_SUSPICIOUS_FAILED_LOGINS``-th failed login of one account within
    ``ACCOUNTS_SUSPICIOUS_FAILED_LOGINS_WINDOW_SECONDS`` (a window opened by its first failure) sends
    ``suspicious_activity`` once for each instance the account belongs to (an alert belongs to an instance; an
    account in none, or an unknown email, alerts nobody). Every failure is counted, known email or not, so the
    count does not tell whether an account exists."""
    threshold = int(settings.ACCOUNTS_SUSPICIOUS_FAILED_LOGINS)
    window = int(settings.ACCOUNTS_SUSPICIOUS_FAILED_LOGINS_WINDOW_SECONDS)
    email = normalize_email(email)
    if failures_count(scope="login", who=email, window_seconds=window) != threshold:
        return
    user = User.objects.filter(email=email).first()
    if user is None:
        return
    instances = list(Instance.objects.filter(profiles__user=user).distinct().order_by("pk"))
    with transaction.atomic():
        for instance in instances:
            suspicious_activity.send(sender=User, instance=instance, payload={
                "kind": "failed_logins",
                "detail": f"account {user.pk}: {threshold} failed logins within {window}s",
                "user_id": user.pk,
            })


def _user_login_checked(*, email: str, password: str, instance_slug: str | None) -> TokenPair:
    user = User.objects.filter(email=normalize_email(email)).first()
    if user is None or not user.is_active:
        _DUMMY_USER.check_password(password)
        raise InvalidCredentials()
    if not user.check_password(password):
        raise InvalidCredentials()
    instance, role = _login_profile(user=user, instance_slug=instance_slug)
    with transaction.atomic():
        pair = token_pair_issue(user=user, instance=instance, role=role, profile_role=role)
        account_authenticated.send(sender=User, instance=instance, payload={
            "user_id": user.pk, "instance": instance.slug if instance else None, "role": role})
    return pair


# --- lock / unlock -----------------------------------------------------------------------------------------------
# A lock sets ``locked_at`` and clears ``is_active`` (so login, refresh, switch and the admin refuse the user), and
# stamps ``tokens_not_before`` and revokes every refresh token (so live access tokens stop within a second in every
# process: accounts.authentication re-reads the user at most a second late). An unlock clears both; the user logs
# in again (their old refresh tokens stay revoked).

def user_lock(*, user: User, actor: User | None) -> bool:
    """Lock ``user``; False (nothing written) when already locked. Audited (``lock``) in the same transaction."""
    from accounts.services.tokens import _lock_user, user_revoke_all_tokens

    if actor is not None and actor.pk == user.pk:
        raise ApplicationError("You cannot lock your own account.", code=error_codes.LOCK_SELF)
    with transaction.atomic():
        fresh = _lock_user(user.pk)
        if fresh is None or fresh.locked_at is not None:
            return False
        now = timezone.now()
        User.objects.filter(pk=user.pk).update(locked_at=now, is_active=False)
        revoked = user_revoke_all_tokens(user=fresh, reason="locked", audited=False)
        audit_record(action=AuditAction.LOCK, actor=actor, instance=None, target=fresh,
                     before={"is_active": fresh.is_active, "locked_at": None},
                     after={"is_active": False, "locked_at": now, "refresh_tokens_revoked": revoked})
    user.locked_at, user.is_active, user.tokens_not_before = now, False, fresh.tokens_not_before
    return True


def user_unlock(*, user: User, actor: User | None) -> bool:
    """Unlock a locked ``user`` (active again; they log in anew); False (nothing written) when not locked."""
    from accounts.services.tokens import _lock_user

    with transaction.atomic():
        fresh = _lock_user(user.pk)
        if fresh is None or fresh.locked_at is None:
            return False
        User.objects.filter(pk=user.pk).update(locked_at=None, is_active=True)
        audit_record(action=AuditAction.UNLOCK, actor=actor, instance=None, target=fresh,
                     before={"is_active": fresh.is_active, "locked_at": fresh.locked_at},
                     after={"is_active": True, "locked_at": None})
    user.locked_at, user.is_active = None, True
    return True
