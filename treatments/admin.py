"""Protocol rules of radiotherapy in the sponsor's panel (the rules are study data)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q

from studies.access import scope_for
from studies.admin_base import ScopedAdmin
from studies.models import Arm
from studies.roles import AUDIT_READER_ROLES
from treatments.models import (
    Agent,
    ArmPrescription,
    DrugCycle,
    DrugRegimen,
    SbrtConstraint,
    SystemicLine,
)


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


@admin.register(Agent)
class AgentAdmin(ScopedAdmin):
    """The controlled list of systemic agents, shared by every study."""

    list_display = ["name", "drug_class"]
    list_filter = ["drug_class"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return Agent.objects.all()

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, None)

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def can_read_history(self, request, obj) -> bool:
        return scope_for(request.user).has_role_anywhere(AUDIT_READER_ROLES)


@admin.register(DrugRegimen)
class DrugRegimenAdmin(ScopedAdmin):
    """A regimen given in one arm reveals the arm: shown to unblinded users only."""

    list_display = [
        "study",
        "arm",
        "agent",
        "dose",
        "dose_basis",
        "route",
        "days_per_cycle",
        "cycle_length_days",
        "max_cycles",
        "bsa_formula",
    ]
    list_select_related = ["study", "arm", "agent"]

    def get_queryset(self, request):
        visible_arms = Arm.objects.for_user(request.user)
        scope = scope_for(request.user)
        qs = DrugRegimen.objects.select_related("study", "arm", "agent")
        if not scope.superuser:
            qs = qs.filter(study_id__in=scope.study_ids)
        return qs.filter(Q(arm__isnull=True) | Q(arm__in=visible_arms))


class _ReadOnlyPatientDataAdmin(ScopedAdmin):
    """Entered by the site on its pages; the sponsor reads (and audits) them here."""

    study_path = "patient__study_site__study"

    def get_queryset(self, request):
        return self.model.objects.for_user(request.user)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SystemicLine)
class SystemicLineAdmin(_ReadOnlyPatientDataAdmin):
    list_display = ["patient", "line_number", "start", "end", "stop_reason"]
    list_filter = ["patient__study_site__study", "stop_reason"]
    search_fields = ["patient__subject_id"]
    list_select_related = ["patient"]
    fields = readonly_fields = [
        "patient",
        "line_number",
        "start",
        "end",
        "stop_reason",
        "stop_detail",
    ]


@admin.register(DrugCycle)
class DrugCycleAdmin(_ReadOnlyPatientDataAdmin):
    """Study drug cycles reveal the arm: blinded users see none."""

    list_display = ["patient", "regimen", "number", "planned_on", "given_on", "status"]
    list_filter = ["patient__study_site__study", "status"]
    search_fields = ["patient__subject_id"]
    list_select_related = ["patient", "regimen__agent"]
    fields = readonly_fields = [
        "patient",
        "regimen",
        "number",
        "planned_on",
        "given_on",
        "height_cm",
        "weight_kg",
        "bsa_m2",
        "planned_daily_mg",
        "planned_total_mg",
        "given_total_mg",
        "status",
        "reason",
        "dose_explanation",
    ]

    def get_queryset(self, request):
        visible_arms = Arm.objects.for_user(request.user)
        return (
            DrugCycle.objects.for_user(request.user)
            .filter(patient__allocation__arm__in=visible_arms)
            .select_related("patient", "regimen__agent")
        )
