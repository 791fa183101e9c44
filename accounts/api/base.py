"""The one base for tenant-scoped endpoints: the acting instance comes from the token, never the URL."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts import error_codes, selectors
from accounts.models import Instance
from authz.context import ActingContext, acting_context
from saaskit.errors import ForbiddenError, NotFoundError

# The per-process cache behind ``acting_instance`` is the callers' standing (``accounts.selectors``, at most
# one second old); this name stays for the test fixtures that empty it.
_membership_cache = selectors._standing_cache


def acting_instance(ctx: ActingContext | None) -> Instance:
    """The active instance the caller's token acts for, with the caller's standing re-checked (at most one
    second old, ``accounts.selectors.caller_standing``).

    403 ``instance_token_required`` when the token names no instance; 404 ``instance_not_found`` when the
    instance is gone or inactive or the caller is no longer a member (the same answer for missing and
    forbidden); 403 ``role_stale`` when the caller is still a member but the profile no longer backs the
    token's role (only reachable without the authentication class, which refuses such tokens first).
    """
    if ctx is None or ctx.instance_id is None:
        raise selectors.instance_token_required()
    standing = selectors.caller_standing(user_id=ctx.user_id, instance_id=ctx.instance_id)
    instance = standing.instance
    if instance is None or not instance.is_active:
        raise NotFoundError("Instance not found.", code=error_codes.INSTANCE_NOT_FOUND)
    if selectors.backing_role(ctx, standing) is None:
        raise ForbiddenError("Your role in this instance has changed; sign in again.", code=error_codes.ROLE_STALE)
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
