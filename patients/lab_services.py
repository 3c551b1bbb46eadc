"""Laboratory results and site normal ranges: validated, converted, CTCAE-graded, audited.

Writes run in one transaction and validate everything before writing (nothing half-saved);
refusals are ``ValidationError`` with translated messages keyed by ``sampled_on``, ``reason``,
``results`` (the whole sample) or the analyte key (one result).  Units and plausibility come
from ``patients/labunits.py``, grades from ``patients/ctcae.py`` (the normal range's LLN is
passed in its own unit: the grader converts exactly).  A grade that depends on a missing normal
range is stored as ``None`` with ``grade_problem = "normal range missing"``, never guessed.

Reads for the pages: the SBRT dates of patients, the worst grade per period (baseline = before
the first delivered fraction, during SBRT, after the last delivered fraction) and the ATRA
trial's lymphopenia endpoint (``patients/lymphopenia.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone
from django.utils.translation import gettext as _

from patients import ctcae, labunits, lymphopenia
from patients.models import Allocation, Consent, Patient
from patients.models_safety import Analyte, LabResult, NormalRange, SafetyRules
from patients.visit_services import visits_sync
from studies.audit import reason_for_change
from studies.models import Study, StudySite
from treatments.models import Fraction as SbrtFraction

NORMAL_RANGE_MISSING = "normal range missing"
NORMAL_RANGE_INVALID = "normal range unusable"
GRADED_ANALYTES = tuple(a for a in Analyte.values if a in ctcae.ANALYTE_TERMS)
BASELINE, DURING, AFTER = "baseline", "during", "after"
PERIODS = (BASELINE, DURING, AFTER)
_VALUE_PLACES = 3  # LabResult.value and NormalRange limits: decimal_places=3


@dataclass(frozen=True)
class Grading:
    term: str = ""
    grade: int | None = None
    rule: str = ""
    problem: str = ""


def _today() -> date:
    return timezone.localdate()


def _label(analyte: str) -> str:
    return str(Analyte(analyte).label) if analyte in Analyte.values else analyte


def _analytes_accepting(unit: str) -> list[str]:
    return [_label(a) for a in labunits.ANALYTES if unit.strip() in labunits.units_for(a)]


def _unit_message(analyte: str, unit: str) -> str:
    accepted = ", ".join(labunits.units_for(analyte))
    others = _analytes_accepting(unit)
    if others:
        return _(
            "“%(unit)s” is a unit of %(others)s, not of %(analyte)s; accepted: %(accepted)s."
        ) % {
            "unit": unit,
            "others": ", ".join(others),
            "analyte": _label(analyte),
            "accepted": accepted,
        }
    return _("Unknown unit “%(unit)s” for %(analyte)s; accepted: %(accepted)s.") % {
        "unit": unit,
        "analyte": _label(analyte),
        "accepted": accepted,
    }


def _value_problem(analyte: str, value: Decimal, unit: str) -> str | None:
    """A translated message when (value, unit) cannot be stored for ``analyte``, else None."""
    if analyte not in Analyte.values:
        return _("Unknown analyte “%(analyte)s”.") % {"analyte": analyte}
    if not isinstance(value, Decimal) or not value.is_finite():
        return _("Enter a number.")
    if value < 0:
        return _("A laboratory value cannot be negative.")
    if value.as_tuple().exponent < -_VALUE_PLACES:
        return _("Enter at most %(n)s decimal places.") % {"n": _VALUE_PLACES}
    try:
        labunits.check_plausible(analyte, value, unit)
    except labunits.UnitError:
        return _unit_message(analyte, unit)
    except labunits.ImplausibleValue as error:
        return _(
            "%(value)s %(unit)s is not a plausible %(analyte)s value (accepted: %(low)s to "
            "%(high)s %(standard)s); check the value and its unit."
        ) % {
            "value": value,
            "unit": unit,
            "analyte": _label(analyte),
            "low": error.low,
            "high": error.high,
            "standard": error.standard_unit,
        }
    return None


def grade_result(
    analyte: str, value: Decimal, unit: str, normal_range: NormalRange | None
) -> Grading:
    """The CTCAE v5.0 grade of one result (only the four haematology terms are graded)."""
    term = ctcae.ANALYTE_TERMS.get(analyte)
    if term is None:
        return Grading()
    lln = None
    if normal_range is not None and normal_range.lln is not None:
        try:
            lln = ctcae.LabValue(normal_range.lln, normal_range.unit)
        except ValueError:
            return Grading(term.value, None, "", NORMAL_RANGE_INVALID)
    try:
        graded = ctcae.grade(term, ctcae.LabValue(value, unit.strip()), lln)
    except ctcae.MissingNormalRange:
        return Grading(term.value, None, "", NORMAL_RANGE_MISSING)
    except ValueError:  # e.g. an LLN of 0 or in a unit of another analyte
        return Grading(term.value, None, "", NORMAL_RANGE_INVALID)
    return Grading(term.value, graded.grade, graded.rule[:200], "")


def _apply(result: LabResult, normal_range: NormalRange | None) -> None:
    """Fill the converted value, the copied normal range and the grade of ``result``."""
    converted = labunits.to_standard(result.analyte, result.value, result.unit)
    result.value_standard, result.standard_unit = converted.value, converted.unit
    result.lln = normal_range.lln if normal_range else None
    result.uln = normal_range.uln if normal_range else None
    result.range_unit = normal_range.unit if normal_range else ""
    grading = grade_result(result.analyte, result.value, result.unit, normal_range)
    result.ctcae_term, result.grade = grading.term, grading.grade
    result.grade_rule, result.grade_problem = grading.rule, grading.problem


# --- laboratory results ------------------------------------------------------------------------


def _check_date(patient: Patient, sampled_on: date | None) -> dict[str, str]:
    if sampled_on is None:
        return {"sampled_on": _("Give the sample date.")}
    if sampled_on > _today():
        return {"sampled_on": _("This date is in the future.")}
    first_consent = Consent.objects.filter(patient=patient).aggregate(first=Min("consented_on"))[
        "first"
    ]
    if first_consent is None or sampled_on < first_consent:
        return {"sampled_on": _("A study sample cannot be dated before the patient's consent.")}
    return {}


def _check_rows(
    patient: Patient, sampled_on: date | None, rows: Sequence[tuple], lab: LabResult | None
) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not rows:
        return {"results": _("Enter at least one result.")}
    if lab is not None and len(rows) != 1:
        return {"results": _("A correction changes one result.")}
    seen: set[str] = set()
    for analyte, value, unit in rows:
        if analyte in seen:
            errors[analyte] = _("%(analyte)s is entered twice for this sample.") % {
                "analyte": _label(analyte)
            }
            continue
        seen.add(analyte)
        problem = _value_problem(analyte, value, unit or "")
        if problem:
            errors[analyte] = problem
    if sampled_on is not None and seen - set(errors):
        taken = LabResult.objects.filter(
            patient=patient, sampled_on=sampled_on, analyte__in=seen - set(errors)
        )
        if lab is not None:
            taken = taken.exclude(pk=lab.pk)
        for analyte in taken.values_list("analyte", flat=True):
            errors[analyte] = _(
                "A %(analyte)s result is already recorded for this date; correct that one."
            ) % {"analyte": _label(analyte)}
    return errors


def _changed(lab: LabResult, sampled_on: date, row: tuple) -> bool:
    analyte, value, unit = row
    return (lab.sampled_on, lab.analyte, lab.value, lab.unit) != (
        sampled_on,
        analyte,
        value,
        unit.strip(),
    )


@transaction.atomic
def lab_record(
    *,
    patient: Patient,
    by,
    sampled_on: date,
    results: Iterable[tuple[str, Decimal, str]],
    reason: str = "",
    lab: LabResult | None = None,
) -> list[LabResult]:
    """Record the results of one sample (``lab`` given: correct that one result).

    ``results`` is a list of (analyte, value, unit).  A correction needs a reason.
    """
    rows = list(results)
    if patient.enrolled_on is None:
        raise ValidationError(_("Laboratory results are recorded for enrolled patients only."))
    if lab is not None and lab.patient_id != patient.pk:
        raise ValidationError(_("This result belongs to another patient."))
    errors = {**_check_date(patient, sampled_on), **_check_rows(patient, sampled_on, rows, lab)}
    if errors:
        raise ValidationError(errors)
    if lab is not None and not _changed(lab, sampled_on, rows[0]):
        return [lab]
    if lab is not None and not reason.strip():
        raise ValidationError({"reason": _("Give a reason for changing saved data (audit trail).")})
    ranges = {r.analyte: r for r in NormalRange.objects.filter(study_site_id=patient.study_site_id)}
    saved = []
    with reason_for_change(reason.strip() or "Laboratory result", user=by.pk):
        for analyte, value, unit in rows:
            result = lab or LabResult(patient=patient)
            result.sampled_on, result.analyte = sampled_on, analyte
            result.value, result.unit = value, unit.strip()
            _apply(result, ranges.get(analyte))
            result.save()
            saved.append(result)
        visits_sync(patient)
    return saved


# --- normal ranges -----------------------------------------------------------------------------


def normal_range_problems(
    analyte: str, lln: Decimal | None, uln: Decimal | None, unit: str
) -> dict[str, str]:
    """Translated problems of a normal range, keyed by field (lln, uln, unit); {} when valid."""
    if analyte not in Analyte.values:
        return {"analyte": _("Unknown analyte “%(analyte)s”.") % {"analyte": analyte}}
    if not unit or unit.strip() not in labunits.units_for(analyte):
        return {"unit": _unit_message(analyte, unit or "")}
    errors: dict[str, str] = {}
    if lln is None and uln is None:
        errors["lln"] = _("Give the lower or the upper limit of normal (or both).")
    for name, limit in (("lln", lln), ("uln", uln)):
        if limit is None:
            continue
        problem = _value_problem(analyte, limit, unit)
        if problem:
            errors[name] = problem
    if "lln" not in errors and lln is not None:
        if analyte in GRADED_ANALYTES and lln <= 0:
            errors["lln"] = _("The lower limit of normal must be above 0.")
        elif uln is not None and "uln" not in errors and lln > uln:
            errors["uln"] = _("The upper limit cannot be below the lower limit.")
    return errors


def _regrade(study_site: StudySite, analyte: str, normal_range: NormalRange | None) -> int:
    results = list(LabResult.objects.filter(patient__study_site=study_site, analyte=analyte))
    for result in results:
        _apply(result, normal_range)
    LabResult.objects.bulk_update(
        results,
        [
            "value_standard",
            "standard_unit",
            "lln",
            "uln",
            "range_unit",
            "ctcae_term",
            "grade",
            "grade_rule",
            "grade_problem",
        ],
    )
    return len(results)


@transaction.atomic
def normal_range_save(
    *,
    study_site: StudySite,
    analyte: str,
    lln: Decimal | None,
    uln: Decimal | None,
    unit: str,
    by,
    reason: str = "",
) -> NormalRange | None:
    """Create, change or (both limits empty) remove a site's range; re-grade its results.

    Changing or removing a saved range needs a reason.  Returns the range (None if removed).
    """
    unit = (unit or "").strip()
    existing = (
        NormalRange.objects.select_for_update()
        .filter(study_site=study_site, analyte=analyte)
        .first()
    )
    removing = existing is not None and lln is None and uln is None
    if not removing:
        errors = normal_range_problems(analyte, lln, uln, unit)
        if errors:
            raise ValidationError(errors)
    if existing is not None and (existing.lln, existing.uln, existing.unit) == (lln, uln, unit):
        return existing
    if existing is not None and not reason.strip():
        raise ValidationError({"reason": _("Give a reason for changing saved data (audit trail).")})
    with reason_for_change(reason.strip() or "Normal range", user=by.pk):
        if removing:
            existing.delete()
            _regrade(study_site, analyte, None)
            return None
        normal_range = existing or NormalRange(study_site=study_site, analyte=analyte)
        normal_range.lln, normal_range.uln, normal_range.unit = lln, uln, unit
        normal_range.save()
        _regrade(study_site, analyte, normal_range)
    return normal_range


# --- reads for the pages -----------------------------------------------------------------------


def sbrt_dates(patient_ids: Iterable[int]) -> dict[int, tuple[date, date]]:
    """Patient id -> (first, last) delivered SBRT fraction, for patients with one."""
    rows = (
        SbrtFraction.objects.filter(
            course__patient_id__in=list(patient_ids), status=SbrtFraction.Status.DELIVERED
        )
        .values("course__patient_id")
        .annotate(first=Min("day"), last=Max("day"))
    )
    return {row["course__patient_id"]: (row["first"], row["last"]) for row in rows}


def period_of(day: date, sbrt: tuple[date, date] | None) -> str:
    if sbrt is None or day < sbrt[0]:
        return BASELINE
    return DURING if day <= sbrt[1] else AFTER


@dataclass
class WorstCell:
    grade: int | None = None
    ungraded: int = 0  # results of the cell whose grade could not be computed

    def add(self, result: LabResult) -> None:
        if result.grade is None:
            self.ungraded += 1
        elif self.grade is None or result.grade > self.grade:
            self.grade = result.grade


@dataclass
class WorstRow:
    analyte: str
    term: str
    cells: dict[str, WorstCell] = field(default_factory=lambda: {p: WorstCell() for p in PERIODS})
    overall: WorstCell = field(default_factory=WorstCell)

    @property
    def by_period(self) -> list[WorstCell]:
        return [self.cells[p] for p in PERIODS]


def worst_grades(results: Iterable[LabResult], sbrt: tuple[date, date] | None) -> list[WorstRow]:
    """Worst CTCAE grade per graded analyte and period (and overall) of one patient."""
    rows = {a: WorstRow(a, ctcae.ANALYTE_TERMS[a].value) for a in GRADED_ANALYTES}
    for result in results:
        row = rows.get(result.analyte)
        if row is not None:
            row.cells[period_of(result.sampled_on, sbrt)].add(result)
            row.overall.add(result)
    return list(rows.values())


def lymphopenia_window(study: Study) -> lymphopenia.Window:
    rules = SafetyRules.objects.filter(study=study).first()
    if rules is None:
        return lymphopenia.Window()
    return lymphopenia.Window(rules.lymphopenia_day, rules.lymphopenia_window_days)


def lymphopenia_summary(study: Study, user, today: date | None = None) -> lymphopenia.Summary:
    """The lymphopenia endpoint of every enrolled patient of ``study`` the user can see."""
    patients = list(
        Patient.objects.for_user(user)
        .filter(study_site__study=study, enrolled_on__isnull=False)
        .select_related("allocation__arm")
        .order_by("subject_id")
    )
    ids = [p.pk for p in patients]
    sbrt = sbrt_dates(ids)
    counts: dict[int, list[lymphopenia.Count]] = {}
    for patient_id, sampled_on, value, grade in LabResult.objects.filter(
        patient_id__in=ids, analyte=Analyte.LYMPHOCYTES
    ).values_list("patient_id", "sampled_on", "value_standard", "grade"):
        counts.setdefault(patient_id, []).append(lymphopenia.Count(sampled_on, value, grade))
    data = []
    for patient in patients:
        allocation = getattr(patient, "allocation", None)
        data.append(
            lymphopenia.PatientData(
                key=patient,
                arm=allocation.arm.code if allocation else None,
                randomised=bool(allocation and allocation.part == Allocation.Part.RANDOMISED),
                sbrt_end=sbrt[patient.pk][1] if patient.pk in sbrt else None,
                counts=tuple(counts.get(patient.pk, ())),
            )
        )
    arms = list(study.arms.order_by("code").values_list("code", flat=True))
    return lymphopenia.summarise(
        data,
        lymphopenia_window(study),
        today or _today(),
        arms=arms,
        experimental=study.run_in_arm_code or None,
    )
