"""Planned visits kept in step with the patient's record (issue #7, part 2).

:func:`visits_sync` recomputes a patient's visits from the study's schedule
(``patients/schedule.py``) and the patient's anchor events, and upserts the ``PlannedVisit``
rows: planned (and not-applicable) rows move with their anchors, appear and disappear with
them, and turn not applicable when due after the patient went off study; rows already done or
missed stay as they are.  Imaging and laboratory visits are marked done automatically when a
scan (``ImagingAssessment.scan_date``) or a sample (``LabResult.sampled_on``) of the patient
falls in their window, and go back to planned if that record is corrected out of the window;
clinical and quality-of-life visits are marked by hand with :func:`visit_mark`.

Services that change an anchor or a matching CRF call :func:`visits_sync` at the end of their
transaction: enrolment and status changes (``patients/services.py``), SBRT courses
(``treatments/services.py``), scans (``lesions/services.py``, via ``recompute``) and laboratory
results (``patients/lab_services.py``).  It runs a constant number of queries per patient.
"""

from __future__ import annotations

import logging
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Min, OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from lesions.models import ImagingAssessment
from patients import schedule
from patients.edit_checks import edit_checks_sync
from patients.models import Allocation, Patient
from patients.models_safety import LabResult
from patients.models_visits import PlannedVisit
from studies.audit import reason_for_change
from studies.compiled import CompiledQuery
from studies.jsonrows import from_json_rows, json_rows
from studies.models import Study, VisitDefinition
from treatments.models import Fraction

logger = logging.getLogger(__name__)
State = PlannedVisit.State
Kind = VisitDefinition.Kind

#: Visits whose "done" comes from a CRF, and the prefix of the CRF reference they store.
AUTO_PREFIX = {Kind.IMAGING: "scan", Kind.LABS: "lab"}
#: Visits marked done by hand.
MANUAL_KINDS = frozenset({Kind.CLINICAL, Kind.QOL})
_MOVABLE = frozenset({State.PLANNED, State.NOT_APPLICABLE})
_FIELDS = ("due_on", "window_start", "window_end", "state", "done_on", "done_form")


# --- computing -----------------------------------------------------------------------------------


def as_definition(definition: VisitDefinition) -> schedule.Definition:
    return schedule.Definition(
        key=definition.pk,
        anchor=definition.anchor,
        offset_days=definition.offset_days,
        window_before_days=definition.window_before_days or 0,
        window_after_days=definition.window_after_days or 0,
        repeat_every_days=definition.repeat_every_days,
        repeat_until_days=definition.repeat_until_days,
        until_progression=definition.until_progression,
    )


def _study_zone(study: Study):
    try:
        return ZoneInfo(study.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.get_default_timezone()


def study_today(study: Study) -> date:
    """Today on the study's clock (``Study.time_zone``)."""
    return timezone.localtime(timezone.now(), _study_zone(study)).date()


def randomisation_day(allocation: Allocation | None, study: Study) -> date | None:
    """The day of randomisation in the study's time zone (run-in and single-arm: none)."""
    if allocation is None or allocation.part != Allocation.Part.RANDOMISED:
        return None
    return timezone.localtime(allocation.allocated_at, _study_zone(study)).date()


def patient_anchors(patient: Patient, study: Study) -> schedule.Anchors:
    """The patient's anchor events: one query (SBRT fractions) when ``patient`` comes with its
    ``allocation`` and ``response`` selected, as in :func:`visits_sync`."""
    if hasattr(patient, "sbrt_first"):  # read with the patient (visits_sync)
        sbrt = {"first": patient.sbrt_first, "last": patient.sbrt_last}
    else:
        sbrt = Fraction.objects.filter(
            course__patient=patient, status=Fraction.Status.DELIVERED
        ).aggregate(first=Min("day"), last=Max("day"))
    response = getattr(patient, "response", None)
    off_study = patient.status_changed_on if patient.status == Patient.Status.OFF_STUDY else None
    return schedule.Anchors(
        enrolment=patient.enrolled_on,
        randomisation=randomisation_day(getattr(patient, "allocation", None), study),
        sbrt_start=sbrt["first"],
        sbrt_end=sbrt["last"],
        progression=response.progression_on if response is not None else None,
        off_study=off_study,
    )


# --- keeping the rows in step --------------------------------------------------------------------


def _values(visit: PlannedVisit) -> tuple:
    return tuple(getattr(visit, name) for name in _FIELDS)


def _reopen(visit: PlannedVisit) -> None:
    visit.state, visit.done_on, visit.done_form = State.PLANNED, None, ""


def _recheck_auto_done(visit: PlannedVisit, scans: dict[date, int], lab_days: set[date]) -> None:
    """A visit done by a CRF stays done while that CRF still falls in its window."""
    prefix, _sep, ref = visit.done_form.partition(":")
    if prefix == "scan":
        day = next((d for d, pk in scans.items() if str(pk) == ref), None)
    elif prefix == "lab":
        day = date.fromisoformat(ref) if ref in {d.isoformat() for d in lab_days} else None
    else:
        return  # marked by hand
    if day is None or not visit.window_start <= day <= visit.window_end:
        _reopen(visit)
    else:
        visit.done_on = day


def _auto_done(
    rows: list[PlannedVisit], kind: str, scans: dict[date, int], lab_days: set[date]
) -> None:
    """Mark done the open visits of one definition that a scan or sample falls in."""
    prefix = AUTO_PREFIX.get(kind)
    if prefix is None:
        return
    days = set(scans) if prefix == "scan" else set(lab_days)
    days -= {v.done_on for v in rows if v.state == State.DONE}
    open_rows = sorted((v for v in rows if v.state in _MOVABLE), key=lambda v: v.occurrence)
    found = schedule.match([(v.window_start, v.due_on, v.window_end) for v in open_rows], days)
    for visit, day in zip(open_rows, found, strict=True):
        if day is None:
            continue
        visit.state, visit.done_on = State.DONE, day
        visit.done_form = f"scan:{scans[day]}" if prefix == "scan" else f"lab:{day.isoformat()}"


def _plan(definitions, anchors: schedule.Anchors) -> list[schedule.Occurrence]:
    """Occurrences of every definition; one the admin's checks would refuse is skipped (and
    logged) rather than failing the CRF being saved."""
    planned: list[schedule.Occurrence] = []
    for definition in definitions:
        try:
            planned += schedule.occurrences(as_definition(definition), anchors)
        except ValueError:
            logger.exception("visit definition %s skipped", definition.pk)
    return planned


def _clear(patient: Patient) -> None:
    PlannedVisit.objects.filter(patient=patient, state__in=_MOVABLE).delete()


def _record_days() -> dict:
    """Annotations of a patient read by :func:`visits_sync`: the first and last delivered SBRT
    fraction (anchors), the scans (date and pk) and the sample days, in the same query."""
    delivered = Fraction.objects.filter(
        course__patient=OuterRef("pk"), status=Fraction.Status.DELIVERED
    ).order_by()
    scans = ImagingAssessment.objects.filter(patient=OuterRef("pk")).order_by("scan_date", "pk")
    return {
        "sbrt_first": Subquery(delivered.order_by("day").values("day")[:1]),
        "sbrt_last": Subquery(delivered.order_by("-day").values("day")[:1]),
        "scan_days": ArraySubquery(scans.values("scan_date")),
        "scan_pks": ArraySubquery(scans.values("pk")),
        "lab_days": ArraySubquery(
            LabResult.objects.filter(patient=OuterRef("pk"))
            .order_by("sampled_on")
            .values("sampled_on")
            .distinct()
        ),
    }


def _schedule_rows() -> dict:
    """Annotations of a patient read by :func:`visits_sync`: the visit definitions of its study
    and its planned visits, as JSON rows (``studies/jsonrows.py``), in the same query.

    Ordered as the models' ``Meta.ordering`` (within one study and one patient), with the primary
    key breaking ties: definitions by anchor and offset (the order in which new visits are
    created), visits by due date and definition.
    """
    return {
        "definition_rows": json_rows(
            VisitDefinition.objects.filter(study=OuterRef("study_site__study")).order_by(
                "anchor", "offset_days", "pk"
            )
        ),
        "visit_rows": json_rows(
            PlannedVisit.objects.filter(patient=OuterRef("pk")).order_by(
                "due_on", "definition__anchor", "definition__offset_days", "definition_id", "pk"
            )
        ),
    }


def _planned_visits(patient: Patient) -> list[PlannedVisit]:
    """The patient's planned visits read with it (:func:`_schedule_rows`), as model instances
    that know their patient, like ``patient.planned_visits.all()``."""
    visits = from_json_rows(PlannedVisit, patient.visit_rows, patient._state.db)
    for visit in visits:
        visit.patient = patient
    return visits


def _records(patient: Patient, kinds: set[str]) -> tuple[dict[date, int], set[date]]:
    """Scan dates (-> scan pk) and sample dates of the patient, as far as the schedule needs."""
    if hasattr(patient, "scan_days"):  # read with the patient (visits_sync)
        scans = dict(zip(patient.scan_days, patient.scan_pks, strict=True))
        return (
            scans if Kind.IMAGING in kinds else {},
            set(patient.lab_days) if Kind.LABS in kinds else set(),
        )
    scans: dict[date, int] = {}
    if Kind.IMAGING in kinds:
        scans = dict(
            ImagingAssessment.objects.filter(patient=patient).values_list("scan_date", "pk")
        )
    lab_days: set[date] = set()
    if Kind.LABS in kinds:
        lab_days = set(
            LabResult.objects.filter(patient=patient)
            .values_list("sampled_on", flat=True)
            .distinct()
        )
    return scans, lab_days


def _place(
    patient: Patient,
    existing: dict[tuple[int, int], PlannedVisit],
    occurrences: list[schedule.Occurrence],
) -> tuple[set[tuple[int, int]], list[PlannedVisit]]:
    """Move open rows to their computed dates, add the new ones; done and missed rows stay."""
    wanted: set[tuple[int, int]] = set()
    created: list[PlannedVisit] = []
    for occ in occurrences:
        key = (occ.key, occ.occurrence)
        wanted.add(key)
        visit = existing.get(key)
        if visit is None:
            visit = PlannedVisit(patient=patient, definition_id=occ.key, occurrence=occ.occurrence)
            created.append(visit)
            existing[key] = visit
        elif visit.state not in _MOVABLE:
            continue
        visit.due_on, visit.window_start, visit.window_end = (
            occ.due_on,
            occ.window_start,
            occ.window_end,
        )
        visit.state = State.PLANNED if occ.applicable else State.NOT_APPLICABLE
    return wanted, created


def _sync_read(pk: int):
    return (
        Patient.objects.select_for_update(of=("self",))
        .select_related("study_site__study", "allocation", "response")
        .annotate(**_record_days(), **_schedule_rows())
        .order_by()
        .filter(pk=pk)
    )


# The read of visits_sync, compiled once per process (studies/compiled.py): its SQL (seven
# subqueries, four joined tables) costs Django more to build than PostgreSQL to run.
_SYNC_READ = CompiledQuery(_sync_read)


# In the caller's transaction without a savepoint of its own: nothing catches its errors to go
# on, so a failure rolls the whole write back anyway (and a savepoint costs two statements).
@transaction.atomic(savepoint=False)
def visits_sync(patient: Patient) -> None:
    """Recompute the patient's planned visits and upsert them (a constant number of queries).

    Runs inside the caller's transaction (and its reason for change); the patient's row is
    locked so that two concurrent writes of the same patient's record cannot both insert.  One
    read: the patient, its anchors and records, its study's visit definitions and its planned
    visits come in one statement; then only the writes of what changed.
    """
    patient = _SYNC_READ.first(patient.pk)
    if patient is None:
        raise Patient.DoesNotExist
    if patient.enrolled_on is None:
        _clear(patient)  # screening: no schedule yet
        return
    study = patient.study_site.study
    definitions = {
        d.pk: d for d in from_json_rows(VisitDefinition, patient.definition_rows, patient._state.db)
    }
    occurrences = _plan(definitions.values(), patient_anchors(patient, study))
    scans, lab_days = _records(patient, {d.kind for d in definitions.values()})
    existing = {(v.definition_id, v.occurrence): v for v in _planned_visits(patient)}
    before = {key: _values(v) for key, v in existing.items()}

    for visit in existing.values():
        if visit.state == State.DONE and visit.done_form:
            _recheck_auto_done(visit, scans, lab_days)
    wanted, created = _place(patient, existing, occurrences)
    stale = {key for key, v in existing.items() if v.state in _MOVABLE and key not in wanted}
    by_definition: dict[int, list[PlannedVisit]] = {}
    for key, visit in existing.items():
        if key not in stale:
            by_definition.setdefault(visit.definition_id, []).append(visit)
    for definition_id, rows in by_definition.items():
        if definition_id in definitions:
            _auto_done(rows, definitions[definition_id].kind, scans, lab_days)

    if stale:
        PlannedVisit.objects.filter(pk__in=[existing[key].pk for key in stale]).delete()
    changed = [
        v for key, v in existing.items() if v.pk and key not in stale and _values(v) != before[key]
    ]
    if changed:
        PlannedVisit.objects.bulk_update(changed, list(_FIELDS))
    if created:
        PlannedVisit.objects.bulk_create(created)
    edit_checks_sync(patient)  # automatic queries (patients/edit_checks.py)


def study_visits_sync(study: Study) -> int:
    """Re-plan every enrolled patient of a study (after its schedule changed in the admin)."""
    patients = Patient.objects.filter(study_site__study=study, enrolled_on__isnull=False)
    count = 0
    for patient in patients.only("pk"):
        visits_sync(patient)
        count += 1
    return count


# --- reading -------------------------------------------------------------------------------------


def visit_status(visit: PlannedVisit, today: date | None = None) -> str:
    """upcoming / due (today in the window) / overdue (window passed, still planned) / done /
    missed / na."""
    return schedule.status(
        visit.state, visit.window_start, visit.window_end, today or timezone.localdate()
    )


def done_by_record(visit: PlannedVisit) -> bool:
    """Done because a CRF (scan, sample) records it, rather than by hand."""
    return visit.state == State.DONE and visit.done_form.partition(":")[0] in {"scan", "lab"}


# --- marking by hand -----------------------------------------------------------------------------


def _check_done(visit: PlannedVisit, done_on: date | None, reason: str) -> None:
    if visit.definition.kind not in MANUAL_KINDS:
        raise ValidationError(
            _(
                "Imaging and laboratory visits are marked done when their scan or sample is "
                "recorded."
            )
        )
    if done_on is None:
        raise ValidationError({"done_on": _("Give the date of the visit.")})
    if done_on > timezone.localdate():
        raise ValidationError({"done_on": _("This date is in the future.")})
    if visit.patient.enrolled_on and done_on < visit.patient.enrolled_on:
        raise ValidationError({"done_on": _("The visit cannot precede enrolment.")})
    if visit.state == State.MISSED and not reason:
        raise ValidationError({"reason": _("Give a reason for changing saved data.")})


def _change(visit: PlannedVisit, state: str, reason: str, done_on: date | None) -> str:
    """Apply the change to ``visit`` (unsaved); returns the reason for the audit trail."""
    if state == State.DONE:
        _check_done(visit, done_on, reason)
        visit.state, visit.done_on, visit.done_form = State.DONE, done_on, ""
        visit.missed_reason = ""
        return reason or "visit done"
    if state == State.MISSED:
        if not reason:
            raise ValidationError({"reason": _("Say why the visit was missed.")})
        visit.state, visit.done_on, visit.done_form = State.MISSED, None, ""
        visit.missed_reason = reason[:200]
        return reason
    if state == State.PLANNED:
        if visit.state == State.PLANNED:
            raise ValidationError(_("This visit is already planned."))
        if not reason:
            raise ValidationError({"reason": _("Give a reason for changing saved data.")})
        _reopen(visit)
        visit.missed_reason = ""
        return reason
    raise ValidationError(_("Choose done or missed."))


@transaction.atomic
def visit_mark(
    *,
    visit: PlannedVisit,
    state: str,
    by,
    reason: str = "",
    done_on: date | None = None,
) -> PlannedVisit:
    """Mark a visit done (clinical and quality-of-life visits) or missed (with a reason), or
    reopen one marked by mistake (with a reason).  Audited with the reason for change."""
    visit = (
        PlannedVisit.objects.select_for_update(of=("self",))
        .select_related("definition", "patient")
        .get(pk=visit.pk)
    )
    if visit.state == State.NOT_APPLICABLE:
        raise ValidationError(_("The patient is off study: this visit does not apply."))
    if done_by_record(visit):
        raise ValidationError(
            _("This visit is recorded by a scan or a laboratory sample; correct that record.")
        )
    audit_reason = _change(visit, state, reason.strip(), done_on)
    with reason_for_change(audit_reason, user=by.pk):
        visit.save(update_fields=["state", "done_on", "done_form", "missed_reason"])
        if visit.state == State.PLANNED:
            visits_sync(visit.patient)  # back in step with its anchor (and any CRF)
            visit = PlannedVisit.objects.filter(pk=visit.pk).first() or visit
    return visit
