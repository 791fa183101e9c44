from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ConsoleConfig(AppConfig):
    """The operator console: the admin site with its extra pages (roles, dashboard), the audit list, ``doctor``.

    It sits on top of every app (it reads their models); nothing imports it.
    """

    name = "console"
    default = True
    default_auto_field = "django.db.models.BigAutoField"


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with ``console.sites.ConsoleAdminSite`` as ``admin.site``: the stock admin's URLs
    and permission model, plus the console's pages."""

    default = False
    default_site = "console.sites.ConsoleAdminSite"
