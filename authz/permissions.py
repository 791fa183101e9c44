"""DRF permission classes on the role lattice, so a view reads ``permission_classes = [CanActIn("clerk")]``."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

from authz.roles import LATTICE, can_act_for, can_act_in


class CanActIn(BasePermission):
    """Allows callers whose current role acts in ``role``. The role is checked against the lattice at
    import time, so a typo fails start-up instead of denying every request."""

    message = "Your role does not allow this action."

    def __init__(self, role: str) -> None:
        LATTICE.get(role)
        self.role = role

    def __call__(self) -> CanActIn:  # DRF instantiates each entry of permission_classes
        return self

    def has_permission(self, request: Any, view: Any) -> bool:
        return can_act_in(request, self.role)


class CanActForInstance(BasePermission):
    """Allows callers acting for the instance named by the URL keyword ``kwarg`` (a slug)."""

    message = "You do not act for this instance."

    def __init__(self, kwarg: str = "slug") -> None:
        self.kwarg = kwarg

    def __call__(self) -> CanActForInstance:
        return self

    def has_permission(self, request: Any, view: Any) -> bool:
        slug = view.kwargs.get(self.kwarg)
        return slug is not None and can_act_for(request, slug)
