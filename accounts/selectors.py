"""Reads of the accounts app: querysets and access helpers. Writes live in ``accounts.services``."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F, QuerySet

from accounts import error_codes
from accounts.models import Instance, Profile, User
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


def access_instance_by_slug(*, ctx: ActingContext | None, slug: str) -> InstanceActor:
    """The active instance ``slug`` as the caller acts in it, checked against the database.

    The caller must act for the instance (``can_act_for``) and either be a member whose profile still backs
    the token's role, or hold a global role spanning instances (super_admin) and have switched into this
    instance. Raises NotFoundError(instance_not_found) for a missing or inactive instance and for one the
    caller does not act for: the same answer, so slugs do not leak. An operator who has not switched in
    gets 403 ``role_switch_required``; a token whose role the profile no longer backs gets 403 ``role_stale``.
    """
    not_found = NotFoundError("Instance not found.", code=error_codes.INSTANCE_NOT_FOUND)
    if ctx is None:
        raise not_found
    instance = Instance.objects.filter(slug=slug, is_active=True).first()
    if instance is None or not can_act_for(ctx, instance, lattice=authz_roles.LATTICE):
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
