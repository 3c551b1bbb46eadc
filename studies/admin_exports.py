"""The export log in the sponsor's panel: every data export asked for (who, what, when, blinded
or not, its outcome). Read-only: jobs are created by the export page and updated by the task."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from studies.access import scope_for
from studies.admin_base import ReadOnlyLogAdmin
from studies.models import ExportJob


@admin.register(ExportJob)
class ExportJobAdmin(ReadOnlyLogAdmin):
    list_display = [
        "created_at",
        "study",
        "requested_by",
        "format",
        "blinded",
        "include_audit",
        "state",
        "rows",
        "finished_at",
        "short_error",
    ]
    list_filter = ["format", "state", "blinded"]
    search_fields = ["requested_by__username", "study__code"]
    list_select_related = ["study", "requested_by"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in ExportJob._meta.fields]

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("study", "requested_by")
        scope = scope_for(request.user)
        return qs if scope.superuser else qs.filter(study_id__in=scope.study_ids)

    @admin.display(description=_("error"))
    def short_error(self, obj) -> str:
        return obj.error[:80]
