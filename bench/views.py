"""Floor pages of the benchmark: what any page costs before it does anything of its own.

Every figure of ``bench/run.py`` is reported as a ratio to these floors, measured on the same
run and machine: a bare view (the middleware stack and a tiny response), a plain page rendering
200 rows of one query through the site's layout, and a changelist of a plain ModelAdmin on an
admin site of its own (no filters, no search, no scoping).
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from patients.models import CtcaeTerm

TABLE_ROWS = 200


def bare(request: HttpRequest) -> HttpResponse:
    """The bare floor: a tiny response, no query of its own, no template."""
    return HttpResponse("ok", content_type="text/plain")


def table(request: HttpRequest) -> HttpResponse:
    """The table floor: 200 rows from one query rendered through ``templates/bench/table.html``."""
    rows = CtcaeTerm.objects.only("pk", "meddra_code", "soc", "term").order_by("pk")[:TABLE_ROWS]
    return render(request, "bench/table.html", {"rows": rows})


class BareAdminSite(admin.AdminSite):
    """An admin site for the changelist floor: open to any active staff user."""

    site_header = "OligoCRF bench"

    def has_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff


class BareTermAdmin(admin.ModelAdmin):
    """A plain changelist: three columns, default pagination, no filters, no search."""

    list_display = ["term", "soc", "meddra_code"]

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_staff

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_staff

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


bench_admin_site = BareAdminSite(name="bench_admin")
bench_admin_site.register(CtcaeTerm, BareTermAdmin)
