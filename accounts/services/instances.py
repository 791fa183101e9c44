"""Instances (tenants) and their members: create an instance, add, re-role and remove members.

Every write owns its transaction. Member writes take the caller as an ``InstanceActor`` (from
``accounts.selectors.access_instance_by_slug``), so the tenant and the caller's role are already resolved;
the rules of the role lattice are enforced here, not in the view.
"""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import error_codes
from accounts.models import Instance, Profile, RefreshToken, User
from accounts.selectors import InstanceActor, access_member_by_user_id
from authz import roles as authz_roles
from authz.roles import INSTANCE_ADMIN
from saaskit.errors import ApplicationError, ForbiddenError

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def _slug_error(message: str) -> ApplicationError:
    return ApplicationError(message, code=error_codes.INSTANCE_SLUG_INVALID, fields={"slug": [message]})


@transaction.atomic
def instance_create(*, creator: User, slug: str, name: str) -> Instance:
    """A new active instance; ``creator`` becomes its instance_admin."""
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        raise _slug_error("A slug is 1 to 63 lower-case letters, digits and inner hyphens.")
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 200:
        raise ApplicationError("A name is 1 to 200 characters.", code="invalid",
                               fields={"name": ["A name is 1 to 200 characters."]})
    taken = ApplicationError("An instance with this slug already exists.", code=error_codes.INSTANCE_SLUG_TAKEN,
                             fields={"slug": ["An instance with this slug already exists."]})
    if Instance.objects.filter(slug=slug).exists():
        raise taken
    try:
        with transaction.atomic():
            instance = Instance.objects.create(slug=slug, name=name)
    except IntegrityError:  # lost a race on the same slug
        raise taken from None
    Profile.objects.create(user=creator, instance=instance, role=INSTANCE_ADMIN)
    return instance


def _check_grantable(*, role: str, actor: InstanceActor) -> None:
    lattice = authz_roles.LATTICE
    if role not in lattice.roles:
        raise ApplicationError(f"Unknown role {role!r}.", code=error_codes.ROLE_UNKNOWN,
                               fields={"role": [f"Unknown role {role!r}."]})
    if not lattice.roles[role].instance_bound:
        raise ApplicationError(f"Role {role!r} is not bound to an instance.", code=error_codes.ROLE_NOT_INSTANCE_BOUND,
                               fields={"role": [f"Role {role!r} is not bound to an instance."]})
    if lattice.is_above(role, actor.role):
        raise ForbiddenError(f"You cannot grant {role!r}, which is above your role {actor.role!r}.",
                             code=error_codes.ROLE_ABOVE_CALLER)


def _check_admin(actor: InstanceActor) -> None:
    if not authz_roles.LATTICE.acts_in(actor.role, INSTANCE_ADMIN):
        raise ForbiddenError("Only an instance_admin of this instance may manage its members.",
                             code=error_codes.ROLE_REQUIRED)


def _check_member_not_above(*, profile: Profile, actor: InstanceActor) -> None:
    if authz_roles.LATTICE.is_above(profile.role, actor.role):
        raise ForbiddenError(f"This member's role {profile.role!r} is above yours.",
                             code=error_codes.MEMBER_ABOVE_CALLER)


def _lock_admins(instance: Instance) -> list[int]:
    """Lock the instance's instance_admin profiles in pk order, before any other profile, so concurrent
    member writes queue up instead of deadlocking and two admins cannot remove each other at once."""
    return list(Profile.objects.select_for_update().filter(instance=instance, role=INSTANCE_ADMIN)
                .order_by("pk").values_list("pk", flat=True))


def _keep_an_admin(*, profile: Profile, admin_pks: list[int]) -> None:
    """Refuse to demote or remove the last instance_admin of the instance."""
    if profile.role != INSTANCE_ADMIN or [pk for pk in admin_pks if pk != profile.pk]:
        return
    raise ApplicationError("An instance needs at least one instance_admin; appoint another first.",
                           code=error_codes.LAST_INSTANCE_ADMIN)


def member_tokens_revoke(*, user_id: int, instance_id: int, reason: str) -> int:
    """Revoke the user's refresh tokens for one instance; returns how many were revoked."""
    return RefreshToken.objects.filter(user_id=user_id, instance_id=instance_id, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=reason[:64])


@transaction.atomic
def member_add(*, actor: InstanceActor, email: str, role: str) -> Profile:
    """Give the existing active user with ``email`` a profile holding ``role`` in the actor's instance."""
    _check_admin(actor)
    _check_grantable(role=role, actor=actor)
    user = User.objects.filter(email__iexact=(email or "").strip(), is_active=True).first()
    if user is None:
        raise ApplicationError("No user with this email.", code=error_codes.USER_NOT_FOUND,
                               fields={"email": ["No user with this email."]})
    exists = ApplicationError("This user is already a member of the instance.", code=error_codes.MEMBER_EXISTS,
                              fields={"email": ["Already a member of this instance."]})
    if Profile.objects.filter(user=user, instance=actor.instance).exists():
        raise exists
    try:
        with transaction.atomic():
            profile = Profile.objects.create(user=user, instance=actor.instance, role=role)
    except IntegrityError:
        raise exists from None
    return profile


@transaction.atomic
def member_change_role(*, actor: InstanceActor, user_id: int, role: str) -> Profile:
    """Change a member's role; the member's refresh tokens for the instance are revoked (new role on
    the next login). Changing to the role already held changes nothing."""
    _check_admin(actor)
    _check_grantable(role=role, actor=actor)
    admin_pks = _lock_admins(actor.instance)
    profile = access_member_by_user_id(instance=actor.instance, user_id=user_id, for_update=True)
    _check_member_not_above(profile=profile, actor=actor)
    if profile.role == role:
        return profile
    if role != INSTANCE_ADMIN:
        _keep_an_admin(profile=profile, admin_pks=admin_pks)
    profile.role = role
    profile.save(update_fields=["role", "updated_at"])
    member_tokens_revoke(user_id=profile.user_id, instance_id=actor.instance.pk, reason="role_changed")
    return profile


@transaction.atomic
def member_remove(*, actor: InstanceActor, user_id: int) -> None:
    """Remove a member from the instance and revoke their refresh tokens for it."""
    _check_admin(actor)
    admin_pks = _lock_admins(actor.instance)
    profile = access_member_by_user_id(instance=actor.instance, user_id=user_id, for_update=True)
    _check_member_not_above(profile=profile, actor=actor)
    _keep_an_admin(profile=profile, admin_pks=admin_pks)
    member_tokens_revoke(user_id=profile.user_id, instance_id=actor.instance.pk, reason="member_removed")
    profile.delete()


@transaction.atomic
def member_set_external_id(*, actor: InstanceActor, user_id: int, external_id: str | None) -> Profile:
    """Set (or clear, with None) the id the member has in the caller's world (an IdP subject); unique per
    instance. AuthZEN subjects may name the member by it."""
    _check_admin(actor)
    profile = access_member_by_user_id(instance=actor.instance, user_id=user_id, for_update=True)
    external_id = (external_id or "").strip() or None
    if external_id is not None and len(external_id) > 255:
        raise ApplicationError("An external id has at most 255 characters.", code="invalid",
                               fields={"external_id": ["at most 255 characters"]})
    taken = ApplicationError("Another member of this instance has this external id.",
                             code=error_codes.EXTERNAL_ID_TAKEN, fields={"external_id": ["already taken"]})
    if external_id is not None and Profile.objects.filter(instance=actor.instance, external_id=external_id).exclude(
            pk=profile.pk).exists():
        raise taken
    profile.external_id = external_id
    try:
        with transaction.atomic():
            profile.save(update_fields=["external_id", "updated_at"])
    except IntegrityError:
        raise taken from None
    return profile
