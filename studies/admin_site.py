"""The sponsor's admin panel: 403 (not a login loop) for signed-in users who are not staff."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _


class OligoAdminSite(admin.AdminSite):
    site_header = _("OligoCRF sponsor administration")
    site_title = _("OligoCRF administration")
    index_title = _("Studies, sites and people")

    def admin_view(self, view, cacheable=False):
        wrapped = super().admin_view(view, cacheable)

        def inner(request, *args, **kwargs):
            if request.user.is_authenticated and not self.has_permission(request):
                raise PermissionDenied
            return wrapped(request, *args, **kwargs)

        inner.__dict__.update(wrapped.__dict__)
        return inner

    def get_app_list(self, request, app_label=None):
        """Django's list, in the same order, sorted on the translated names.

        Every admin page builds it (the navigation sidebar). Django sorts on the lazy names,
        translated again at each comparison of the sort: some 180 translations a page here.
        """
        app_dict = self._build_app_dict(request, app_label)
        app_list = sorted(app_dict.values(), key=lambda app: str(app["name"]).lower())
        for app in app_list:
            app["models"].sort(key=lambda model: str(model["name"]))
        return app_list
