"""Writes of lesions and scans, and the one place where responses are recomputed.

Every write ends with :func:`recompute` in the same transaction: the patient's whole imaging
history goes through the RECIST 1.1 engine (lesions/recist.py) and the stored results
(TimepointResult per scan, PatientResponse per patient) are replaced, so editing a baseline or a
middle scan updates every later result.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
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


def _check_follow_up(patient: Patient, scan_date: date, assessment: ImagingAssessment | None):
    baseline = patient.assessments.filter(is_baseline=True).first()
    if baseline is None:
        raise ValidationError(_("Record the baseline scan first."))
    if scan_date <= baseline.scan_date:
        raise ValidationError({"scan_date": _("A follow-up scan must be after the baseline scan.")})
    clash = patient.assessments.filter(scan_date=scan_date)
    if assessment is not None:
        clash = clash.exclude(pk=assessment.pk)
    if clash.exists():
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
) -> ImagingAssessment:
    """Create (or, with a reason, correct) a follow-up scan; recompute every response."""
    _check_date(patient, scan_date)
    _check_follow_up(patient, scan_date, assessment)
    if assessment is not None and not reason.strip():
        raise ValidationError({"reason": _("Give a reason for changing saved data (audit trail).")})
    lesions = {lesion.pk: lesion for lesion in patient.lesions.all()}
    foreign = [pk for pk in measurements if pk not in lesions]
    if foreign:
        raise ValidationError(_("A measurement names a lesion of another patient."))
    if uses_irecist(patient):
        _check_new_lesions_listed(new_lesions, lesions, measurements, new_lesion_rows)
    with reason_for_change(reason or "follow-up imaging", user=by.pk):
        scan = assessment or ImagingAssessment(patient=patient)
        scan.scan_date, scan.modality = scan_date, modality
        scan.non_target_status, scan.new_lesions = non_target_status, new_lesions
        scan.non_target_increase = non_target_increase
        scan.full_clean()
        scan.save()
        _save_measurements(scan, lesions, measurements)
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


def _save_measurements(scan, lesions, measurements: dict[int, MeasurementRow]) -> None:
    for lesion_pk, row in measurements.items():
        _fragments(row.fragments_mm)
        values: dict[str, Any] = {
            "state": row.state,
            "diameter_mm": row.diameter_mm,
            "fragments_mm": row.fragments_mm,
            "coalesced_into": row.coalesced_into,
            "status": row.status,
        }
        current = Measurement.objects.filter(assessment=scan, lesion=lesions[lesion_pk]).first()
        if current is None:
            current = Measurement(assessment=scan, lesion=lesions[lesion_pk])
        elif all(getattr(current, k) == v for k, v in values.items()):
            continue  # unchanged: no audit row
        for key, value in values.items():
            setattr(current, key, value)
        current.full_clean()
        current.save()


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


@dataclass(frozen=True)
class _Inputs:
    baseline: ImagingAssessment
    lesions: list  # recist.BaselineLesion
    follow_ups: list  # recist.Assessment
    i_follow_ups: list  # irecist.IAssessment (built only for iRECIST arms)


class _M:
    """A measurement as the engines need it (light: the whole portfolio is read at once)."""

    __slots__ = (
        "assessment_id",
        "coalesced_into",
        "diameter_mm",
        "fragments_mm",
        "lesion",
        "state",
        "status",
    )

    def __init__(self, row: tuple, lesions: dict[int, Lesion]) -> None:
        assessment_id, lesion_id, state, diameter, fragments, coalesced_id, status = row
        self.assessment_id, self.state, self.status = assessment_id, state, status
        self.diameter_mm, self.fragments_mm = diameter, fragments
        self.lesion = lesions[lesion_id]
        self.coalesced_into = lesions.get(coalesced_id) if coalesced_id else None


def _engine_inputs(
    scans: list[ImagingAssessment],
    lesions: list[Lesion],
    by_scan: dict[int, list[_M]],
    with_irecist: bool,
):
    """Plain engine data from one patient's lesions, scans and measurements."""
    baseline = next(s for s in scans if s.is_baseline)
    base_values = {m.lesion.label: m.diameter_mm for m in by_scan.get(baseline.pk, [])}
    lesions = [le for le in lesions if le.category != Lesion.Category.NEW]
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
    has_non_targets = any(le.category == Lesion.Category.NON_TARGET for le in lesions)
    follow_ups, i_follow_ups = [], []
    for scan in scans:
        if scan.is_baseline:
            continue
        assessment = _engine_scan(scan, by_scan.get(scan.pk, []), has_non_targets)
        follow_ups.append(assessment)
        if with_irecist:
            i_follow_ups.append(_irecist_scan(scan, assessment, by_scan.get(scan.pk, [])))
    return _Inputs(baseline, engine_lesions, follow_ups, i_follow_ups)


def _engine_measurement(m) -> recist.Measurement:
    return recist.Measurement(
        lesion_id=m.lesion.label,
        state=m.state,
        diameter_mm=m.diameter_mm if m.state == Measurement.State.PRESENT else None,
        fragments=_fragments(m.fragments_mm) if m.state == Measurement.State.SPLIT else (),
        coalesced_into=m.coalesced_into.label if m.coalesced_into is not None else None,
    )


def _engine_scan(scan: ImagingAssessment, measurements: list, non_targets: bool):
    targets = [
        _engine_measurement(m) for m in measurements if m.lesion.category == Lesion.Category.TARGET
    ]
    new = [
        recist.NewLesion(lesion_id=m.lesion.label, diameter_mm=m.diameter_mm)
        for m in measurements
        if m.lesion.category == Lesion.Category.NEW
    ]
    return recist.Assessment(
        day=scan.scan_date,
        measurements=tuple(targets),
        non_target=(scan.non_target_status or "NE") if non_targets else None,
        new_lesions=scan.new_lesions,
        new_lesion_details=tuple(new),
    )


def _irecist_scan(scan, assessment: recist.Assessment, measurements: list):
    """The iRECIST view of a scan: its new lesions followed apart (Seymour 2017, Table 1)."""
    findings = []
    for m in measurements:
        if m.lesion.category != Lesion.Category.NEW:
            continue
        target = m.lesion.new_is_target
        findings.append(
            irecist.NewLesionFinding(
                lesion_id=m.lesion.label,
                organ=m.lesion.organ,
                is_node=m.lesion.is_node,
                category=recist.LesionCategory.TARGET
                if target
                else recist.LesionCategory.NON_TARGET,
                measurement=_engine_measurement(m) if target else None,
                status=None if target else (m.status or "NE"),
            )
        )
    return irecist.IAssessment(
        recist=assessment, new_lesions=tuple(findings), non_target_increase=scan.non_target_increase
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


class _Row:
    """A scan or lesion as the engines read it (plain attributes from ``values_list``)."""

    def __init__(self, names: tuple[str, ...], values: tuple) -> None:
        self.__dict__.update(zip(names, values, strict=True))


_SCAN_FIELDS = (
    "pk",
    "patient_id",
    "scan_date",
    "is_baseline",
    "non_target_status",
    "new_lesions",
    "non_target_increase",
)
_LESION_FIELDS = (
    "pk",
    "patient_id",
    "label",
    "organ",
    "is_node",
    "category",
    "planned_for_sbrt",
    "new_is_target",
)


def _load(patient_ids: list[int]):
    """Everything the engines read, for any number of patients, in four queries."""
    patients = {
        p.pk: p
        for p in Patient.objects.filter(pk__in=patient_ids).select_related(
            "study_site__study", "allocation__arm"
        )
    }
    scans: dict[int, list[_Row]] = {}
    for values in (
        ImagingAssessment.objects.filter(patient_id__in=patient_ids)
        .order_by("patient_id", "scan_date")
        .values_list(*_SCAN_FIELDS)
    ):
        scan = _Row(_SCAN_FIELDS, values)
        scans.setdefault(scan.patient_id, []).append(scan)
    lesions: dict[int, _Row] = {}
    for values in (
        Lesion.objects.filter(patient_id__in=patient_ids)
        .order_by("patient_id", "category", "label")
        .values_list(*_LESION_FIELDS)
    ):
        lesion = _Row(_LESION_FIELDS, values)
        lesions[lesion.pk] = lesion
    by_scan: dict[int, list[_M]] = {}
    for row in Measurement.objects.filter(lesion__patient_id__in=patient_ids).values_list(
        "assessment_id",
        "lesion_id",
        "state",
        "diameter_mm",
        "fragments_mm",
        "coalesced_into_id",
        "status",
    ):
        m = _M(row, lesions)
        by_scan.setdefault(m.assessment_id, []).append(m)
    lesions_of: dict[int, list[_Row]] = {}
    for le in lesions.values():
        lesions_of.setdefault(le.patient_id, []).append(le)
    return patients, scans, lesions_of, by_scan


def _evaluate(patient: Patient, scans, lesions, by_scan):
    """(evaluation, iRECIST evaluation, inputs) of one patient; ValueError on bad data."""
    with_irecist = uses_irecist(patient)
    study = patient.study_site.study
    inputs = _engine_inputs(scans, lesions, by_scan, with_irecist)
    params = {
        "treatment_start": patient.enrolled_on or inputs.baseline.scan_date,
        "confirmation_required": study.response_confirmation_required,
        "min_sd_days": study.min_sd_days,
        "baseline_day": inputs.baseline.scan_date,
    }
    ievaluation = None
    if with_irecist:
        ievaluation = irecist.evaluate(
            inputs.lesions,
            inputs.i_follow_ups,
            **params,
            new_lesions_block_reset=study.irecist_new_lesions_block_reset,
        )
        evaluation = ievaluation.recist
    else:
        evaluation = recist.evaluate(inputs.lesions, inputs.follow_ups, **params)
    return evaluation, ievaluation, inputs


# Above this many patients the engines run in one process per CPU (forked after the data are
# read; the children never touch the database connection and return plain values).
PARALLEL_MIN_PATIENTS = 400


def recompute_many(patient_ids, *, strict: bool = False) -> dict[int, str]:
    """Run the engines over the imaging history of many patients and replace their stored
    results (TimepointResult per scan, PatientResponse per patient) in a constant number of
    queries, whatever the number of patients (the whole portfolio after an engine change).

    A patient whose data the engine refuses raises ``ValidationError`` when ``strict`` (a CRF
    being saved); otherwise the patient keeps no results and is skipped (logged). Planned
    visits are not re-planned here (see :func:`recompute`). Returns each evaluated patient's
    best overall response.
    """
    ids = list(patient_ids)
    loaded = _load(ids)
    results = _run_engines(ids, loaded, strict)
    scan_ids = [scan.pk for scans in loaded[1].values() for scan in scans]
    TimepointResult.objects.filter(assessment_id__in=scan_ids).delete()  # index, no join
    PatientResponse.objects.filter(patient_id__in=ids).delete()
    _copy(TimepointResult, _TIMEPOINT_COLUMNS, [row for r in results for row in r[2]])
    now = timezone.now()
    _copy(
        PatientResponse,
        ("patient_id", *_RESPONSE_COLUMNS, "computed_at"),
        [(pk, *values, now) for pk, _best, _rows, values in results],
    )
    return {pk: best for pk, best, _rows, _values in results}


def _engine_chunk(ids: list[int], loaded, strict: bool) -> list[tuple]:
    """(pk, best overall response, timepoint rows, response values) of each patient with a
    baseline scan: plain values, cheap to send back from a forked process."""
    patients, scans_of, lesions_of, by_scan = loaded
    results = []
    for pk in ids:
        scans = scans_of.get(pk, [])
        if pk not in patients or not any(s.is_baseline for s in scans):
            continue
        lesions = lesions_of.get(pk, [])
        try:
            evaluation, ievaluation, inputs = _evaluate(patients[pk], scans, lesions, by_scan)
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


_FORKED: tuple | None = None  # what the forked engine processes read (set just before forking)


def _forked_chunk(ids: list[int]) -> list[tuple]:
    return _engine_chunk(ids, _FORKED, False)


def _run_engines(ids: list[int], loaded, strict: bool) -> list[tuple]:
    global _FORKED
    cpus = os.cpu_count() or 1
    if strict or cpus < 2 or len(ids) < PARALLEL_MIN_PATIENTS:
        return _engine_chunk(ids, loaded, strict)
    chunks = [ids[i::cpus] for i in range(cpus)]
    _FORKED = loaded
    try:
        with multiprocessing.get_context("fork").Pool(cpus) as pool:
            parts = pool.map(_forked_chunk, chunks)
    finally:
        _FORKED = None
    return [result for part in parts for result in part]


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
    """The PatientResponse row of one patient, in ``_RESPONSE_COLUMNS`` order."""
    values = {
        "baseline_sum_mm": evaluation.baseline_sum_mm,
        "best_overall_response": str(evaluation.best_overall_response),
        "best_response_on": evaluation.best_response_scan_day,
        "best_change_pct": evaluation.best_change_from_baseline_pct,
        "progression_on": evaluation.progression_date,
        "baseline_issues": Jsonb([w.message for w in evaluation.warnings]),
        "irecist_best_response": str(ievaluation.best_overall_response) if ievaluation else "",
        "first_iupd_on": ievaluation.first_iupd_date if ievaluation else None,
        "icpd_on": ievaluation.icpd_date if ievaluation else None,
        **control,
    }
    values["local_control"] = Jsonb(values["local_control"])
    return tuple(values[column] for column in _RESPONSE_COLUMNS)


def _local_control(lesions, inputs: _Inputs) -> dict[str, Any]:
    """In-field (irradiated lesion) versus out-of-field progression, per lesion."""
    treated = {
        le.label for le in lesions if le.planned_for_sbrt and le.category != Lesion.Category.NEW
    }
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
