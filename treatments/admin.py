"""Protocol rules of radiotherapy in the sponsor's panel (the rules are study data)."""

from __future__ import annotations

from django.contrib import admin

from studies.access import scope_for
from studies.admin_base import ScopedAdmin
from studies.models import Arm
from treatments.models import ArmPrescription, SbrtConstraint


@admin.register(SbrtConstraint)
class SbrtConstraintAdmin(ScopedAdmin):
    list_display = [
        "study",
        "allowed_fractions",
        "max_overall_days",
        "weekdays_only",
        "max_cumulated_diameter_mm",
        "min_treated_diameter_mm",
        "all_progressing_lesions_treated",
        "max_dose_per_fraction_gy",
    ]
    list_select_related = ["study"]

    def get_queryset(self, request):
        scope = scope_for(request.user)
        qs = SbrtConstraint.objects.select_related("study")
        return qs if scope.superuser else qs.filter(study_id__in=scope.study_ids)


@admin.register(ArmPrescription)
class ArmPrescriptionAdmin(ScopedAdmin):
    """A prescription fixed by an arm reveals the arm: shown to unblinded users only."""

    study_path = "arm__study"
    list_display = ["arm", "total_dose_gy", "fractions"]
    list_select_related = ["arm__study"]

    def get_queryset(self, request):
        return ArmPrescription.objects.filter(
            arm__in=Arm.objects.for_user(request.user)
        ).select_related("arm__study")
