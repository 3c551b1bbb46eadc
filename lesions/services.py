"""Writes of lesions and scans, and the one place where responses are recomputed.

Every write ends with :func:`recompute` in the same transaction: the patient's whole imaging
history goes through the RECIST 1.1 engine (lesions/recist.py) and the stored results
(TimepointResult per scan, PatientResponse per patient) are replaced, so editing a baseline or a
middle scan updates every later result.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from operator import itemgetter
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from psycopg.types.json import Jsonb

from lesions import irecist, recist
from lesions.models import (
    ImagingAssessment,
    Lesion,
    Measurement,
    PatientResponse,
    TimepointResult,
)
from patients.models import Patient
from patients.visit_services import visits_sync
from studies.audit import reason_for_change

logger = logging.getLogger(__name__)

IMAGING_STATUSES = {
    Patient.Status.ENROLLED,
    Patient.Status.ON_TREATMENT,
    Patient.Status.FOLLOW_UP,
    Patient.Status.OFF_STUDY,
}


@dataclass(frozen=True)
class LesionRow:
    label: str
    organ: str
    is_node: bool
    category: str
    diameter_mm: Decimal | None
    location: str = ""
    status_at_inclusion: str = ""
    planned_for_sbrt: bool = False


@dataclass(frozen=True)
class MeasurementRow:
    state: str
    diameter_mm: Decimal | None = None
    fragments_mm: str = ""
    coalesced_into: Lesion | None = None
    status: str = ""  # new non-target lesions (iRECIST): CR / NON_CR_NON_PD / PD / NE


@dataclass(frozen=True)
class NewLesionRow:
    label: str
    organ: str
    diameter_mm: Decimal | None
    is_node: bool = False
    is_target: bool = True


def _fragments(text: str) -> tuple[Decimal, ...]:
    try:
        return tuple(Decimal(part.strip()) for part in text.split(",") if part.strip())
    except ArithmeticError as error:
        raise ValidationError(_("Fragments are diameters in mm separated by commas.")) from error


def _check_date(patient: Patient, scan_date: date) -> None:
    if scan_date > timezone.localdate():
        raise ValidationError({"scan_date": _("This date is in the future.")})
    if patient.status not in IMAGING_STATUSES:
        raise ValidationError(_("Imaging is recorded for enrolled patients only."))


# --- baseline ----------------------------------------------------------------------------------


def _baseline_issues(rows: list[LesionRow]) -> list[recist.BaselineIssue]:
    try:
        lesions = [
            recist.BaselineLesion(
                lesion_id=row.label,
                organ=row.organ,
                is_node=row.is_node,
                category=row.category,
                diameter_mm=row.diameter_mm,
            )
            for row in rows
        ]
    except (TypeError, ValueError) as error:
        raise ValidationError(str(error)) from error
    return list(recist.validate_baseline(lesions))


@transaction.atomic
def baseline_record(
    *, patient: Patient, scan_date: date, modality: str, rows: list[LesionRow], by
) -> ImagingAssessment:
    """Record the baseline scan with its target and non-target lesions, RECIST rules enforced."""
    _check_date(patient, scan_date)
    if patient.assessments.filter(is_baseline=True).exists():
        raise ValidationError(_("This patient already has a baseline scan."))
    errors = [issue.message for issue in _baseline_issues(rows) if issue.is_error]
    if errors:
        raise ValidationError(errors)
    with reason_for_change("baseline imaging", user=by.pk):
        scan = ImagingAssessment.objects.create(
            patient=patient, scan_date=scan_date, modality=modality, is_baseline=True
        )
        for row in rows:
            lesion = Lesion(
                patient=patient,
                label=row.label,
                organ=row.organ,
                location=row.location,
                is_node=row.is_node,
                category=row.category,
                status_at_inclusion=row.status_at_inclusion,
                planned_for_sbrt=row.planned_for_sbrt,
            )
            lesion.full_clean()
            lesion.save()
            if row.diameter_mm is not None:
                Measurement.objects.create(
                    assessment=scan, lesion=lesion, diameter_mm=row.diameter_mm
                )
        recompute(patient)
    return scan


# --- follow-up scans ---------------------------------------------------------------------------


def _check_follow_up(
    patient: Patient,
    scan_date: date,
    assessment: ImagingAssessment | None,
    scans: list[ImagingAssessment] | None = None,
):
    """A follow-up scan comes after the baseline and on a day without another scan of the
    patient. ``scans``: the patient's scans, if the caller has read them (else one query)."""
    if scans is None:  # the baseline scan and any other scan on the same day, in one query
        others = patient.assessments.filter(Q(is_baseline=True) | Q(scan_date=scan_date))
        if assessment is not None:
            others = others.exclude(pk=assessment.pk)
        rows = list(others.order_by().values_list("is_baseline", "scan_date"))
    else:
        rows = [
            (s.is_baseline, s.scan_date)
            for s in scans
            if (s.is_baseline or s.scan_date == scan_date)
            and (assessment is None or s.pk != assessment.pk)
        ]
    baseline = next((day for is_baseline, day in rows if is_baseline), None)
    if baseline is None:
        raise ValidationError(_("Record the baseline scan first."))
    if scan_date <= baseline:
        raise ValidationError({"scan_date": _("A follow-up scan must be after the baseline scan.")})
    if any(day == scan_date for _is_baseline, day in rows):
        raise ValidationError({"scan_date": _("There is already a scan on this date.")})


@transaction.atomic
def assessment_record(
    *,
    patient: Patient,
    by,
    scan_date: date,
    modality: str,
    non_target_status: str,
    new_lesions: str,
    measurements: dict[int, MeasurementRow],
    new_lesion_rows: list[NewLesionRow] = (),
    non_target_increase: bool = False,
    assessment: ImagingAssessment | None = None,
    reason: str = "",
    known_lesions: list[Lesion] | None = None,
    known_scans: list[ImagingAssessment] | None = None,
    irecist: bool | None = None,
) -> ImagingAssessment:
    """Create (or, with a reason, correct) a follow-up scan; recompute every response.

    ``known_lesions`` (the patient's lesions), ``known_scans`` (the patient's scans) and
    ``irecist`` (whether the arm reports iRECIST) save a query each when the page has just read
    them."""
    _check_date(patient, scan_date)
    _check_follow_up(patient, scan_date, assessment, known_scans)
    if assessment is not None and not reason.strip():
        raise ValidationError({"reason": _("Give a reason for changing saved data (audit trail).")})
    if known_lesions is None:
        known_lesions = list(patient.lesions.all())
    lesions = {lesion.pk: lesion for lesion in known_lesions if lesion.patient_id == patient.pk}
    foreign = [pk for pk in measurements if pk not in lesions]
    if foreign:
        raise ValidationError(_("A measurement names a lesion of another patient."))
    if uses_irecist(patient) if irecist is None else irecist:
        _check_new_lesions_listed(new_lesions, lesions, measurements, new_lesion_rows)
    with reason_for_change(reason or "follow-up imaging", user=by.pk):
        scan = assessment or ImagingAssessment(patient=patient)
        scan.patient = patient  # read by the caller: no query to re-check it
        scan.scan_date, scan.modality = scan_date, modality
        scan.non_target_status, scan.new_lesions = non_target_status, new_lesions
        scan.non_target_increase = non_target_increase
        # Its constraints were checked above: one scan per day (_check_follow_up) and one
        # baseline per patient (a follow-up scan is never the baseline).
        scan.full_clean(validate_constraints=False)
        scan.save()
        _save_measurements(scan, lesions, measurements, new_scan=assessment is None)
        _save_new_lesions(patient, scan, new_lesion_rows)
        recompute(patient)
    return scan


def _check_new_lesions_listed(status: str, lesions, measurements, new_rows) -> None:
    """iRECIST follows every new lesion: "new lesions: yes" exactly when one is present."""
    present = bool(new_rows) or any(
        lesions[pk].category == Lesion.Category.NEW
        and row.state != Measurement.State.DISAPPEARED
        and row.status != ImagingAssessment.NonTarget.CR
        for pk, row in measurements.items()
    )
    if status == ImagingAssessment.NewLesions.YES and not present:
        raise ValidationError(
            {
                "new_lesions": _(
                    "New lesions: yes. List each new lesion below (iRECIST follows each one)."
                )
            }
        )
    if status != ImagingAssessment.NewLesions.YES and present:
        raise ValidationError(
            {"new_lesions": _("A new lesion is present at this scan: answer yes to new lesions.")}
        )


def _save_measurements(
    scan, lesions, measurements: dict[int, MeasurementRow], *, new_scan: bool = False
) -> None:
    """Write the scan's measurements in one statement for any number of lesions: an insert
    that updates the lesion's row of the scan where there is one (``ON CONFLICT``). A row
    whose values do not change gets no audit row: the audit triggers fire on a real change
    only (pghistory's UpdateEvent condition)."""
    fields = ("state", "diameter_mm", "fragments_mm", "coalesced_into", "status")
    rows = []
    for lesion_pk, row in measurements.items():
        _fragments(row.fragments_mm)
        measurement = Measurement(assessment=scan, lesion=lesions[lesion_pk])
        for name in fields:
            setattr(measurement, name, getattr(row, name))
        # The scan and lesion were read by the caller (no query to re-check them), and there is
        # one row per lesion of this scan by construction (the unique constraint holds).
        measurement.full_clean(validate_constraints=False)
        rows.append(measurement)
    if not rows:
        return
    if new_scan:
        Measurement.objects.bulk_create(rows)
        return
    Measurement.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["assessment", "lesion"],
        update_fields=list(fields),
    )


def _save_new_lesions(patient: Patient, scan, rows: list[NewLesionRow]) -> None:
    for row in rows:
        lesion = Lesion(
            patient=patient,
            label=row.label,
            organ=row.organ,
            is_node=row.is_node,
            category=Lesion.Category.NEW,
            new_is_target=row.is_target,
        )
        lesion.full_clean()
        lesion.save()
        Measurement.objects.create(
            assessment=scan,
            lesion=lesion,
            diameter_mm=row.diameter_mm if row.is_target else None,
            status="" if row.is_target else ImagingAssessment.NonTarget.NON_CR_NON_PD,
        )


# --- recomputation -----------------------------------------------------------------------------

# Plain strings: compared 10^5 times over a portfolio (the choices are str enums of these values).
_TARGET = Lesion.Category.TARGET.value
_NON_TARGET = Lesion.Category.NON_TARGET.value
_NEW = Lesion.Category.NEW.value
_PRESENT = Measurement.State.PRESENT.value
_SPLIT = Measurement.State.SPLIT.value


class _Patient(NamedTuple):
    """What the engines read of a patient and its study."""

    pk: int
    enrolled_on: date | None
    confirmation_required: bool
    min_sd_days: int
    new_lesions_block_reset: bool
    uses_irecist: bool  # its arm reports iRECIST (see :func:`uses_irecist`)


class _Scan(NamedTuple):
    pk: int
    patient_id: int
    scan_date: date
    is_baseline: bool
    non_target_status: str
    new_lesions: str
    non_target_increase: bool


class _Lesion(NamedTuple):
    pk: int
    patient_id: int
    label: str
    organ: str
    is_node: bool
    category: str
    planned_for_sbrt: bool
    new_is_target: bool


# A measurement row: (assessment_id, lesion_id, state, diameter_mm, fragments_mm,
# coalesced_into_id, status), kept as the plain tuple the database returns. The diameter comes
# as text, made a Decimal only where used (the engine measurements are shared: see _Builder).
_MRow = tuple[int, int, str, str | None, str, int | None, str]


def _mm(text: str | None) -> Decimal | None:
    """A numeric value read as text, as the driver would return it."""
    return None if text is None else Decimal(text)


@dataclass(frozen=True)
class _Loaded:
    patients: dict[int, _Patient]
    scans_of: dict[int, list[_Scan]]  # by patient, by scan date
    lesions: dict[int, _Lesion]
    lesions_of: dict[int, list[_Lesion]]  # by patient, by category and label
    by_scan: dict[int, list[_MRow]]
    stored_timepoints: list[tuple]  # rows of _STORED_TIMEPOINT, to write only what changed
    stored_responses: list[tuple]  # rows of _STORED_RESPONSE


@dataclass(frozen=True)
class _Inputs:
    baseline: _Scan
    lesions: list  # recist.BaselineLesion
    follow_ups: list  # recist.Assessment
    i_follow_ups: list  # irecist.IAssessment (built only for iRECIST arms)


class _Builder:
    """Engine inputs of the loaded patients. The engine objects are immutable and check
    themselves on construction, so equal measurements (same label, state and values: the
    portfolio repeats them a lot) share one, built and checked once."""

    def __init__(self, loaded: _Loaded) -> None:
        self.lesions = loaded.lesions
        self.by_scan = loaded.by_scan
        self._measurements: dict[tuple, recist.Measurement] = {}

    def inputs(self, scans: list[_Scan], lesions: list[_Lesion], with_irecist: bool) -> _Inputs:
        """Plain engine data from one patient's lesions, scans and measurements."""
        baseline = next(s for s in scans if s.is_baseline)
        known = self.lesions
        base_values = {
            known[row[1]].label: _mm(row[3]) for row in self.by_scan.get(baseline.pk, ())
        }
        lesions = [le for le in lesions if le.category != _NEW]
        engine_lesions = [
            recist.BaselineLesion(
                lesion_id=le.label,
                organ=le.organ,
                is_node=le.is_node,
                category=le.category,
                diameter_mm=base_values.get(le.label),
            )
            for le in lesions
        ]
        has_non_targets = any(le.category == _NON_TARGET for le in lesions)
        follow_ups, i_follow_ups = [], []
        for scan in scans:
            if scan.is_baseline:
                continue
            rows = self.by_scan.get(scan.pk, [])
            assessment = self._scan(scan, rows, has_non_targets)
            follow_ups.append(assessment)
            if with_irecist:
                i_follow_ups.append(self._irecist_scan(scan, assessment, rows))
        return _Inputs(baseline, engine_lesions, follow_ups, i_follow_ups)

    def measurement(self, label: str, row: _MRow) -> recist.Measurement:
        """The engine measurement of a row of lesion ``label``."""
        # Keyed by the values it is built from (the diameter as the database writes it).
        key = (label, row[2], row[3], row[4], row[5])  # state, diameter, fragments, into
        return self._measurements.get(key) or self._new_measurement(key)

    def _new_measurement(self, key: tuple) -> recist.Measurement:
        label, state, diameter, fragments, coalesced_id = key
        into = self.lesions.get(coalesced_id) if coalesced_id else None
        found = recist.Measurement(
            lesion_id=label,
            state=state,
            diameter_mm=_mm(diameter) if state == _PRESENT else None,
            fragments=_fragments(fragments) if state == _SPLIT else (),
            coalesced_into=into.label if into is not None else None,
        )
        self._measurements[key] = found
        return found

    def _scan(self, scan: _Scan, rows: list[_MRow], non_targets: bool) -> recist.Assessment:
        known, cache = self.lesions, self._measurements
        targets, new_rows = [], []
        for row in rows:
            lesion = known[row[1]]
            if lesion.category == _TARGET:  # self.measurement(lesion.label, row), inlined
                key = (lesion.label, row[2], row[3], row[4], row[5])
                targets.append(cache.get(key) or self._new_measurement(key))
            elif lesion.category == _NEW:
                new_rows.append(row)
        new = [  # built after the targets, as they always were (which error comes first)
            recist.NewLesion(lesion_id=known[row[1]].label, diameter_mm=_mm(row[3]))
            for row in new_rows
        ]
        return recist.Assessment(
            day=scan.scan_date,
            measurements=tuple(targets),
            non_target=(scan.non_target_status or "NE") if non_targets else None,
            new_lesions=scan.new_lesions,
            new_lesion_details=tuple(new),
        )

    def _irecist_scan(self, scan: _Scan, assessment: recist.Assessment, rows: list[_MRow]):
        """The iRECIST view of a scan: its new lesions followed apart (Seymour 2017, Table 1)."""
        findings = []
        for row in rows:
            lesion = self.lesions[row[1]]
            if lesion.category != _NEW:
                continue
            target = lesion.new_is_target
            findings.append(
                irecist.NewLesionFinding(
                    lesion_id=lesion.label,
                    organ=lesion.organ,
                    is_node=lesion.is_node,
                    category=recist.LesionCategory.TARGET
                    if target
                    else recist.LesionCategory.NON_TARGET,
                    measurement=self.measurement(lesion.label, row) if target else None,
                    status=None if target else (row[6] or "NE"),
                )
            )
        return irecist.IAssessment(
            recist=assessment,
            new_lesions=tuple(findings),
            non_target_increase=scan.non_target_increase,
        )


def uses_irecist(patient: Patient) -> bool:
    """The patient's arm reports iRECIST beside RECIST 1.1 (e.g. STEREOSARC atezolizumab)."""
    allocation = getattr(patient, "allocation", None)
    return bool(allocation and allocation.arm.uses_irecist)


def recompute(patient: Patient) -> str | None:
    """Run the engines over the whole history, replace the stored results and re-plan visits;
    returns the best overall response (None without a baseline scan)."""
    best = recompute_many([patient.pk], strict=True).get(patient.pk)
    visits_sync(patient)
    return best


_TIMEPOINT_COLUMNS = (
    "assessment_id",
    "sum_mm",
    "nadir_mm",
    "change_from_baseline_pct",
    "change_from_nadir_pct",
    "target",
    "non_target",
    "new_lesions",
    "overall",
    "irecist_overall",
)


_RESPONSE_COLUMNS = (
    "baseline_sum_mm",
    "best_overall_response",
    "best_response_on",
    "best_change_pct",
    "progression_on",
    "baseline_issues",
    "irecist_best_response",
    "first_iupd_on",
    "icpd_on",
    "in_field_progression_on",
    "out_of_field_progression_on",
    "local_control",
    "local_control_note",
)
_JSON_COLUMNS = frozenset(
    i for i, name in enumerate(_RESPONSE_COLUMNS) if name in ("baseline_issues", "local_control")
)
# The stored results, read with the patients and scans (LEFT JOIN: a NULL key when there is
# none) to write only what changed; jsonb read as text, loaded in Python.
_STORED_RESPONSE = "r.patient_id, " + ", ".join(
    f"r.{name}::text" if i in _JSON_COLUMNS else f"r.{name}"
    for i, name in enumerate(_RESPONSE_COLUMNS)
)
_STORED_TIMEPOINT = ", ".join(f"t.{name}" for name in _TIMEPOINT_COLUMNS)


# The reads of :func:`_load`: two statements, each a UNION ALL of parent rows and child rows
# (patients and their scans; lesions and their measurements), with one array parameter
# (``= ANY(%(ids)s)``: an ``IN`` list of thousands of ids costs more to build and parse than the
# query itself). A row has the columns of both kinds, NULL in those of the other kind: NULLs
# cost less to send and read than a JOIN's parent columns repeated on each child's row (the
# stored response on each scan, the lesion on each measurement). No ORDER BY over the union (a
# sort of every row, stored responses among them): :func:`_split_patients` sorts the scans by
# patient and date, :func:`_split_lesions` the lesions by the rank the database gives them (in
# its collation, as ORDER BY would).
_RESPONSE_AT = len(_Patient._fields)  # patient row: _Patient, then the stored PatientResponse
_SCAN_AT = _RESPONSE_AT + 1 + len(_RESPONSE_COLUMNS)  # scan row: NULLs, then _Scan,
_TIMEPOINT_AT = _SCAN_AT + len(_Scan._fields)  # then the stored TimepointResult
_MROW_SIZE = 7  # measurement row: the _MRow, then NULLs
_RANK_AT = _MROW_SIZE  # lesion row: its id in the _MRow's lesion_id column, a rank, _Lesion's rest
_LOAD_SQL = (
    (  # noqa: S608 - constants
        "SELECT p.id, p.enrolled_on, s.response_confirmation_required, s.min_sd_days,"
        " s.irecist_new_lesions_block_reset, COALESCE(arm.uses_irecist, false), "
    )
    + _STORED_RESPONSE
    + ", NULL" * (len(_Scan._fields) + len(_TIMEPOINT_COLUMNS))
    + (
        " FROM patients_patient p"
        " JOIN studies_studysite ss ON ss.id = p.study_site_id"
        " JOIN studies_study s ON s.id = ss.study_id"
        " LEFT JOIN patients_allocation al ON al.patient_id = p.id"
        " LEFT JOIN studies_arm arm ON arm.id = al.arm_id"
        " LEFT JOIN lesions_patientresponse r ON r.patient_id = p.id"
        " WHERE p.id = ANY(%(ids)s)"
        " UNION ALL SELECT "
    )
    + "NULL, " * _SCAN_AT
    + (
        "a.id, a.patient_id, a.scan_date, a.is_baseline, a.non_target_status, a.new_lesions,"
        " a.non_target_increase, "
    )
    + _STORED_TIMEPOINT
    + (
        " FROM lesions_imagingassessment a"
        " LEFT JOIN lesions_timepointresult t ON t.assessment_id = a.id"
        " WHERE a.patient_id = ANY(%(ids)s)"
    ),
    (
        "SELECT m.assessment_id, m.lesion_id, m.state, m.diameter_mm::text, m.fragments_mm,"
        " m.coalesced_into_id, m.status"
    )
    + ", NULL" * len(_Lesion._fields)  # the rank, then _Lesion but its id
    + (
        " FROM lesions_measurement m JOIN lesions_lesion le ON le.id = m.lesion_id"
        " WHERE le.patient_id = ANY(%(ids)s)"
        " UNION ALL SELECT NULL, id"
    )
    + ", NULL" * (_MROW_SIZE - 2)
    + (
        ", row_number() OVER (ORDER BY patient_id, category, label), patient_id, label,"
        " organ, is_node, category, planned_for_sbrt, new_is_target"
        " FROM lesions_lesion WHERE patient_id = ANY(%(ids)s)"
    ),
)
_SCAN_ORDER = itemgetter(_SCAN_AT + 1, _SCAN_AT + 2)  # (patient, scan date): unique


def _load(patient_ids: list[int]) -> _Loaded:
    """Everything the engines read and the results stored, for any number of patients: two
    queries sent at once (one round trip: psycopg's pipeline mode)."""
    connection.ensure_connection()
    params = {"ids": patient_ids}
    with connection.cursor() as patients_cursor, connection.cursor() as lesions_cursor:
        with connection.connection.pipeline():
            patients_cursor.execute(_LOAD_SQL[0], params)
            lesions_cursor.execute(_LOAD_SQL[1], params)
        patient_rows = patients_cursor.fetchall()
        lesion_rows = lesions_cursor.fetchall()
    patients, scans_of, stored_timepoints, stored_responses = _split_patients(patient_rows)
    lesions, lesions_of, by_scan = _split_lesions(lesion_rows)
    return _Loaded(
        patients, scans_of, lesions, lesions_of, by_scan, stored_timepoints, stored_responses
    )


def _split_patients(rows: list[tuple]) -> tuple[dict, dict, list, list]:
    """(patients, scans_of, stored_timepoints, stored_responses) of the first query's rows:
    the scans by patient and date, the stored timepoints in the same order."""
    patients: dict[int, _Patient] = {}
    stored_responses = []
    scan_rows = []
    at, scan_at, timepoint_at = _RESPONSE_AT, _SCAN_AT, _TIMEPOINT_AT
    for row in rows:
        if row[0] is None:
            scan_rows.append(row)
        else:
            patients[row[0]] = _Patient._make(row[:at])
            if row[at] is not None:
                stored_responses.append(row[at:scan_at])
    scan_rows.sort(key=_SCAN_ORDER)
    scans_of: dict[int, list[_Scan]] = {}
    stored_timepoints = []
    scans: list[_Scan] = []
    patient_id = None
    for row in scan_rows:
        if row[scan_at + 1] != patient_id:
            patient_id = row[scan_at + 1]
            scans = scans_of[patient_id] = []
        scans.append(_Scan._make(row[scan_at:timepoint_at]))
        if row[timepoint_at] is not None:
            stored_timepoints.append(row[timepoint_at:])
    return patients, scans_of, stored_timepoints, stored_responses


def _split_lesions(rows: list[tuple]) -> tuple[dict, dict, dict]:
    """(lesions, lesions_of, by_scan) of the second query's rows: the lesions by patient,
    category and label (their rank)."""
    by_scan: dict[int, list[_MRow]] = {}
    lesion_rows = []
    size = _MROW_SIZE
    for row in rows:
        if row[0] is None:
            lesion_rows.append(row)
            continue
        measurement = row[:size]
        found = by_scan.get(row[0])
        if found is None:
            by_scan[row[0]] = [measurement]
        else:
            found.append(measurement)
    lesion_rows.sort(key=itemgetter(_RANK_AT))
    lesions: dict[int, _Lesion] = {}
    lesions_of: dict[int, list[_Lesion]] = {}
    of_patient: list[_Lesion] = []
    patient_id = None
    for row in lesion_rows:
        lesion = lesions[row[1]] = _Lesion(row[1], *row[_RANK_AT + 1 :])
        if lesion.patient_id != patient_id:
            patient_id = lesion.patient_id
            of_patient = lesions_of[patient_id] = []
        of_patient.append(lesion)
    return lesions, lesions_of, by_scan


def _evaluate(patient: _Patient, inputs: _Inputs):
    """(evaluation, iRECIST evaluation) of one patient; ValueError on bad data."""
    params = {
        "treatment_start": patient.enrolled_on or inputs.baseline.scan_date,
        "confirmation_required": patient.confirmation_required,
        "min_sd_days": patient.min_sd_days,
        "baseline_day": inputs.baseline.scan_date,
    }
    if patient.uses_irecist:
        ievaluation = irecist.evaluate(
            inputs.lesions,
            inputs.i_follow_ups,
            **params,
            new_lesions_block_reset=patient.new_lesions_block_reset,
        )
        return ievaluation.recist, ievaluation
    return recist.evaluate(inputs.lesions, inputs.follow_ups, **params), None


def recompute_many(patient_ids, *, strict: bool = False) -> dict[int, str]:
    """Run the engines over the imaging history of many patients and replace their stored
    results (TimepointResult per scan, PatientResponse per patient) in a constant number of
    queries, whatever the number of patients (the whole portfolio after an engine change),
    written in one transaction (no reader sees a patient without results).

    A patient whose data the engine refuses raises ``ValidationError`` when ``strict`` (a CRF
    being saved); otherwise the patient keeps no results and is skipped (logged). Planned
    visits are not re-planned here (see :func:`recompute`). Returns each evaluated patient's
    best overall response.
    """
    ids = list(patient_ids)
    if not ids:
        return {}
    with _gc_paused():
        loaded = _load(ids)
        results = _engine_chunk(ids, loaded, strict)
        _store(loaded, results)
        bests = {pk: bor for pk, bor, _rows, _values in results}
        del loaded, results  # freed before collections resume: nothing left for them to scan
    return bests


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection during a recomputation: it builds 10^5 short-lived objects
    per 1,000 patients (freed by reference counting: no cycles), which each collection would
    scan again with everything else in the process (10-20 % of a whole-portfolio run)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _store(loaded: _Loaded, results: list[tuple]) -> None:
    """Make the stored results those computed, writing only the rows that differ: a result
    that did not change is neither deleted nor inserted again (most of them when the whole
    portfolio is recomputed; on a CRF save, those of the scans before the edited one).
    Every evaluated patient's ``computed_at`` is set, whether its results changed or not."""
    timepoints = {row[0]: row for r in results for row in r[2]}
    responses = {pk: values for pk, _best, _rows, values in results}
    stale_scans, _same = _compare(loaded.stored_timepoints, timepoints, lambda row: row)
    stale_patients, same = _compare(loaded.stored_responses, responses, _stored_response)
    now = timezone.now()
    # The deletes and the computed_at update are one statement, atomic by itself; the rows to
    # insert go with it in one transaction. Within a transaction (a CRF save) no savepoint:
    # an error here is the database's and the whole save rolls back (a patient refused by the
    # engines raised before anything was written).
    with transaction.atomic(savepoint=False) if timepoints or responses else nullcontext():
        with connection.cursor() as cursor:
            cursor.execute(
                "WITH gone AS (DELETE FROM lesions_timepointresult"
                " WHERE assessment_id = ANY(%s)),"
                " kept AS (UPDATE lesions_patientresponse SET computed_at = %s"
                " WHERE patient_id = ANY(%s))"
                " DELETE FROM lesions_patientresponse WHERE patient_id = ANY(%s)",
                [stale_scans, now, same, stale_patients],
            )
        _copy(TimepointResult, _TIMEPOINT_COLUMNS, list(timepoints.values()))
        _copy(
            PatientResponse,
            ("patient_id", *_RESPONSE_COLUMNS, "computed_at"),
            [(pk, *_as_written(values), now) for pk, values in responses.items()],
        )


def _compare(stored: list[tuple], computed: dict[int, tuple], as_computed) -> tuple[list, list]:
    """(keys of the stored rows to delete: changed or no longer computed, keys of the rows
    unchanged); the unchanged rows are taken out of ``computed``, which keeps those to write.
    Values compare as numbers (numeric columns hold the computed Decimals to 0.1)."""
    stale, same = [], []
    for row in stored:
        key = row[0]
        if computed.get(key, _MISSING) == as_computed(row):
            del computed[key]
            same.append(key)
        else:
            stale.append(key)
    return stale, same


_MISSING = object()


def _as_written(values: tuple) -> tuple:
    """A PatientResponse row of :func:`_response_values` as COPY writes it (JSON as jsonb)."""
    return tuple(Jsonb(v) if i in _JSON_COLUMNS else v for i, v in enumerate(values))


def _stored_response(row: tuple) -> tuple:
    """A stored response row (``_STORED_RESPONSE``) as :func:`_response_values` computes it."""
    return tuple(json.loads(v) if i in _JSON_COLUMNS else v for i, v in enumerate(row[1:]))


def _engine_chunk(ids: list[int], loaded: _Loaded, strict: bool) -> list[tuple]:
    """(pk, best overall response, timepoint rows, response values) of each patient with a
    baseline scan."""
    builder = _Builder(loaded)
    results = []
    for pk in ids:
        scans = loaded.scans_of.get(pk, [])
        patient = loaded.patients.get(pk)
        if patient is None or not any(s.is_baseline for s in scans):
            continue
        lesions = loaded.lesions_of.get(pk, [])
        try:
            inputs = builder.inputs(scans, lesions, patient.uses_irecist)
            evaluation, ievaluation = _evaluate(patient, inputs)
        except (TypeError, ValueError) as error:
            if strict:
                raise ValidationError(str(error)) from error
            logger.warning("patient %s: responses not computed: %s", pk, error)
            continue
        values = _response_values(evaluation, ievaluation, _local_control(lesions, inputs))
        results.append(
            (
                pk,
                str(evaluation.best_overall_response),
                _timepoints(scans, evaluation, ievaluation),
                values,
            )
        )
    return results


def _copy(model, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Write rows with PostgreSQL COPY (tens of thousands at once; JSON values as jsonb)."""
    if not rows:
        return
    table = model._meta.db_table
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN"  # noqa: S608 - constants
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _timepoints(scans, evaluation, ievaluation) -> list[tuple]:
    """Rows of TimepointResult (in ``_TIMEPOINT_COLUMNS`` order), one per evaluated scan."""
    by_day = {tp.day: tp for tp in evaluation.timepoints}
    i_by_day = {tp.day: tp.response for tp in ievaluation.timepoints} if ievaluation else {}
    return [
        (
            scan.pk,
            tp.sum_mm,
            tp.nadir_mm,
            tp.change_from_baseline_pct,
            tp.change_from_nadir_pct,
            str(tp.target or ""),
            str(tp.non_target or ""),
            str(tp.new_lesions),
            str(tp.overall),
            str(i_by_day.get(scan.scan_date, "")),
        )
        for scan in scans
        if (tp := by_day.get(scan.scan_date)) is not None
    ]


def _response_values(evaluation, ievaluation, control: dict) -> tuple:
    """The PatientResponse row of one patient, in ``_RESPONSE_COLUMNS`` order (JSON values as
    Python lists)."""
    values = {
        "baseline_sum_mm": evaluation.baseline_sum_mm,
        "best_overall_response": str(evaluation.best_overall_response),
        "best_response_on": evaluation.best_response_scan_day,
        "best_change_pct": evaluation.best_change_from_baseline_pct,
        "progression_on": evaluation.progression_date,
        "baseline_issues": [w.message for w in evaluation.warnings],
        "irecist_best_response": str(ievaluation.best_overall_response) if ievaluation else "",
        "first_iupd_on": ievaluation.first_iupd_date if ievaluation else None,
        "icpd_on": ievaluation.icpd_date if ievaluation else None,
        **control,
    }
    return tuple(values[column] for column in _RESPONSE_COLUMNS)


def _local_control(lesions: list[_Lesion], inputs: _Inputs) -> dict[str, Any]:
    """In-field (irradiated lesion) versus out-of-field progression, per lesion."""
    treated = {le.label for le in lesions if le.planned_for_sbrt and le.category != _NEW}
    values: dict[str, Any] = {"local_control_note": ""}
    try:
        control = recist.lesion_progression(
            inputs.lesions,
            inputs.follow_ups,
            treated=treated,
            baseline_day=inputs.baseline.scan_date,
        )
    except (TypeError, ValueError) as error:
        # e.g. new lesions reported without their sizes: undetermined, never guessed.
        values.update(
            in_field_progression_on=None,
            out_of_field_progression_on=None,
            local_control=[],
            local_control_note=str(error)[:300],
        )
    else:
        values.update(
            in_field_progression_on=control.in_field_progression_day,
            out_of_field_progression_on=control.out_of_field_progression_day,
            local_control=[
                {
                    "lesion": c.lesion_id,
                    "treated": c.treated,
                    "nadir_mm": str(c.nadir_mm) if c.nadir_mm is not None else None,
                    "progression_on": c.progression_day.isoformat() if c.progression_day else None,
                    "criterion": c.criterion or "",
                }
                for c in control.lesions
            ],
        )
    return values


@transaction.atomic
def baseline_correct(
    *,
    patient: Patient,
    by,
    scan_date: date,
    modality: str,
    diameters: dict[int, Decimal],
    reason: str,
) -> ImagingAssessment:
    """Correct the baseline scan's date, modality or target measurements (reason required);
    the RECIST baseline rules are checked again and every later result is recomputed."""
    if not reason.strip():
        raise ValidationError({"reason": _("Give a reason for changing saved data (audit trail).")})
    _check_date(patient, scan_date)
    scan = patient.assessments.filter(is_baseline=True).first()
    if scan is None:
        raise ValidationError(_("This patient has no baseline scan yet."))
    if patient.assessments.filter(is_baseline=False, scan_date__lte=scan_date).exists():
        raise ValidationError({"scan_date": _("The baseline must come before every follow-up.")})
    lesions = {le.pk: le for le in patient.lesions.exclude(category=Lesion.Category.NEW)}
    if set(diameters) - set(lesions):
        raise ValidationError(_("A measurement names a lesion of another patient."))
    current = {m.lesion_id: m.diameter_mm for m in scan.measurements.all()}
    rows = [
        LesionRow(le.label, le.organ, le.is_node, le.category, diameters.get(pk, current.get(pk)))
        for pk, le in lesions.items()
    ]
    errors = [issue.message for issue in _baseline_issues(rows) if issue.is_error]
    if errors:
        raise ValidationError(errors)
    with reason_for_change(reason, user=by.pk):
        scan.scan_date, scan.modality = scan_date, modality
        scan.full_clean()
        scan.save()
        measurements = {pk: MeasurementRow("present", value) for pk, value in diameters.items()}
        _save_measurements(scan, lesions, measurements)
        recompute(patient)
    return scan
