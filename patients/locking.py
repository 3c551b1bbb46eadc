"""Locks: a form, a patient, a site or a whole study frozen until a data manager unlocks it.

Enforced in the database: a BEFORE trigger on every table holding case report form data finds
the row's patient (and form) and refuses the write when an active :class:`DataLock` covers it,
with SQLSTATE ``OC423``.  So the lock holds on every write path: our forms, the admin,
``QuerySet.update()``, bulk operations and raw SQL.  Pages check first (``lock_for``) to show a
clear message instead of a form; :class:`LockedDataMiddleware` turns a refusal that still reaches
the database into the same message, and the transaction that tried it rolls back.

Not locked: computed results (rebuilt from locked data, so they cannot change), planned visits
(derived from anchors; recording a visit goes through a patient-level check in its view) and
emergency unblinding (safety comes first).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import OuterRef, Q, Subquery
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from patients.models_dm import DataLock, FormKind
from studies.audit import reason_for_change

LOCK_SQLSTATE = "OC423"


@dataclass(frozen=True)
class Guard:
    """How a trigger on ``table`` finds the locks that cover a row ``r``."""

    table: str
    patient: str  # SQL giving the patient id
    kind: str  # SQL giving the form kind
    object: str  # SQL giving the form's root id
    site: str = "NULL"  # SQL giving the study-site id when the patient row may not exist yet


def _via(table: str, column: str, key: str) -> str:
    return f"(SELECT {column} FROM {table} WHERE id = r.{key})"


_ASSESSMENT_KIND = "CASE WHEN {} THEN 'baseline' ELSE 'assessment' END"

GUARDS: tuple[Guard, ...] = (
    Guard("patients_patient", "r.id", "'off_study'", "r.id", site="r.study_site_id"),
    Guard("patients_eligibilityfacts", "r.patient_id", "'eligibility'", "r.id"),
    *(
        Guard(
            table,
            "r.patient_id",
            "'eligibility'",
            "(SELECT id FROM patients_eligibilityfacts WHERE patient_id = r.patient_id)",
        )
        for table in (
            "patients_screeninglesion",
            "patients_screeninglab",
            "patients_eligibilityanswer",
        )
    ),
    Guard("patients_consent", "r.patient_id", "'consent'", "r.id"),
    Guard(
        "lesions_lesion",
        "r.patient_id",
        "'baseline'",
        "(SELECT id FROM lesions_imagingassessment"
        " WHERE patient_id = r.patient_id AND is_baseline ORDER BY id LIMIT 1)",
    ),
    Guard(
        "lesions_imagingassessment",
        "r.patient_id",
        _ASSESSMENT_KIND.format("r.is_baseline"),
        "r.id",
    ),
    Guard(
        "lesions_measurement",
        _via("lesions_imagingassessment", "patient_id", "assessment_id"),
        _ASSESSMENT_KIND.format(_via("lesions_imagingassessment", "is_baseline", "assessment_id")),
        "r.assessment_id",
    ),
    Guard("treatments_radiotherapycourse", "r.patient_id", "'course'", "r.id"),
    *(
        Guard(
            table,
            _via("treatments_radiotherapycourse", "patient_id", "course_id"),
            "'course'",
            "r.course_id",
        )
        for table in (
            "treatments_prescription",
            "treatments_fraction",
            "treatments_protocoldeviation",
        )
    ),
    Guard("treatments_systemicline", "r.patient_id", "'line'", "r.id"),
    Guard(
        "treatments_lineagent",
        _via("treatments_systemicline", "patient_id", "line_id"),
        "'line'",
        "r.line_id",
    ),
    Guard("treatments_drugcycle", "r.patient_id", "'drug'", "r.id"),
    Guard("patients_adverseevent", "r.patient_id", "'ae'", "r.id"),
    Guard(
        "patients_saereport",
        _via("patients_adverseevent", "patient_id", "adverse_event_id"),
        "'ae'",
        "r.adverse_event_id",
    ),
    Guard("patients_labresult", "r.patient_id", "'lab'", "r.id"),
)

_HOLDER_SQL = """
CREATE OR REPLACE FUNCTION oligocrf_lock_holder(
    p_site bigint, p_patient bigint, p_kind text, p_object bigint
) RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_site bigint := p_site;
    v_study bigint;
    v_lock bigint;
BEGIN
    IF v_site IS NULL AND p_patient IS NOT NULL THEN
        SELECT study_site_id INTO v_site FROM patients_patient WHERE id = p_patient;
    END IF;
    IF v_site IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT study_id INTO v_study FROM studies_studysite WHERE id = v_site;
    SELECT l.id INTO v_lock FROM patients_datalock l
     WHERE l.released_at IS NULL AND l.study_id = v_study
       AND (l.level = 'study'
            OR (l.level = 'site' AND l.study_site_id = v_site)
            OR (l.level = 'patient' AND l.patient_id = p_patient)
            OR (l.level = 'form' AND l.patient_id = p_patient
                AND l.form_kind = p_kind AND l.object_id = p_object))
     LIMIT 1;
    RETURN v_lock;
END $$;
"""

_GUARD_SQL = """
CREATE OR REPLACE FUNCTION oligocrf_guard_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_lock bigint;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        r := OLD;
        v_lock := oligocrf_lock_holder({site}, {patient}, {kind}, {object});
        IF v_lock IS NOT NULL THEN
            RAISE EXCEPTION 'oligocrf: data locked (lock %)', v_lock USING ERRCODE = '{state}';
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        r := NEW;
        v_lock := oligocrf_lock_holder({site}, {patient}, {kind}, {object});
        IF v_lock IS NOT NULL THEN
            RAISE EXCEPTION 'oligocrf: data locked (lock %)', v_lock USING ERRCODE = '{state}';
        END IF;
        RETURN NEW;
    END IF;
    RETURN OLD;
END $$;
DROP TRIGGER IF EXISTS oligocrf_lock_guard ON {table};
CREATE TRIGGER oligocrf_lock_guard BEFORE INSERT OR UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION oligocrf_guard_{table}();
"""


def install_sql() -> str:
    """The SQL creating (or replacing) the lock functions and triggers."""
    guards = [
        _GUARD_SQL.format(
            table=g.table,
            site=g.site,
            patient=g.patient,
            kind=g.kind,
            object=g.object,
            state=LOCK_SQLSTATE,
        )
        for g in GUARDS
    ]
    return _HOLDER_SQL + "\n".join(guards)


def uninstall_sql() -> str:
    drops = [
        f"DROP TRIGGER IF EXISTS oligocrf_lock_guard ON {g.table};"
        f" DROP FUNCTION IF EXISTS oligocrf_guard_{g.table}();"
        for g in GUARDS
    ]
    return (
        "\n".join(drops)
        + "\nDROP FUNCTION IF EXISTS oligocrf_lock_holder(bigint, bigint, text, bigint);"
    )


# --- Reading locks -------------------------------------------------------------------------------


def is_lock_error(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) is a lock trigger's refusal."""
    while exc is not None:
        if getattr(exc, "sqlstate", None) == LOCK_SQLSTATE:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def active_locks(study_id: int) -> models.QuerySet[DataLock]:
    return DataLock.objects.filter(study_id=study_id, released_at__isnull=True)


def patient_lock_q(patient) -> Q:
    """Active locks covering all of a patient's data (not single forms)."""
    return Q(released_at__isnull=True, study_id=patient.study_site.study_id) & (
        Q(level=DataLock.Level.STUDY)
        | Q(level=DataLock.Level.SITE, study_site_id=patient.study_site_id)
        | Q(level=DataLock.Level.PATIENT, patient_id=patient.pk)
    )


def patient_lock_subquery() -> Subquery:
    """The earliest active lock covering all of the outer query's patient (its id, or None):
    :func:`patient_lock_q` as a subquery of a ``Patient`` queryset."""
    covering = DataLock.objects.filter(
        Q(released_at__isnull=True, study_id=OuterRef("study_site__study_id"))
        & (
            Q(level=DataLock.Level.STUDY)
            | Q(level=DataLock.Level.SITE, study_site_id=OuterRef("study_site_id"))
            | Q(level=DataLock.Level.PATIENT, patient_id=OuterRef("pk"))
        )
    )
    return Subquery(covering.order_by("locked_at").values("pk")[:1])


def lock_for(patient, kind: str | None = None, object_id: int | None = None) -> DataLock | None:
    """The active lock covering the patient (or, given ``kind`` and ``object_id``, that form)."""
    q = patient_lock_q(patient)
    if kind is not None and object_id is not None:
        q |= Q(
            released_at__isnull=True,
            level=DataLock.Level.FORM,
            patient_id=patient.pk,
            form_kind=kind,
            object_id=object_id,
        )
    return DataLock.objects.filter(q).order_by("locked_at").first()


def locks_for_user(user) -> models.QuerySet[DataLock]:
    """The locks a user may list: study-wide ones of their studies, site locks of their sites,
    patient and form locks of patients they see (a site's monitor sees no other site's)."""
    from patients.models import Patient
    from studies.models import Study, StudySite

    return DataLock.objects.filter(
        Q(level=DataLock.Level.STUDY, study__in=Study.objects.for_user(user))
        | Q(level=DataLock.Level.SITE, study_site__in=StudySite.objects.for_user(user))
        | Q(patient__in=Patient.objects.for_user(user))
    )


# --- Writing locks ----------------------------------------------------------------------------


@transaction.atomic
def lock_create(
    *,
    study,
    level: str,
    reason: str,
    by,
    study_site=None,
    patient=None,
    form_kind: str = "",
    object_id: int | None = None,
) -> DataLock:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Give the reason for locking.")})
    if level == DataLock.Level.FORM and form_kind not in FormKind.values:
        raise ValidationError(_("Unknown form."))
    existing = DataLock.objects.filter(
        released_at__isnull=True,
        level=level,
        study=study,
        study_site=study_site,
        patient=patient,
        form_kind=form_kind,
        object_id=object_id,
    )
    if existing.exists():
        raise ValidationError(_("This is already locked."))
    lock = DataLock(
        study=study,
        level=level,
        study_site=study_site,
        patient=patient,
        form_kind=form_kind,
        object_id=object_id,
        reason=reason,
        locked_by=by,
        locked_at=timezone.now(),
    )
    lock.full_clean()
    with reason_for_change(reason):
        lock.save()
    return lock


@transaction.atomic
def lock_release(*, lock: DataLock, reason: str, by) -> DataLock:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Give the reason for unlocking.")})
    lock = DataLock.objects.select_for_update().get(pk=lock.pk)
    if lock.released_at is not None:
        raise ValidationError(_("This lock was already released."))
    lock.released_at = timezone.now()
    lock.released_by = by
    lock.release_reason = reason
    with reason_for_change(reason):
        lock.save(update_fields=["released_at", "released_by", "release_reason"])
    return lock


class DataLocked(Exception):  # noqa: N818 - reads as the state it reports
    """Raised by a write lookup of locked data; the middleware shows the lock."""

    def __init__(self, lock: DataLock | None = None):
        super().__init__("data locked")
        self.lock = lock


class LockedDataMiddleware:
    """Turns a lock trigger's refusal into a clear page (409); nothing was written."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DataLocked):
            return render(request, "patients/locked.html", {"lock": exception.lock}, status=409)
        if is_lock_error(exception):
            return render(request, "patients/locked.html", {"lock": None}, status=409)
        return None
