from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class StudiesConfig(AppConfig):
    name = "studies"
    verbose_name = _("Studies and sites")


class OligoAdminConfig(admin_apps.AdminConfig):
    """The sponsor's admin panel, with every changelist scoped to the user's studies."""

    default = False
    default_site = "studies.admin_site.OligoAdminSite"
