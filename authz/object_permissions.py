"""Make an object check one line in a view.

    permission_classes = [IsAuthenticated, HasObjectPermission("cancel", "orders", lookup="order_id")]

checks the object named by the URL keyword before the handler runs (and, for generic views, the object
``get_object()`` returns). Or decorate a handler:

    @requires_object_permission("update", "products", lookup="product_id")
    def post(self, request, product_id): ...

Denied answers 404 (the same as a missing object) unless ``deny_status=403``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from rest_framework.permissions import BasePermission

from authz.access import can
from authz.registry import get_type
from saaskit.errors import ForbiddenError, NotFoundError


def _deny(deny_status: int) -> Exception:
    return ForbiddenError() if deny_status == 403 else NotFoundError()


class HasObjectPermission(BasePermission):
    def __init__(self, action: str, resource_type: str, *, lookup: str = "pk", deny_status: int = 404) -> None:
        rtype = get_type(resource_type)
        if rtype is None or action not in rtype.actions:
            raise ValueError(f"unknown action {action!r} on resource type {resource_type!r}")
        self.action, self.resource_type, self.lookup, self.deny_status = action, resource_type, lookup, deny_status

    def __call__(self) -> HasObjectPermission:  # DRF instantiates each entry of permission_classes
        return self

    def has_permission(self, request: Any, view: Any) -> bool:
        object_id = getattr(view, "kwargs", {}).get(self.lookup)
        if object_id is None:
            return True  # no id in the URL: has_object_permission decides
        if not can(request, self.action, (self.resource_type, object_id)):
            raise _deny(self.deny_status)
        return True

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        if not can(request, self.action, obj):
            raise _deny(self.deny_status)
        return True


def requires_object_permission(action: str, resource_type: str, *, lookup: str = "pk",
                               deny_status: int = 404) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    permission = HasObjectPermission(action, resource_type, lookup=lookup, deny_status=deny_status)

    def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def wrapper(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            object_id = kwargs.get(lookup)
            if object_id is None or not can(request, action, (resource_type, object_id)):
                raise _deny(permission.deny_status)
            return handler(self, request, *args, **kwargs)

        return wrapper

    return decorator
