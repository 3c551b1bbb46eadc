"""Data management in the sponsor's panel: queries, verifications, signatures and locks, read-only.

They are written on the app's pages (casebook, queries, study locks), where the rules live; here
the sponsor lists and filters them, scoped like the patients.
"""

from __future__ import annotations

from django.contrib import admin

from patients import locking
from patients.models import Patient
from patients.models_dm import DataLock, DataQuery, Signature, SourceVerification
from studies.admin_base import InScopeStudyFilter, ScopedAdmin

STUDY = ("patient__study_site__study", InScopeStudyFilter)


class _ReadOnlyPatientDataAdmin(ScopedAdmin):
    study_path = "patient__study_site__study"

    def get_queryset(self, request):
        return self.model.objects.filter(
            patient__in=Patient.objects.for_user(request.user)
        ).select_related("patient__study_site__study", "patient__study_site__site")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DataQuery)
class DataQueryAdmin(_ReadOnlyPatientDataAdmin):
    list_display = ["pk", "patient", "form_kind", "field", "status", "origin", "opened_at"]
    list_filter = [STUDY, "status", "origin", "form_kind"]
    search_fields = ["patient__subject_id", "check_key"]
    fields = readonly_fields = [
        "patient",
        "form_kind",
        "object_id",
        "field",
        "status",
        "origin",
        "check_key",
        "opened_by",
        "opened_at",
        "closed_at",
    ]


@admin.register(SourceVerification)
class SourceVerificationAdmin(_ReadOnlyPatientDataAdmin):
    list_display = ["patient", "form_kind", "object_id", "verified_by", "verified_at"]
    list_filter = [STUDY, "form_kind"]
    search_fields = ["patient__subject_id"]
    fields = readonly_fields = [
        "patient",
        "form_kind",
        "object_id",
        "content_hash",
        "verified_by",
        "verified_at",
    ]


@admin.register(Signature)
class SignatureAdmin(_ReadOnlyPatientDataAdmin):
    list_display = ["patient", "printed_name", "signed_at", "scope"]
    list_filter = [STUDY, "scope"]
    search_fields = ["patient__subject_id", "printed_name"]
    fields = readonly_fields = [
        "patient",
        "signer",
        "printed_name",
        "signed_at",
        "meaning",
        "scope",
        "forms",
        "content_hash",
    ]


@admin.register(DataLock)
class DataLockAdmin(_ReadOnlyPatientDataAdmin):
    study_path = "study"
    list_display = [
        "level",
        "study",
        "study_site",
        "patient",
        "form_kind",
        "locked_at",
        "released_at",
    ]
    list_filter = [("study", InScopeStudyFilter), "level"]
    search_fields = ["patient__subject_id", "reason"]
    fields = readonly_fields = [
        "level",
        "study",
        "study_site",
        "patient",
        "form_kind",
        "object_id",
        "reason",
        "locked_by",
        "locked_at",
        "released_by",
        "released_at",
        "release_reason",
    ]

    def get_queryset(self, request):
        return locking.locks_for_user(request.user).select_related(
            "study", "study_site__site", "patient"
        )
