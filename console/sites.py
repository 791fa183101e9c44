"""The admin site of the console: the stock ``AdminSite`` (same URLs, same permission model) plus its pages:
the role lattice (``roles/``) and the dashboard on the index."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from authz.roles import LATTICE
from console.admin_base import scoped_admin_class
from console.dashboard import dashboard_for
from console.lattice import draw_lattice
from console.scoping import is_console_user
from console.selectors import profile_counts_by_role


def profiles_url(role: str) -> str:
    """The profile changelist filtered by ``role``."""
    return f"{reverse('admin:accounts_profile_changelist')}?{urlencode({'role': role})}"


class ConsoleAdminSite(admin.AdminSite):
    site_header = "saaskit console"
    site_title = "saaskit console"
    index_title = "Console"

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        """Every ModelAdmin gets ``console.admin_base.ScopedModelAdmin`` beneath it: instance admins see their
        instances' rows only, platform-level rows are for superusers (a new ModelAdmin cannot forget it)."""
        super().register(model_or_iterable, scoped_admin_class(admin_class or admin.ModelAdmin), **options)

    def get_urls(self) -> list[URLPattern]:
        own = [path("roles/", self.admin_view(self.roles_view), name="roles")]
        return own + super().get_urls()

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        console_user = is_console_user(request.user)
        extra_context = {**(extra_context or {}), "console_pages": console_user,
                         "dashboard": dashboard_for(user=request.user) if console_user else None}
        return super().index(request, extra_context)

    def roles_view(self, request: HttpRequest) -> HttpResponse:
        """The role lattice from ``authz.roles.LATTICE`` as SVG, each role with its number of profiles
        (among the instances the caller administers) linking to the filtered profile list."""
        if not is_console_user(request.user):
            raise PermissionDenied
        counts = profile_counts_by_role(user=request.user)
        drawing = draw_lattice(LATTICE, counts, profiles_url)
        context: dict[str, Any] = {
            **self.each_context(request),
            "title": "Roles",
            "drawing": drawing,
            "roles": [
                {"role": role, "count": counts.get(name, 0), "url": profiles_url(name)}
                for name, role in LATTICE.roles.items()
            ],
        }
        return TemplateResponse(request, "console/roles.html", context)
