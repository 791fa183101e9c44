"""Instances (tenants) and their members: create an instance, invite, re-role and remove members; a user
accepts or declines an invitation addressed to their email.

Every write owns its transaction. Member writes take the caller as an ``InstanceActor`` (from
``accounts.selectors.access_instance_by_slug``), so the tenant and the caller's role are already resolved;
the rules of the role lattice are enforced here, not in the view.
"""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import error_codes
from accounts.models import Instance, Invitation, InvitationState, Profile, User
from accounts.selectors import (
    InstanceActor,
    access_invitation_for_user,
    access_member_by_user_id,
    normalize_email,
    standing_forget,
)
from accounts.services import tokens
from audit.choices import AuditAction
from audit.services import audit_record
from authz import roles as authz_roles
from authz.roles import INSTANCE_ADMIN
from authz.services import policies_purge_member
from saaskit.errors import ApplicationError, ForbiddenError, NotFoundError

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


def _acting_user(actor: InstanceActor) -> User | None:
    """The audit entry's actor: the caller's user row."""
    return User.objects.filter(pk=actor.user_id).first()


def member_tokens_revoke(*, user_id: int, instance_id: int | None, reason: str) -> int:
    """Revoke the user's refresh tokens for one instance; returns how many were revoked. Their access tokens
    for it stop acting in a role the profile no longer backs: at once in this process (after commit), within
    a second in the others (``accounts.selectors.caller_standing``)."""
    transaction.on_commit(lambda: standing_forget(user_id=user_id, instance_id=instance_id,
                                                  everywhere=instance_id is None))
    return tokens.member_tokens_revoke(user_id=user_id, instance_id=instance_id, reason=reason)


@transaction.atomic
def member_invite(*, actor: InstanceActor, email: str, role: str) -> Invitation:
    """Invite whoever holds ``email`` into the actor's instance as ``role``.

    The answer is the same whether or not an account exists for the email (the invitation waits for
    one); only a current member of the instance, whom the caller can list anyway, is refused. Inviting an
    email with a pending invitation renews it (new role, new expiry) instead of making a second one.
    """
    _check_admin(actor)
    _check_grantable(role=role, actor=actor)
    email = normalize_email(email)
    if Profile.objects.filter(instance=actor.instance, user__email=email).exists():
        raise ApplicationError("This user is already a member of the instance.", code=error_codes.MEMBER_EXISTS,
                               fields={"email": ["Already a member of this instance."]})
    defaults = {"role": role, "invited_by_id": actor.user_id, "created_at": timezone.now(),
                "expires_at": timezone.now() + settings.INVITATION_LIFETIME}
    key = {"instance": actor.instance, "email": email, "state": InvitationState.PENDING}
    previous = Invitation.objects.filter(**key).values("role", "expires_at").first()
    try:
        with transaction.atomic():
            invitation, _ = Invitation.objects.update_or_create(**key, defaults=defaults)
    except IntegrityError:  # a concurrent invitation of the same email made the pending row first: renew it
        invitation, _ = Invitation.objects.update_or_create(**key, defaults=defaults)
    audit_record(action=AuditAction.INVITATION, actor=_acting_user(actor), instance=actor.instance, target=invitation,
                 before=previous and {"email": email, "state": "pending", **previous},
                 after={"email": email, "role": role, "state": "pending", "expires_at": invitation.expires_at})
    return invitation


@transaction.atomic
def invitation_withdraw(*, actor: InstanceActor, invitation_id: uuid.UUID) -> None:
    """Withdraw a pending invitation of the actor's instance (the row goes); NotFoundError(invitation_not_found)
    for a missing one, another instance's and one answered already alike."""
    _check_admin(actor)
    pending = Invitation.objects.filter(pk=invitation_id, instance=actor.instance, state=InvitationState.PENDING)
    before = pending.values("email", "role", "state").first()
    deleted, _ = pending.delete()
    if not deleted:
        raise NotFoundError("Invitation not found.", code=error_codes.INVITATION_NOT_FOUND)
    audit_record(action=AuditAction.INVITATION, actor=_acting_user(actor), instance=actor.instance,
                 target=("accounts.invitation", invitation_id), before=before, after={"state": "withdrawn"})


def _respondable(invitation: Invitation) -> None:
    if invitation.state != InvitationState.PENDING:
        raise ApplicationError(f"This invitation was {invitation.state} already.",
                               code=error_codes.INVITATION_NOT_PENDING)
    if invitation.is_expired:
        raise ApplicationError("This invitation has expired; ask for a new one.", code=error_codes.INVITATION_EXPIRED)


@transaction.atomic
def invitation_accept(*, user: User, invitation_id: uuid.UUID) -> Profile:
    """Accept an invitation addressed to the user's email: the user becomes a member holding its role.

    NotFoundError(invitation_not_found) for a missing invitation and another user's alike; 400
    ``invitation_expired`` / ``invitation_not_pending`` / ``member_exists``. Exactly one concurrent
    response wins (the invitation row is locked).
    """
    invitation = access_invitation_for_user(user=user, invitation_id=invitation_id, for_update=True)
    _respondable(invitation)
    granted = authz_roles.LATTICE.roles.get(invitation.role)
    if granted is None or not granted.instance_bound:
        raise ApplicationError(f"Role {invitation.role!r} can no longer be granted.", code=error_codes.ROLE_UNKNOWN)
    exists = ApplicationError("You are already a member of this instance.", code=error_codes.MEMBER_EXISTS)
    if Profile.objects.filter(user=user, instance=invitation.instance).exists():
        raise exists
    try:
        with transaction.atomic():
            profile = Profile.objects.create(user=user, instance=invitation.instance, role=invitation.role)
    except IntegrityError:
        raise exists from None
    Invitation.objects.filter(pk=invitation.pk).update(state=InvitationState.ACCEPTED, responded_at=timezone.now(),
                                                       responded_by=user)
    member_added(actor=user, profile=profile, via=f"invitation {invitation.pk}")
    instance_id = invitation.instance.pk
    transaction.on_commit(lambda: standing_forget(user_id=user.pk, instance_id=instance_id))
    return profile


@transaction.atomic
def invitation_decline(*, user: User, invitation_id: uuid.UUID) -> None:
    """Decline an invitation addressed to the user's email (an expired one too); errors as for accepting."""
    invitation = access_invitation_for_user(user=user, invitation_id=invitation_id, for_update=True)
    if invitation.state != InvitationState.PENDING:
        _respondable(invitation)
    Invitation.objects.filter(pk=invitation.pk).update(state=InvitationState.DECLINED, responded_at=timezone.now(),
                                                       responded_by=user)


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
    before = profile.role
    profile.role = role
    profile.save(update_fields=["role", "updated_at"])
    member_role_changed(profile=profile, instance=actor.instance, before=before, actor=_acting_user(actor),
                        reason="role_changed")
    return profile


@transaction.atomic
def member_remove(*, actor: InstanceActor, user_id: int) -> None:
    """Remove a member from the instance: their refresh tokens for it are revoked and their policies and
    group memberships in it removed (``authz.services.policies_purge_member``)."""
    _check_admin(actor)
    admin_pks = _lock_admins(actor.instance)
    profile = access_member_by_user_id(instance=actor.instance, user_id=user_id, for_update=True)
    _check_member_not_above(profile=profile, actor=actor)
    _keep_an_admin(profile=profile, admin_pks=admin_pks)
    member_left(user_id=profile.user_id, instance=actor.instance, reason="member_removed",
                actor=_acting_user(actor), profile=profile)
    profile.delete()


def member_left(*, user_id: int, instance: Instance, reason: str, actor: User | None = None,
                profile: Profile | None = None) -> None:
    """What follows a user's leaving ``instance`` (removed by the API or the admin console): their refresh
    tokens for it are revoked, and their policies and group memberships in it removed; audited
    (``member_removed``, the ``profile`` leaving) in the caller's transaction."""
    with transaction.atomic():
        revoked = member_tokens_revoke(user_id=user_id, instance_id=instance.pk, reason=reason)
        purged = policies_purge_member(instance=instance, user_id=user_id)
        audit_record(action=AuditAction.MEMBER_REMOVED, actor=actor, instance=instance,
                     target=profile if profile is not None else ("accounts.user", user_id),
                     before={"user_id": user_id, "role": profile.role if profile is not None else None},
                     after={"reason": reason, "refresh_tokens_revoked": revoked, "policies_removed": purged})


def member_role_changed(*, profile: Profile, instance: Instance, before: str, actor: User | None,
                        reason: str) -> int:
    """What follows a member's role change (saved by the caller: the members API or the admin): their refresh
    tokens for the instance are revoked (the new role on the next login) and the change is audited
    (``role_change``) in the caller's transaction. Returns the tokens revoked."""
    with transaction.atomic():
        revoked = member_tokens_revoke(user_id=profile.user_id, instance_id=instance.pk, reason=reason)
        audit_record(action=AuditAction.ROLE_CHANGE, actor=actor, instance=instance, target=profile,
                     before={"user_id": profile.user_id, "role": before},
                     after={"user_id": profile.user_id, "role": profile.role, "refresh_tokens_revoked": revoked})
    return revoked


def member_added(*, actor: User | None, profile: Profile, via: str) -> None:
    """Audit a new member (``member_added``): an accepted invitation or a profile added in the admin."""
    instance = profile.instance
    audit_record(action=AuditAction.MEMBER_ADDED, actor=actor, instance=instance, target=profile, before=None,
                 after={"user_id": profile.user_id, "role": profile.role, "via": via})

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
