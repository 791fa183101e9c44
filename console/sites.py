"""The admin site of the console: the stock ``AdminSite`` (same URLs, same permission model) plus its pages."""

from __future__ import annotations

from django.contrib import admin


class ConsoleAdminSite(admin.AdminSite):
    site_header = "saaskit console"
    site_title = "saaskit console"
    index_title = "Console"
