"""The one base for tenant-scoped endpoints: the acting instance comes from the token, never the URL."""

from __future__ import annotations

import time
from typing import Any

from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.models import Instance, Profile
from authz.context import ActingContext, acting_context
from authz.roles import LATTICE
from saaskit.errors import NotFoundError

# (user_id, instance_id, role) -> (instance, expires_at). One second, the same bound as token revocation.
_MEMBERSHIP_TTL_SECONDS = 1.0
_membership_cache: dict[tuple[int, int, str], tuple[Instance, float]] = {}


def acting_instance(ctx: ActingContext | None) -> Instance:
    """The active instance the caller acts for, with its membership re-checked (cached for 1 s).

    Raises NotFoundError(instance_not_found) when the token names no instance, the instance is gone or
    inactive, or the caller is no longer a member: the same answer for missing and forbidden.
    """
    if ctx is None or ctx.instance_id is None:
        raise NotFoundError("No instance is selected for this token.", code="instance_not_found")
    key = (ctx.user_id, ctx.instance_id, ctx.role)
    now = time.monotonic()
    hit = _membership_cache.get(key)
    if hit is not None and hit[1] > now:
        return hit[0]
    role = LATTICE.roles.get(ctx.profile_role)
    if role is not None and role.spans_instances:
        member_of = Profile.objects.filter(user_id=ctx.user_id, instance__isnull=True, role=ctx.profile_role)
        instance = Instance.objects.filter(pk=ctx.instance_id, is_active=True).first() if member_of.exists() else None
    else:
        profile = (Profile.objects.select_related("instance")
                   .filter(user_id=ctx.user_id, instance_id=ctx.instance_id, instance__is_active=True).first())
        instance = profile.instance if profile is not None else None
    if instance is None:
        _membership_cache.pop(key, None)
        raise NotFoundError("Instance not found.", code="instance_not_found")
    if len(_membership_cache) > 10_000:
        _membership_cache.clear()
    _membership_cache[key] = (instance, now + _MEMBERSHIP_TTL_SECONDS)
    return instance


class InstanceScopedAPIView(APIView):
    """Resolves ``self.instance`` from the caller's token before any handler runs.

    Subclasses scope every query by ``self.instance`` (``Model.objects.for_instance(self.instance)``)
    and fetch single objects through ``access_<thing>_by_id`` helpers that answer 404 for both missing
    and foreign objects.
    """

    permission_classes = [IsAuthenticated]
    instance: Instance

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.instance = acting_instance(acting_context(request))
