"""Reads for the console's pages: plain aggregate queries over the apps' models, scoped per instance."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from accounts.models import Profile
from console.scoping import ALL, admin_instance_ids


def profile_counts_by_role(*, user: Any) -> dict[str, int]:
    """Profiles per role among the instances ``user`` administers (all of them for a superuser)."""
    ids = admin_instance_ids(user)
    profiles = Profile.objects.all() if ids is ALL else Profile.objects.filter(instance_id__in=list(ids or ()))
    return {row["role"]: row["n"] for row in profiles.order_by().values("role").annotate(n=Count("id"))}
