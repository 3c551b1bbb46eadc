"""The sponsor's admin panel: 403 (not a login loop) for signed-in users who are not staff."""

from __future__ import annotations

import functools

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models.base import ModelBase
from django.template.loader import render_to_string
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

#: Sidebars kept rendered (a few users' lists times the pages they open).
NAV_CACHE_SIZE = 256


class OligoAdminSite(admin.AdminSite):
    site_header = _("OligoCRF sponsor administration")
    site_title = _("OligoCRF administration")
    index_title = _("Studies, sites and people")

    def __init__(self, name="admin"):
        super().__init__(name)
        self._nav_cache: dict[tuple, str] = {}

    def register(self, model_or_iterable, admin_class=None, **options):
        """Admins that go by Django's model permissions (users, groups, axes, OTP devices) show
        in the navigation of superusers only.

        The project grants no Django permission (roles are study memberships): only superusers
        ever had these modules. Asking Django's permissions cost every admin page of every other
        user two queries (their user and group permissions), to learn that they have none.
        """
        super().register(model_or_iterable, admin_class, **options)
        models = (
            [model_or_iterable] if isinstance(model_or_iterable, ModelBase) else model_or_iterable
        )
        for model in models:
            model_admin = self._registry[model]
            if type(model_admin).has_module_permission is admin.ModelAdmin.has_module_permission:
                model_admin.has_module_permission = _superuser_only

    def admin_view(self, view, cacheable=False):
        wrapped = super().admin_view(view, cacheable)

        def inner(request, *args, **kwargs):
            if request.user.is_authenticated and not self.has_permission(request):
                raise PermissionDenied
            return wrapped(request, *args, **kwargs)

        inner.__dict__.update(wrapped.__dict__)
        return inner

    def each_context(self, request):
        context = super().each_context(request)
        apps = context["available_apps"]
        # Called by the template (and only there: pages without the sidebar never render it).
        context["nav_app_list"] = functools.cache(lambda: self._nav_app_list(request, apps))
        return context

    def _nav_app_list(self, request, apps) -> str:
        """The sidebar's list of apps (``admin/app_list.html``), rendered once per distinct list,
        page and language: some 40 rows of 36 models otherwise rendered on every admin page.

        The template reads the list, ``request.path`` (the current app and model) and the
        active language only.
        """
        key = (
            get_language(),
            request.path,
            tuple(
                (
                    app["app_label"],
                    str(app["name"]),
                    app["app_url"],
                    tuple(
                        (
                            m["object_name"],
                            str(m["name"]),
                            m["admin_url"],
                            m["add_url"],
                            m.get("view_only"),
                        )
                        for m in app["models"]
                    ),
                )
                for app in apps
            ),
        )
        html = self._nav_cache.get(key)
        if html is None:
            html = render_to_string(
                "admin/app_list.html",
                {"app_list": apps, "show_changelinks": False, "request": request},
            )
            if len(self._nav_cache) >= NAV_CACHE_SIZE:
                self._nav_cache.clear()  # atomic: safe under threads
            self._nav_cache[key] = html
        return html

    def get_app_list(self, request, app_label=None):
        """Django's list, in the same order, sorted on the translated names.

        Every admin page builds it (the navigation sidebar). Django sorts on the lazy names,
        translated again at each comparison of the sort: some 180 translations a page here.
        """
        app_dict = self._build_app_dict(request, app_label)
        for app in app_dict.values():  # translated once (the sort, then the page, read them)
            app["name"] = str(app["name"])
            for model in app["models"]:
                model["name"] = str(model["name"])
        app_list = sorted(app_dict.values(), key=lambda app: app["name"].lower())
        for app in app_list:
            app["models"].sort(key=lambda model: model["name"])
        return app_list


def _superuser_only(request) -> bool:
    return request.user.is_active and request.user.is_superuser
