"""Reads of the accounts app: querysets and access helpers. Writes live in ``accounts.services``."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace

from django.db.models import F, Q, QuerySet

from accounts import error_codes
from accounts.emails import normalize_email
from accounts.models import Instance, Invitation, Profile, User
from authz import roles as authz_roles
from authz.context import ActingContext
from authz.roles import can_act_for
from saaskit.errors import ForbiddenError, NotFoundError


def user_profiles(*, user: User) -> QuerySet[Profile]:
    """The user's profiles, the global one (NULL instance) first, then by instance slug."""
    return (Profile.objects.filter(user=user).select_related("instance")
            .order_by(F("instance__slug").asc(nulls_first=True), "pk"))


def _spans_instances(role_name: str) -> bool:
    role = authz_roles.LATTICE.roles.get(role_name)
    return role is not None and role.spans_instances and not role.instance_bound


# --- the caller's standing: what their profiles back now, re-read at most once a second -------------

# How long a process may act on what it read of a user's profiles. A role change or removal committed by
# any process is seen by every process within this bound (the same bound as the not-before stamp of a
# revoke-all, ``accounts.authentication``); the process that commits it forgets its entry at once.
STANDING_TTL_SECONDS = 1.0
_STANDING_CACHE_MAX = 50_000


@dataclass(frozen=True, slots=True)
class Standing:
    """One user as the database saw them for one instance (or for none): the instance row (active or not;
    None when there is none or no instance was asked for), the user's profile role in it, and the user's
    global profile role."""

    instance: Instance | None
    local_role: str | None
    global_role: str | None


# (user_id, instance_id or None) -> (standing, monotonic expiry)
_standing_cache: dict[tuple[int, int | None], tuple[Standing, float]] = {}


def _standing_load(user_id: int, instance_id: int | None) -> Standing:
    if instance_id is None:
        role = Profile.objects.filter(user_id=user_id, instance__isnull=True).values_list("role", flat=True).first()
        return Standing(instance=None, local_role=None, global_role=role)
    local: Profile | None = None
    global_role: str | None = None
    for profile in (Profile.objects.select_related("instance").filter(user_id=user_id)
                    .filter(Q(instance_id=instance_id) | Q(instance__isnull=True))):
        if profile.instance_id is None:
            global_role = profile.role
        else:
            local = profile
    if local is not None:
        return Standing(instance=local.instance, local_role=local.role, global_role=global_role)
    instance = (Instance.objects.filter(pk=instance_id).first()
                if global_role is not None and _spans_instances(global_role) else None)
    return Standing(instance=instance, local_role=None, global_role=global_role)


def caller_standing(*, user_id: int, instance_id: int | None) -> Standing:
    """The user's standing for ``instance_id``: a dict lookup when this process read it less than
    ``STANDING_TTL_SECONDS`` ago, else one query (two for a platform operator without a local profile)."""
    key = (user_id, instance_id)
    now = time.monotonic()
    hit = _standing_cache.get(key)
    if hit is not None and hit[1] > now:
        return hit[0]
    standing = _standing_load(user_id, instance_id)
    if len(_standing_cache) >= _STANDING_CACHE_MAX:
        _standing_cache.clear()
    _standing_cache[key] = (standing, now + STANDING_TTL_SECONDS)
    return standing


def standing_forget(*, user_id: int, instance_id: int | None = None, everywhere: bool = False) -> None:
    """Drop this process's cached standing of a user for one instance (or for all, after a change to the
    user's global profile). Other processes see the change when their entry expires."""
    if everywhere:
        for key in [key for key in _standing_cache if key[0] == user_id]:
            _standing_cache.pop(key, None)
        return
    _standing_cache.pop((user_id, instance_id), None)


def standing_cache_clear() -> None:
    _standing_cache.clear()


def backing_role(ctx: ActingContext, standing: Standing) -> str | None:
    """The profile role that backs ``ctx.role`` now: the profile in the token's instance if it may act in
    or switch to the role, else a global profile that may (in an instance: only one spanning instances)."""
    lattice = authz_roles.LATTICE
    if standing.local_role is not None and lattice.can_switch(standing.local_role, ctx.role):
        return standing.local_role
    glob = standing.global_role
    if glob is not None and lattice.can_switch(glob, ctx.role) and (
            ctx.instance_id is None or _spans_instances(glob)):
        return glob
    return None


def acting_context_backed(ctx: ActingContext) -> ActingContext | None:
    """``ctx`` as the caller's current profiles back it, or None when they no longer back its role.

    Called once per request right after the token is verified, so every role check downstream
    (``CanActIn``, ``can``, the authz API, the member endpoints) sees only a role the caller still holds.
    ``profile_role`` is brought up to date (a demoted admin switched down to clerk keeps acting as clerk,
    now from a clerk profile). The anonymous role of a token for no instance needs no profile.
    """
    if ctx.instance_id is None and ctx.role == authz_roles.LATTICE.bottom:
        return ctx
    backing = backing_role(ctx, caller_standing(user_id=ctx.user_id, instance_id=ctx.instance_id))
    if backing is None:
        return None
    return ctx if backing == ctx.profile_role else replace(ctx, profile_role=backing)


def instances_for_user(*, user: User) -> QuerySet[Instance]:
    """Instances the user holds a profile in; every instance for a holder of a global role spanning
    instances (super_admin). Ordered by slug."""
    global_roles = Profile.objects.filter(user=user, instance__isnull=True).values_list("role", flat=True)
    if any(_spans_instances(role) for role in global_roles):
        return Instance.objects.order_by("slug")
    return Instance.objects.filter(profiles__user=user).distinct().order_by("slug")


def members_of_instance(*, instance: Instance) -> QuerySet[Profile]:
    """Profiles of ``instance`` only, with their users, ordered by email."""
    return Profile.objects.for_instance(instance).select_related("user").order_by("user__email", "pk")


@dataclass(frozen=True)
class InstanceActor:
    """The caller as seen inside one instance: the instance, the caller's user id and current role."""

    instance: Instance
    user_id: int
    role: str


def instance_token_required(slug: str | None = None) -> ForbiddenError:
    """403 for a caller whose token acts for no instance (or, for a member, for another one): how to get one."""
    target = f'"instance": "{slug}"' if slug else '"instance": "<slug>"'
    return ForbiddenError(
        f"This token does not act for the instance; get a token for it: POST /api/v1/auth/token with {target}, "
        "or POST /api/v1/auth/switch.", code=error_codes.INSTANCE_TOKEN_REQUIRED)


def access_instance_by_slug(*, ctx: ActingContext | None, slug: str) -> InstanceActor:
    """The active instance ``slug`` as the caller acts in it, checked against the database.

    The caller must act for the instance (``can_act_for``) and either be a member whose profile still backs
    the token's role, or hold a global role spanning instances (super_admin) and have switched into this
    instance. Raises NotFoundError(instance_not_found) for a missing or inactive instance and for one the
    caller does not act for: the same answer, so slugs do not leak. A member of the instance whose token
    acts for no instance or another one gets 403 ``instance_token_required`` (it says how to get one); an
    operator who has not switched in gets 403 ``role_switch_required``; a token whose role the profile no
    longer backs gets 403 ``role_stale``.
    """
    not_found = NotFoundError("Instance not found.", code=error_codes.INSTANCE_NOT_FOUND)
    if ctx is None:
        raise not_found
    instance = Instance.objects.filter(slug=slug, is_active=True).first()
    if instance is None:
        raise not_found
    if not can_act_for(ctx, instance, lattice=authz_roles.LATTICE):
        if Profile.objects.filter(user_id=ctx.user_id, instance=instance).exists():  # a member: nothing leaks
            raise instance_token_required(instance.slug)
        raise not_found
    lattice = authz_roles.LATTICE
    if _spans_instances(ctx.profile_role):
        if not Profile.objects.filter(user_id=ctx.user_id, instance__isnull=True, role=ctx.profile_role).exists():
            raise not_found
        if ctx.instance_id != instance.pk:
            raise ForbiddenError(f"Switch into {instance.slug} as instance_admin first.",
                                 code=error_codes.ROLE_SWITCH_REQUIRED)
        if not lattice.can_switch(ctx.profile_role, ctx.role):
            raise ForbiddenError("Your role has changed; sign in again.", code=error_codes.ROLE_STALE)
        return InstanceActor(instance=instance, user_id=ctx.user_id, role=ctx.role)
    profile = Profile.objects.filter(user_id=ctx.user_id, instance=instance).only("role").first()
    if profile is None:
        raise not_found
    if ctx.role != profile.role and not lattice.can_switch(profile.role, ctx.role):
        raise ForbiddenError("Your role in this instance has changed; sign in again.", code=error_codes.ROLE_STALE)
    return InstanceActor(instance=instance, user_id=ctx.user_id, role=ctx.role)


def access_member_by_user_id(*, instance: Instance, user_id: int, for_update: bool = False) -> Profile:
    """The profile of ``user_id`` in ``instance``; NotFoundError(member_not_found) for a non-member,
    a member of another instance and an unknown user alike."""
    queryset = Profile.objects.for_instance(instance).select_related("user")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    profile = queryset.filter(user_id=user_id).first()
    if profile is None:
        raise NotFoundError("Member not found.", code=error_codes.MEMBER_NOT_FOUND)
    return profile


# --- invitations ----------------------------------------------------------------------------------------

def invitations_open_for_user(*, user: User) -> QuerySet[Invitation]:
    """Pending, unexpired invitations to active instances addressed to the user's email, oldest first."""
    return (Invitation.objects.open().filter(email=normalize_email(user.email), instance__is_active=True)
            .select_related("instance").order_by("created_at", "pk"))


def invitations_pending_in(*, actor: InstanceActor) -> QuerySet[Invitation]:
    """The actor's instance's pending invitations (expired ones too, until renewed or withdrawn), newest
    first. Only an instance_admin sees them (they name people who are not members): else 403 role_required."""
    if not authz_roles.LATTICE.acts_in(actor.role, authz_roles.INSTANCE_ADMIN):
        raise ForbiddenError("Only an instance_admin of this instance may see its invitations.",
                             code=error_codes.ROLE_REQUIRED)
    return (Invitation.objects.for_instance(actor.instance).filter(state="pending").select_related("instance")
            .order_by("-created_at", "pk"))


def member_instances(*, user_id: int) -> QuerySet[Profile]:
    """The user's profiles in active instances (not the global one), by instance slug: what a login
    without ``instance`` lists so the client can ask for a token for one."""
    return (Profile.objects.filter(user_id=user_id, instance__is_active=True).select_related("instance")
            .order_by("instance__slug"))


def access_invitation_for_user(*, user: User, invitation_id: uuid.UUID | str,
                               for_update: bool = False) -> Invitation:
    """The invitation ``invitation_id`` if it is addressed to the user's email (any state) and its instance is
    active; NotFoundError(invitation_not_found) for a missing one and another user's alike."""
    queryset = Invitation.objects.select_related("instance")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    invitation = queryset.filter(pk=invitation_id, email=normalize_email(user.email),
                                 instance__is_active=True).first()
    if invitation is None:
        raise NotFoundError("Invitation not found.", code=error_codes.INVITATION_NOT_FOUND)
    return invitation
