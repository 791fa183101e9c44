"""Users, tenants ("instances") and profiles: one profile per user and instance, holding exactly one role.

Roles live in code (``authz.roles``); a profile stores the role's name. A role that is not bound to an
instance (``super_admin``) is held by a profile whose ``instance`` is NULL.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        from accounts.emails import normalize_email  # the one normal form (registration, login, throttle)

        user = self.model(email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(max_length=254, unique=True)
    name = models.CharField(max_length=150, blank=True, default="")
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May log into the admin console.")
    date_joined = models.DateTimeField(default=timezone.now)
    # Access tokens issued before this instant are refused (revoke-all); mirrored in the cache.
    tokens_not_before = models.DateTimeField(null=True, blank=True)
    # Set by an operator's lock (``accounts.services.users.user_lock``), which also clears ``is_active``: the flag
    # every path already checks (login, refresh, switch, access tokens, the admin's own login) does the stopping;
    # this field tells a lock from a plain deactivation, so only a locked user is unlocked.
    locked_at = models.DateTimeField(null=True, blank=True, help_text="When an operator locked the account.")

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    # --- a password change stops every token of the user ---------------------------------------------
    # The one place every path goes through: the API (accounts.services.passwords), the admin's password
    # form and ``manage.py changepassword`` all call set_password() (or set_unusable_password()) and save().
    # It is where Django itself announces a change (AbstractBaseUser.save -> password_changed). A first
    # password (a new user, or one stored with none) is not a change; nor is the hash upgrade check_password()
    # does at login, which clears ``_password`` before saving. The work is the service's, not the model's.

    def _replaces_a_password(self) -> bool:
        return not self._state.adding and self.pk is not None and bool(self.password) and self.has_usable_password()

    def set_password(self, raw_password: str | None) -> None:
        self._password_replaced = self._replaces_a_password()
        super().set_password(raw_password)

    def set_unusable_password(self) -> None:
        self._password_replaced = self._replaces_a_password()
        super().set_unusable_password()

    def save(self, *args: Any, **kwargs: Any) -> None:
        changed = getattr(self, "_password_replaced", False) and (
            self._password is not None or not self.has_usable_password())
        super().save(*args, **kwargs)
        self._password_replaced = False
        if changed:
            from accounts.services.tokens import user_revoke_all_tokens  # models sit below services
            from audit.choices import AuditAction

            # The actor: the user themselves through the API (``user_password_change`` sets it), the operator in
            # the admin (``UserAdmin.get_object`` sets it); None from ``changepassword``.
            actor = getattr(self, "_password_changed_by", None)
            user_revoke_all_tokens(user=self, reason="password_changed", actor=actor,
                                   action=AuditAction.PASSWORD_CHANGE)


class InstanceQuerySet(models.QuerySet["Instance"]):
    def active(self) -> InstanceQuerySet:
        return self.filter(is_active=True)


class Instance(models.Model):
    """A tenant. Every tenant-owned row carries one and every query on it is scoped by it."""

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = InstanceQuerySet.as_manager()

    def __str__(self) -> str:
        return self.slug


class ProfileQuerySet(models.QuerySet["Profile"]):
    def for_instance(self, instance: Instance) -> ProfileQuerySet:
        return self.filter(instance=instance)


class Profile(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="profiles")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="profiles", null=True, blank=True)
    role = models.CharField(max_length=64)
    # The member's id in the caller's world (an IdP subject, an HR number): AuthZEN subjects may name it.
    external_id = models.CharField(max_length=255, null=True, blank=True, default=None)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProfileQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "instance"], name="accounts_profile_user_instance_unique"),
            models.UniqueConstraint(fields=["user"], condition=Q(instance__isnull=True),
                                    name="accounts_profile_one_global_per_user"),
            models.UniqueConstraint(fields=["instance", "external_id"], condition=Q(external_id__isnull=False),
                                    name="accounts_profile_instance_external_id_unique"),
        ]
        indexes = [models.Index(fields=["instance", "role"])]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.instance_id or '*'}:{self.role}"


class RefreshTokenState(models.TextChoices):
    ACTIVE = "active", "active"
    USED = "used", "used (rotated)"
    REVOKED = "revoked", "revoked"
    EXPIRED = "expired", "expired"


class RefreshTokenQuerySet(models.QuerySet["RefreshToken"]):
    def usable(self) -> RefreshTokenQuerySet:
        return self.filter(used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())

    def in_state(self, state: str) -> RefreshTokenQuerySet:
        now = timezone.now()
        if state == RefreshTokenState.REVOKED:
            return self.filter(revoked_at__isnull=False)
        if state == RefreshTokenState.USED:
            return self.filter(revoked_at__isnull=True, used_at__isnull=False)
        if state == RefreshTokenState.EXPIRED:
            return self.filter(revoked_at__isnull=True, used_at__isnull=True, expires_at__lte=now)
        return self.usable()


class RefreshToken(models.Model):
    """A stored refresh token. Only a SHA-256 of the secret is kept, never the token itself.

    Every rotation makes a child in the same ``family``; presenting a used token revokes the family.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="refresh_tokens")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    role = models.CharField(max_length=64)
    profile_role = models.CharField(max_length=64)
    family = models.UUIDField(db_index=True)
    parent = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=64, blank=True, default="")

    objects = RefreshTokenQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"]),
                   # the console's token list, newest first, a page at a time
                   models.Index(fields=["-created_at"], name="accounts_rt_created_desc"),
                   models.Index(fields=["expires_at"], name="accounts_refresh_expires")]  # the flush

    def __str__(self) -> str:
        return f"refresh {self.id} of {self.user_id}"

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return RefreshTokenState.REVOKED
        if self.used_at is not None:
            return RefreshTokenState.USED
        if self.expires_at <= timezone.now():
            return RefreshTokenState.EXPIRED
        return RefreshTokenState.ACTIVE


class InvitationState(models.TextChoices):
    PENDING = "pending", "pending"
    ACCEPTED = "accepted", "accepted"
    DECLINED = "declined", "declined"


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def for_instance(self, instance: Instance) -> InvitationQuerySet:
        return self.filter(instance=instance)

    def open(self) -> InvitationQuerySet:
        """Pending and not expired."""
        return self.filter(state=InvitationState.PENDING, expires_at__gt=timezone.now())


class Invitation(models.Model):
    """An instance_admin's offer of a role in an instance to whoever holds ``email``.

    Adding a member is an invitation, so the API never tells whether an account exists for an email; the
    holder of a matching account sees it in ``GET /api/v1/me`` and accepts (which creates the profile) or
    declines. ``email`` is stored normalised; at most one pending invitation per instance and email.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254, help_text="Normalised (NFKC, case-folded).")
    role = models.CharField(max_length=64)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    state = models.CharField(max_length=16, choices=InvitationState.choices, default=InvitationState.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    responded_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    objects = InvitationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "email"], condition=Q(state="pending"),
                                    name="accounts_invitation_one_pending_per_email"),
        ]
        indexes = [models.Index(fields=["email", "state"])]

    def __str__(self) -> str:
        return f"invitation of {self.email} to {self.instance_id} as {self.role}"

    @property
    def is_expired(self) -> bool:
        return self.state == InvitationState.PENDING and self.expires_at <= timezone.now()

    @property
    def current_state(self) -> str:
        """The state, with a pending invitation past its expiry shown as ``expired``."""
        return "expired" if self.is_expired else self.state
