"""Scheduled PDF reports in the sponsor's panel: schedules (sponsor administrators) and the
log of every delivery (read-only: who, when, which report, success or error)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from studies.access import scope_for
from studies.admin_base import ReadOnlyLogAdmin, ScopedAdmin
from studies.models import ReportDelivery, ReportSchedule


def _visible_study_ids(request):
    scope = scope_for(request.user)
    return None if scope.superuser else scope.study_ids


@admin.register(ReportSchedule)
class ReportScheduleAdmin(ScopedAdmin):
    """When a study's site and study reports are emailed (in the study's time zone)."""

    list_display = ["study", "frequency", "weekday", "day_of_month", "hour", "active"]
    list_filter = ["frequency", "active"]
    list_select_related = ["study"]
    fields = ["study", "frequency", "weekday", "day_of_month", "hour", "active"]

    def get_queryset(self, request):
        qs = ReportSchedule.objects.select_related("study")
        ids = _visible_study_ids(request)
        return qs if ids is None else qs.filter(study_id__in=ids)


@admin.register(ReportDelivery)
class ReportDeliveryAdmin(ReadOnlyLogAdmin):
    """Every scheduled report sent or attempted; written by the task only."""

    list_display = [
        "created_at",
        "study",
        "period",
        "kind",
        "study_site",
        "recipient",
        "email",
        "language",
        "sent_at",
        "attempts",
        "short_error",
    ]
    list_filter = ["kind", "period", ("sent_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "recipient__username", "period"]
    list_select_related = ["schedule__study", "study_site__site", "recipient"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        qs = (
            super()
            .get_queryset(request)
            .select_related("schedule__study", "study_site__site", "recipient")
        )
        ids = _visible_study_ids(request)
        return qs if ids is None else qs.filter(schedule__study_id__in=ids)

    @admin.display(description=_("study"), ordering="schedule__study__code")
    def study(self, obj) -> str:
        return str(obj.schedule.study)

    @admin.display(description=_("error"))
    def short_error(self, obj) -> str:
        return obj.last_error[:80]
