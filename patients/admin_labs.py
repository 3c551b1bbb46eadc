"""Laboratory data in the sponsor's panel: results read-only, site normal ranges editable.

Results are entered by the site on its pages (the grade is computed there); the sponsor reads
and audits them here.  A normal range saved here goes through the same service as the site's
page (``lab_services.normal_range_save``): units and limits checked, the site's results of the
analyte re-graded, the reason for change recorded.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from patients import lab_services
from patients.models_safety import LabResult, NormalRange
from studies.admin_base import (
    AuditEventAdmin,
    CountSafeAdmin,
    GradeFilter,
    InScopeStudyFilter,
    ReasonAdminForm,
    RecentFilter,
    ScopedAdmin,
)
from studies.audit import event_model_for


class SampledFilter(RecentFilter):
    title = _("sampled")
    parameter_name = "sampled"
    field = "sampled_on"
    dates = True


@admin.register(LabResult)
class LabResultAdmin(CountSafeAdmin, ScopedAdmin):
    """Tens of thousands of results: counts capped, filters without a query of their own."""

    study_path = "patient__study_site__study"
    list_display = [
        "patient",
        "sampled_on",
        "analyte",
        "value",
        "unit",
        "value_standard",
        "standard_unit",
        "grade",
        "grade_problem",
    ]
    list_filter = [
        ("patient__study_site__study", InScopeStudyFilter),
        "analyte",
        GradeFilter,
        SampledFilter,
    ]
    # Newest first: an index scan on the primary key (the model's own ordering sorts every row
    # of the list by study, site and patient).
    ordering = ["-pk"]
    search_fields = ["patient__subject_id"]
    list_select_related = ["patient"]
    fields = readonly_fields = [
        "patient",
        "sampled_on",
        "analyte",
        "value",
        "unit",
        "value_standard",
        "standard_unit",
        "lln",
        "uln",
        "range_unit",
        "ctcae_term",
        "grade",
        "grade_rule",
        "grade_problem",
    ]

    def get_queryset(self, request):
        return LabResult.objects.for_user(request.user).select_related("patient__study_site__study")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class NormalRangeAdminForm(ReasonAdminForm):
    class Meta:
        model = NormalRange
        fields = ["study_site", "analyte", "lln", "uln", "unit"]

    def clean(self):
        cleaned = super().clean()
        analyte = cleaned.get("analyte") or getattr(self.instance, "analyte", "")
        if analyte:
            problems = lab_services.normal_range_problems(
                analyte, cleaned.get("lln"), cleaned.get("uln"), cleaned.get("unit", "")
            )
            for name, message in problems.items():
                self.add_error(name if name in self.fields else None, message)
        return cleaned


@admin.register(NormalRange)
class NormalRangeAdmin(ScopedAdmin):
    """Sponsor administrators edit a site's ranges; removing one is done on the site's page."""

    form = NormalRangeAdminForm
    study_path = "study_site__study"
    list_display = ["study_site", "analyte", "lln", "uln", "unit"]
    list_filter = [("study_site__study", InScopeStudyFilter), "analyte"]
    search_fields = ["study_site__site__institution", "study_site__number"]
    list_select_related = ["study_site__study", "study_site__site"]

    def get_queryset(self, request):
        return NormalRange.objects.for_user(request.user).select_related(
            "study_site__study", "study_site__site"
        )

    def get_readonly_fields(self, request, obj=None):
        return ["study_site", "analyte"] if obj is not None else []

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a removed range must re-grade results: done on the site's page

    def save_model(self, request, obj, form, change):
        # The form has checked the range (normal_range_problems) and the reason.
        saved = lab_services.normal_range_save(
            study_site=obj.study_site,
            analyte=obj.analyte,
            lln=obj.lln,
            uln=obj.uln,
            unit=obj.unit,
            by=request.user,
            reason=form.cleaned_data.get("reason", "") if change else "created",
        )
        if saved is not None:
            obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        return None  # no inlines


admin.site.register(event_model_for(LabResult), AuditEventAdmin)
