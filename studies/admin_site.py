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
