"""Adverse events in the sponsor's panel (issue #6 part 7).

Adverse events and SAE reports are entered by the sites on their pages: the sponsor reads (and
audits) them here, scoped like the patients. Safety rules are study settings, edited by the
sponsor's administrators. The NCI CTCAE v5.0 terms are reference data, read-only, visible to all
staff.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from patients.models import AdverseEvent, CtcaeTerm, SaeReport, SafetyRules
from studies.access import scope_for
from studies.admin_base import (
    AuditEventAdmin,
    CountSafeAdmin,
    GradeFilter,
    InScopeStudyFilter,
    ScopedAdmin,
)
from studies.audit import event_model_for


class _ReadOnlyAdmin(ScopedAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AdverseEvent)
class AdverseEventAdmin(CountSafeAdmin, _ReadOnlyAdmin):
    """Tens of thousands of events: counts capped, filters without a query of their own."""

    study_path = "patient__study_site__study"
    list_display = [
        "patient",
        "term",
        "grade",
        "onset_on",
        "resolved_on",
        "serious",
        "dlt",
        "outcome",
        "study_site",
    ]
    list_filter = [
        ("patient__study_site__study", InScopeStudyFilter),
        GradeFilter,
        "serious",
        "dlt",
        "outcome",
    ]
    # Newest first: an index scan on the primary key (the model's own ordering sorts every row
    # of the list by study, site and patient).
    ordering = ["-pk"]
    search_fields = ["patient__subject_id", "term__term"]
    list_select_related = ["patient__study_site__study", "patient__study_site__site", "term"]
    readonly_fields = [
        "patient",
        *AdverseEvent.ENTERED_FIELDS,
        "dlt_rule",
        "created_at",
    ]
    fields = readonly_fields

    def get_queryset(self, request):
        return AdverseEvent.objects.for_user(request.user).select_related(
            "patient__study_site__study", "patient__study_site__site", "term"
        )

    @admin.display(description=_("site"), ordering="patient__study_site__number")
    def study_site(self, obj) -> str:
        return str(obj.patient.study_site)


@admin.register(SaeReport)
class SaeReportAdmin(_ReadOnlyAdmin):
    study_path = "adverse_event__patient__study_site__study"
    list_display = ["adverse_event", "kind", "reported_on", "created_at"]
    list_filter = [("adverse_event__patient__study_site__study", InScopeStudyFilter), "kind"]
    search_fields = ["adverse_event__patient__subject_id"]
    list_select_related = ["adverse_event__patient", "adverse_event__term"]
    readonly_fields = ["adverse_event", "kind", "reported_on", "narrative", "created_at"]
    fields = readonly_fields

    def get_queryset(self, request):
        visible = AdverseEvent.objects.for_user(request.user)
        return SaeReport.objects.filter(adverse_event__in=visible).select_related(
            "adverse_event__patient__study_site__study", "adverse_event__term"
        )


@admin.register(SafetyRules)
class SafetyRulesAdmin(ScopedAdmin):
    list_display = [
        "study",
        "sae_report_hours",
        "late_after_days",
        "dlt_window_days",
        "dlt_stop_count",
        "lymphopenia_day",
        "lymphopenia_window_days",
    ]
    list_select_related = ["study"]

    def get_queryset(self, request):
        scope = scope_for(request.user)
        qs = SafetyRules.objects.select_related("study")
        return qs if scope.superuser else qs.filter(study_id__in=scope.study_ids)


@admin.register(CtcaeTerm)
class CtcaeTermAdmin(_ReadOnlyAdmin):
    """NCI CTCAE v5.0 (reference data loaded by migration): searchable, never edited."""

    list_display = ["term", "soc", "meddra_code"]
    list_filter = ["soc"]
    search_fields = ["term", "soc", "meddra_code"]
    readonly_fields = [
        "meddra_code",
        "soc",
        "term",
        "definition",
        "grade1",
        "grade2",
        "grade3",
        "grade4",
        "grade5",
    ]
    fields = readonly_fields

    def get_queryset(self, request):
        return CtcaeTerm.objects.all()

    def can_read_history(self, request, obj) -> bool:
        return False  # reference data, not audited: it changes only with a new CTCAE version


admin.site.register(event_model_for(AdverseEvent), AuditEventAdmin)
