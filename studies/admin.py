from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from studies.access import scope_for
from studies.admin_base import (
    SPONSOR_ADMIN,
    AuditEventAdmin,
    InScopeSiteFilter,
    InScopeStudyFilter,
    ScopedAdmin,
)
from studies.audit import event_model_for, reason_for_change
from studies.models import (
    Arm,
    CriterionRule,
    EligibilityCriterion,
    Membership,
    RandomisationList,
    Site,
    StratificationFactor,
    Study,
    StudySite,
)
from studies.roles import AUDIT_READER_ROLES, STAFF_ROLES
from studies.services import user_sync_staff_flag

STUDY = ("study", InScopeStudyFilter)


class ArmInline(admin.TabularInline):
    """Arms of a study, editable by the study's sponsor administrators (obj is the study)."""

    model = Arm
    extra = 0

    def get_queryset(self, request):
        # Blinded users of a double-blind study see no arm (the arms would reveal nothing alone,
        # but arm names must not appear anywhere a blinded user looks).
        return Arm.objects.for_user(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return scope_for(request.user).has_role_anywhere(STAFF_ROLES)

    def has_change_permission(self, request, obj=None) -> bool:
        scope = scope_for(request.user)
        if obj is None:
            return scope.has_role_anywhere(SPONSOR_ADMIN)
        return scope.has_role(SPONSOR_ADMIN, obj.pk)

    def has_add_permission(self, request, obj=None) -> bool:
        return self.has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_change_permission(request, obj)


@admin.register(Study)
class StudyAdmin(ScopedAdmin):
    study_path = ""
    list_display = [
        "code",
        "acronym",
        "registry_id",
        "phase",
        "design",
        "blinding",
        "target_enrolment",
        "status",
    ]
    list_filter = ["phase", "design", "blinding", "status"]
    search_fields = ["code", "acronym", "title", "registry_id"]
    inlines = [ArmInline]

    def has_delete_permission(self, request, obj=None) -> bool:
        # A study is never deleted from the panel (its trial data protect it anyway).
        return request.user.is_superuser


@admin.register(Site)
class SiteAdmin(ScopedAdmin):
    list_display = ["institution", "city", "country"]
    list_filter = ["country"]
    search_fields = ["institution", "city"]

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, None)

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def can_read_history(self, request, obj) -> bool:
        # An institution is shared by studies: any audit reader who can see it may read it.
        return scope_for(request.user).has_role_anywhere(AUDIT_READER_ROLES)


@admin.register(StudySite)
class StudySiteAdmin(ScopedAdmin):
    list_display = [
        "study",
        "number",
        "site",
        "recruitment_status",
        "activation_date",
        "principal_investigator",
    ]
    list_filter = [STUDY, "recruitment_status", "site__country"]
    search_fields = ["site__institution", "site__city", "number", "principal_investigator"]
    list_select_related = ["study", "site"]
    autocomplete_fields = ["site"]


@admin.register(Membership)
class MembershipAdmin(ScopedAdmin):
    list_display = ["user", "study", "study_site", "role", "blinded", "is_active"]
    list_filter = [STUDY, "role", "blinded", "is_active", ("study_site__site", InScopeSiteFilter)]
    search_fields = ["user__username", "user__last_name", "user__email"]
    list_select_related = ["user", "study", "study_site__site"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        with reason_for_change("Admin panel access follows the user's roles"):
            user_sync_staff_flag(user=obj.user)


class CriterionRuleInline(admin.TabularInline):
    model = CriterionRule
    extra = 0

    def has_view_permission(self, request, obj=None) -> bool:
        return scope_for(request.user).has_role_anywhere(STAFF_ROLES)

    def _administers(self, request, obj) -> bool:
        scope = scope_for(request.user)
        return (
            scope.has_role(SPONSOR_ADMIN, obj.study_id)
            if obj
            else scope.has_role_anywhere(SPONSOR_ADMIN)
        )

    def has_change_permission(self, request, obj=None) -> bool:
        return self._administers(request, obj)

    def has_add_permission(self, request, obj=None) -> bool:
        return self._administers(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._administers(request, obj)


@admin.register(EligibilityCriterion)
class EligibilityCriterionAdmin(ScopedAdmin):
    """Criteria as data: verbatim text, and the rules the app computes (no code needed)."""

    list_display = ["study", "kind", "number", "short_text", "computed"]
    list_filter = [STUDY, "kind", "is_active"]
    search_fields = ["text"]
    list_select_related = ["study"]
    inlines = [CriterionRuleInline]

    def get_queryset(self, request):
        scope = scope_for(request.user)
        qs = EligibilityCriterion.objects.all()
        return qs if scope.superuser else qs.filter(study_id__in=scope.study_ids)

    @admin.display(description=_("text"))
    def short_text(self, obj) -> str:
        return obj.text[:90]

    @admin.display(description=_("computed"), boolean=True)
    def computed(self, obj) -> bool:
        return obj.rules.exists()


@admin.register(StratificationFactor)
class StratificationFactorAdmin(ScopedAdmin):
    list_display = ["study", "name", "label", "levels"]
    list_filter = [STUDY]

    def get_queryset(self, request):
        scope = scope_for(request.user)
        qs = StratificationFactor.objects.all()
        return qs if scope.superuser else qs.filter(study_id__in=scope.study_ids)


@admin.register(RandomisationList)
class RandomisationListAdmin(ScopedAdmin):
    """Which lists exist and who made them; never the seed or the slots (concealment)."""

    list_display = ["study", "pk", "created_by", "created_at", "uploaded", "is_active"]
    list_filter = [STUDY, "is_active"]
    fields = [
        "study",
        "created_by",
        "created_at",
        "uploaded",
        "is_active",
        "slots_per_stratum",
        "block_multipliers",
    ]
    readonly_fields = [
        "study",
        "created_by",
        "created_at",
        "uploaded",
        "slots_per_stratum",
        "block_multipliers",
    ]

    def get_queryset(self, request):
        scope = scope_for(request.user)
        qs = RandomisationList.objects.select_related("study", "created_by")
        return qs if scope.superuser else qs.filter(study_id__in=scope.study_ids)

    def has_add_permission(self, request) -> bool:
        return False  # generated by the statistician on the study's randomisation page

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


for _model in (Study, Arm, StudySite, Membership):
    admin.site.register(event_model_for(_model), AuditEventAdmin)
from studies import admin_exports, admin_reports, admin_visits  # noqa: E402,F401 - admin pages
