"""Request lookups of trial data: 404 for objects outside the user's scope, 403 for read-only."""

from __future__ import annotations

from django.http import Http404

from studies.access import require, scope_for
from studies.compiled import CompiledQuery
from studies.models import Study, StudySite
from studies.roles import AUDIT_READER_ROLES, DATA_ENTRY_ROLES, STUDY_MANAGER_ROLES


def get_study_for_user(user, pk: int) -> Study:
    study = Study.objects.for_user(user).filter(pk=pk).first()
    if study is None:
        raise Http404
    return study


# A study-site with its study and site, compiled once per process (studies/compiled.py): the
# scope is checked on the row.
_STUDY_SITE = CompiledQuery(
    lambda pk: StudySite.objects.select_related("study", "site").order_by().filter(pk=pk)
)


def get_study_site_for_user(user, pk: int, *, write: bool = False) -> StudySite:
    study_site = _STUDY_SITE.first(int(pk))
    if study_site is None or not scope_for(user).sees_site(study_site.study_id, study_site.pk):
        raise Http404
    if write:
        require(scope_for(user).has_role(STUDY_MANAGER_ROLES, study_site.study_id))
    return study_site


def require_audit_reader(user, study_id: int, study_site_id: int | None = None) -> None:
    require(scope_for(user).has_role(AUDIT_READER_ROLES, study_id, study_site_id))


def _patient_by_pk(write: bool):
    """The patient of a primary key with its study-site, study and site (and, for a write,
    whether a lock covers it), compiled once per process: the scope is checked on the row."""

    def build(pk: int):
        from patients.models import Patient

        # No ordering: one row by primary key (the default order joins and sorts for nothing).
        patients = Patient.objects.select_related("study_site__study", "study_site__site")
        if write:
            from patients.locking import patient_lock_subquery

            patients = patients.annotate(active_lock_id=patient_lock_subquery())
        return patients.order_by().filter(pk=pk)

    return CompiledQuery(build)


_PATIENT = {False: _patient_by_pk(write=False), True: _patient_by_pk(write=True)}


def get_patient_for_user(user, pk: int, *, write: bool = False):
    """A patient of the user's scope (404 otherwise); ``write`` needs a data-entry role there."""
    patient = _PATIENT[write].first(int(pk))
    scope = scope_for(user)
    if patient is None or not scope.sees_site(patient.study_site.study_id, patient.study_site_id):
        raise Http404
    if write:
        require(
            scope.has_role(DATA_ENTRY_ROLES, patient.study_site.study_id, patient.study_site_id)
        )
        if patient.active_lock_id is not None:
            from patients.locking import DataLock, DataLocked

            raise DataLocked(DataLock.objects.get(pk=patient.active_lock_id))
    return patient


def require_data_entry(user, study_site) -> None:
    require(scope_for(user).has_role(DATA_ENTRY_ROLES, study_site.study_id, study_site.pk))
