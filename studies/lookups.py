"""Request lookups of trial data: 404 for objects outside the user's scope, 403 for read-only."""

from __future__ import annotations

from django.http import Http404

from studies.access import require, scope_for
from studies.models import Study, StudySite
from studies.roles import AUDIT_READER_ROLES, DATA_ENTRY_ROLES, STUDY_MANAGER_ROLES


def get_study_for_user(user, pk: int) -> Study:
    study = Study.objects.for_user(user).filter(pk=pk).first()
    if study is None:
        raise Http404
    return study


def get_study_site_for_user(user, pk: int, *, write: bool = False) -> StudySite:
    study_site = (
        StudySite.objects.for_user(user).select_related("study", "site").filter(pk=pk).first()
    )
    if study_site is None:
        raise Http404
    if write:
        require(scope_for(user).has_role(STUDY_MANAGER_ROLES, study_site.study_id))
    return study_site


def require_audit_reader(user, study_id: int, study_site_id: int | None = None) -> None:
    require(scope_for(user).has_role(AUDIT_READER_ROLES, study_id, study_site_id))


def get_patient_for_user(user, pk: int, *, write: bool = False):
    """A patient of the user's scope (404 otherwise); ``write`` needs a data-entry role there."""
    from patients.models import Patient

    # No ordering: one row by primary key (the model's default order joins and sorts for nothing).
    patients = (
        Patient.objects.for_user(user)
        .select_related("study_site__study", "study_site__site")
        .order_by()
    )
    if write:
        from patients.locking import patient_lock_subquery

        # Whether a lock covers the patient, in the same query.
        patients = patients.annotate(active_lock_id=patient_lock_subquery())
    patient = patients.filter(pk=pk).first()
    if patient is None:
        raise Http404
    if write:
        require(
            scope_for(user).has_role(
                DATA_ENTRY_ROLES, patient.study_site.study_id, patient.study_site_id
            )
        )
        if patient.active_lock_id is not None:
            from patients.locking import DataLock, DataLocked

            raise DataLocked(DataLock.objects.get(pk=patient.active_lock_id))
    return patient


def require_data_entry(user, study_site) -> None:
    require(scope_for(user).has_role(DATA_ENTRY_ROLES, study_site.study_id, study_site.pk))
