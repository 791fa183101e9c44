"""Who is calling, in which instance, as which role. Built from a verified access token's claims."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class ActingContext:
    user_id: int
    instance_id: int | None
    instance_slug: str | None
    role: str
    profile_role: str
    token_id: str | None = None

    def acting_as(self, *, role: str, instance_id: int | None, instance_slug: str | None) -> ActingContext:
        return replace(self, role=role, instance_id=instance_id, instance_slug=instance_slug)


def acting_context(request_or_ctx: Any) -> ActingContext | None:
    """The ActingContext of a DRF request (``request.auth``), or the context itself; None when anonymous."""
    if isinstance(request_or_ctx, ActingContext):
        return request_or_ctx
    auth = getattr(request_or_ctx, "auth", None)
    return auth if isinstance(auth, ActingContext) else None
