"""Which instances a console user administers: a superuser all of them; a staff user those where their profile
holds ``instance_admin``; anyone else none. The role decides, not per-model permission grants."""

from __future__ import annotations

from typing import Any

from accounts.models import Profile
from authz.roles import INSTANCE_ADMIN

ALL = None  # "every instance" (a superuser)

_CACHE_ATTR = "_console_admin_instance_ids"


def admin_instance_ids(user: Any) -> frozenset[int] | None:
    """The ids of the instances ``user`` administers, or ``None`` meaning every instance (a superuser).

    Cached on the user object, which lives for one request in the admin.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return ALL
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        if not user.is_staff:
            cached = frozenset()
        else:
            cached = frozenset(Profile.objects.filter(user=user, role=INSTANCE_ADMIN, instance__isnull=False,
                                                      instance__is_active=True).values_list("instance_id", flat=True))
        setattr(user, _CACHE_ATTR, cached)
    return cached


def is_console_user(user: Any) -> bool:
    """A superuser, or a staff instance admin of at least one active instance."""
    ids = admin_instance_ids(user)
    return ids is ALL or bool(ids)
