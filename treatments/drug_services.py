"""The study drug: the patient's regimens, the planned calendar, recording cycles, compliance.

A regimen (treatments.models.DrugRegimen) is protocol data: the ATRA trial gives ATRA
150 mg/m²/day on days 1-3 of each 21-day cycle, up to 4 cycles, from the first day of
radiotherapy; STEREOSARC arm A gives atezolizumab 1200 mg IV every 21 days, 6 cycles.

Calendar: cycle n's planned day 1 = anchor + start_offset_days + (n - 1) x cycle_length_days,
where the anchor is the first *delivered* SBRT fraction, or, before any fraction is delivered,
the planned start of the first SBRT course (none: no date yet).

Recording (:func:`cycle_record`) refuses bad input with a message keyed to the form field and
saves nothing: a patient not enrolled or whose arm does not get the drug, a cycle number above
the regimen's maximum, a day given before consent (or after consent to treatment was
withdrawn) or in the future, a per-m² drug without height and weight, an implausible height
or weight (treatments/bsa.py limits), a cycle not given as planned without its reason, an
omitted cycle with a dose or a date, a dose above the planned one, a "reduced" cycle given in
full.  The planned dose is computed here, never typed: flat, or treatments.bsa.dose_per_m2
with the regimen's formula, rounding and cap (its explanation is stored with the cycle).

Compliance (:func:`compliance`): dose given / dose planned over the recorded cycles (relative
dose intensity, as a percentage) and the number of delayed, reduced, interrupted and omitted
cycles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Min, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from patients.models import Patient
from studies.audit import reason_for_change
from treatments import bsa
from treatments.models import DrugCycle, DrugRegimen, Fraction, RadiotherapyCourse

Status = DrugCycle.Status


# ---------------------------------------------------------------------------
# Regimens and the planned calendar
# ---------------------------------------------------------------------------


def _arm_id(patient: Patient) -> int | None:
    allocation = getattr(patient, "allocation", None)
    return allocation.arm_id if allocation is not None else None


def regimens_for(patient: Patient) -> QuerySet[DrugRegimen]:
    """The study's regimens given in the patient's allocated arm, or in every arm."""
    arm_id = _arm_id(patient)
    arms = Q(arm__isnull=True) | Q(arm_id=arm_id) if arm_id else Q(arm__isnull=True)
    return (
        DrugRegimen.objects.filter(arms, study_id=patient.study_site.study_id)
        .select_related("agent", "arm")
        .order_by("agent__name")
    )


def _plain(value: Decimal) -> str:
    """150.00 -> "150", 2.50 -> "2.5"."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def regimen_text(regimen: DrugRegimen) -> str:
    """The regimen in words, e.g. "… 150 mg/m²/day oral, days 1-3 every 21 days, up to 4
    cycles, from the first SBRT fraction; BSA: Mosteller, dose rounded to the nearest 10 mg"."""
    per_m2 = regimen.dose_basis == DrugRegimen.DoseBasis.PER_M2
    days, length = regimen.days_per_cycle, regimen.cycle_length_days
    if per_m2:
        unit = _("mg/m²/day") if days > 1 else "mg/m²"
    else:
        unit = _("mg/day") if days > 1 else "mg"
    if days == 1:
        schedule = _("day 1 every %(length)s days") % {"length": length}
    else:
        schedule = _("days 1-%(days)s every %(length)s days") % {"days": days, "length": length}
    cycles = ngettext("up to %(n)s cycle", "up to %(n)s cycles", regimen.max_cycles) % {
        "n": regimen.max_cycles
    }
    offset = regimen.start_offset_days
    if offset == 0:
        start = _("from the first SBRT fraction")
    elif offset > 0:
        start = ngettext(
            "from %(n)s day after the first SBRT fraction",
            "from %(n)s days after the first SBRT fraction",
            offset,
        ) % {"n": offset}
    else:
        start = ngettext(
            "from %(n)s day before the first SBRT fraction",
            "from %(n)s days before the first SBRT fraction",
            -offset,
        ) % {"n": -offset}
    text = _("%(agent)s %(dose)s %(unit)s %(route)s, %(schedule)s, %(cycles)s, %(start)s") % {
        "agent": regimen.agent.name,
        "dose": _plain(regimen.dose),
        "unit": unit,
        "route": str(regimen.get_route_display()).lower(),
        "schedule": schedule,
        "cycles": cycles,
        "start": start,
    }
    if per_m2:
        text += "; " + _("BSA: %(formula)s, dose rounded to the nearest %(step)s mg") % {
            "formula": regimen.get_bsa_formula_display(),
            "step": _plain(regimen.rounding_mg),
        }
        if regimen.cap_bsa_m2 is not None:
            text += ", " + _("BSA capped at %(cap)s m²") % {"cap": regimen.cap_bsa_m2}
    return text


@dataclass(frozen=True)
class Anchor:
    """Day the calendar counts from: the first delivered fraction, else the planned start."""

    day: date | None
    from_delivered_fraction: bool


def calendar_anchor(patient: Patient) -> Anchor:
    first = Fraction.objects.filter(
        course__patient=patient, status=Fraction.Status.DELIVERED
    ).aggregate(first=Min("day"))["first"]
    if first is not None:
        return Anchor(first, True)
    planned = (
        RadiotherapyCourse.objects.filter(patient=patient)
        .order_by("number")
        .values_list("planned_start", flat=True)
        .first()
    )
    return Anchor(planned, False)


def planned_day(anchor: date | None, regimen: DrugRegimen, number: int) -> date | None:
    if anchor is None:
        return None
    days = regimen.start_offset_days + (number - 1) * regimen.cycle_length_days
    return anchor + timedelta(days=days)


@dataclass(frozen=True)
class CalendarRow:
    number: int
    planned_on: date | None  # the recorded cycle's, else computed from the anchor
    cycle: DrugCycle | None

    @property
    def delay_days(self) -> int | None:
        if self.cycle is None or self.cycle.given_on is None or self.planned_on is None:
            return None
        return (self.cycle.given_on - self.planned_on).days


def planned_calendar(
    patient: Patient,
    regimen: DrugRegimen,
    cycles,
    *,
    anchor: Anchor | None = None,
) -> list[CalendarRow]:
    """Cycles 1..max_cycles (and any recorded beyond), each with its recorded cycle if any.

    ``cycles``: the patient's recorded DrugCycle rows (any regimen; this one's are kept).
    ``anchor``: pass :func:`calendar_anchor` when computing several regimens.
    """
    if anchor is None:
        anchor = calendar_anchor(patient)
    recorded = {c.number: c for c in cycles if c.regimen_id == regimen.pk}
    last = max([regimen.max_cycles, *recorded])
    rows = []
    for number in range(1, last + 1):
        cycle = recorded.get(number)
        planned = cycle.planned_on if cycle else planned_day(anchor.day, regimen, number)
        rows.append(CalendarRow(number, planned, cycle))
    return rows


# ---------------------------------------------------------------------------
# Compliance
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Compliance:
    recorded: int
    planned_mg: Decimal
    given_mg: Decimal
    percent: Decimal | None  # given / planned x 100, to 0.1 %; None before any planned dose
    delayed: int  # status "delayed" or day 1 given after the planned day
    reduced: int
    interrupted: int
    omitted: int


def compliance(rows: list[CalendarRow]) -> Compliance:
    """Relative dose intensity over the recorded cycles, and the cycles not given as planned."""
    cycles = [row for row in rows if row.cycle is not None]
    planned = sum((row.cycle.planned_total_mg for row in cycles), Decimal(0))
    given = sum((row.cycle.given_total_mg for row in cycles), Decimal(0))
    percent = None
    if planned > 0:
        percent = (given * 100 / planned).quantize(Decimal("0.1"), ROUND_HALF_UP)

    def count(status: str) -> int:
        return sum(1 for row in cycles if row.cycle.status == status)

    delayed = sum(
        1 for row in cycles if row.cycle.status == Status.DELAYED or (row.delay_days or 0) > 0
    )
    return Compliance(
        recorded=len(cycles),
        planned_mg=planned,
        given_mg=given,
        percent=percent,
        delayed=delayed,
        reduced=count(Status.REDUCED),
        interrupted=count(Status.INTERRUPTED),
        omitted=count(Status.OMITTED),
    )


# ---------------------------------------------------------------------------
# Planned dose
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedDose:
    daily_mg: Decimal
    total_mg: Decimal  # daily x administration days of the cycle
    bsa_m2: Decimal | None
    explanation: str


def _check_measure(
    errors: dict, field: str, value: Decimal | None, bounds, text: str
) -> Decimal | None:
    if value is None:
        return None
    low, high = bounds
    if not low <= value <= high:
        errors.setdefault(field, []).append(
            text % {"value": _plain(value), "low": _plain(low), "high": _plain(high)}
        )
        return None
    return value


def _measures(errors: dict, regimen: DrugRegimen, height, weight):
    """Checked height and weight (None where missing or refused; errors added)."""
    height = _check_measure(
        errors,
        "height_cm",
        height,
        bsa.HEIGHT_RANGE_CM,
        _("A height of %(value)s cm is implausible: give it in cm, between %(low)s and %(high)s."),
    )
    weight = _check_measure(
        errors,
        "weight_kg",
        weight,
        bsa.WEIGHT_RANGE_KG,
        _("A weight of %(value)s kg is implausible: give it in kg, between %(low)s and %(high)s."),
    )
    if regimen.dose_basis == DrugRegimen.DoseBasis.PER_M2:
        message = _("The dose is per m² of body surface area: give the height and the weight.")
        for field, value in (("height_cm", height), ("weight_kg", weight)):
            if value is None and field not in errors:
                errors.setdefault(field, []).append(message)
    return height, weight


def planned_dose(
    regimen: DrugRegimen, height_cm: Decimal | None = None, weight_kg: Decimal | None = None
) -> PlannedDose:
    """The cycle's planned dose; ValidationError (keyed to the fields) on bad measurements."""
    errors: dict[str, list[str]] = {}
    height, weight = _measures(errors, regimen, height_cm, weight_kg)
    if errors:
        raise ValidationError(errors)
    days = Decimal(regimen.days_per_cycle)
    if regimen.dose_basis != DrugRegimen.DoseBasis.PER_M2:
        return PlannedDose(regimen.dose, regimen.dose * days, None, "")
    try:
        result = bsa.dose_per_m2(
            regimen.dose,
            height,
            weight,
            bsa.Formula(regimen.bsa_formula),
            regimen.rounding_mg,
            cap_bsa_m2=regimen.cap_bsa_m2,
        )
    except (TypeError, ValueError) as error:  # the regimen's own settings (checked above: ours)
        raise ValidationError(
            _("The dose cannot be computed from this regimen: %(error)s") % {"error": error}
        ) from error
    return PlannedDose(result.dose_mg, result.dose_mg * days, result.bsa_m2, result.explanation)


# ---------------------------------------------------------------------------
# Recording a cycle
# ---------------------------------------------------------------------------


def _check_patient(patient: Patient, regimen: DrugRegimen) -> None:
    if patient.subject_id is None:
        raise ValidationError(_("The study drug is recorded for enrolled patients only."))
    if regimen.study_id != patient.study_site.study_id:
        raise ValidationError(_("This regimen belongs to another study."))
    if regimen.arm_id is not None and regimen.arm_id != _arm_id(patient):
        raise ValidationError(
            _("%(agent)s is not given in this patient's arm.") % {"agent": regimen.agent.name}
        )


def _check_day(errors: dict, patient: Patient, given_on: date | None) -> None:
    if given_on is None:
        return
    if given_on > timezone.localdate():
        errors.setdefault("given_on", []).append(_("This date is in the future."))
        return
    consents = list(patient.consents.order_by("consented_on"))
    if not consents:
        errors.setdefault(NON_FIELD_ERRORS, []).append(
            _("No consent is recorded for this patient.")
        )
        return
    if given_on < consents[0].consented_on:
        errors.setdefault("given_on", []).append(
            _("This day is before consent (%(date)s): the study drug cannot start before.")
            % {"date": consents[0].consented_on.isoformat()}
        )
    withdrawn = [c.withdrawn_on for c in consents if c.withdrawn_on]
    if withdrawn and given_on >= min(withdrawn):
        errors.setdefault("given_on", []).append(
            _("Consent to study treatment was withdrawn on %(date)s.")
            % {"date": min(withdrawn).isoformat()}
        )


def _check_status(errors: dict, status: str, reason: str, given_on, given) -> None:
    if status not in Status.values:
        errors.setdefault("status", []).append(_("Choose a status."))
        return
    if status != Status.GIVEN and not reason.strip():
        errors.setdefault("reason", []).append(
            _("Give the reason: this cycle was not given as planned (%(status)s).")
            % {"status": Status(status).label}
        )
    if status == Status.OMITTED:
        if given_on is not None:
            errors.setdefault("given_on", []).append(
                _("An omitted cycle was not given: leave the day given empty.")
            )
        if given:
            errors.setdefault("given_total_mg", []).append(
                _("An omitted cycle was not given: its dose given is 0 mg.")
            )
        return
    if given_on is None:
        errors.setdefault("given_on", []).append(_("Give the day the cycle started."))
    if not given:
        errors.setdefault("given_total_mg", []).append(
            _("Give the dose given in this cycle (an omitted cycle has the status “Omitted”).")
        )


def _check_dose(errors: dict, status: str, given, planned: PlannedDose) -> None:
    if not given or "given_total_mg" in errors:
        return
    values = {"given": _plain(given), "planned": _plain(planned.total_mg)}
    if given > planned.total_mg:
        errors.setdefault("given_total_mg", []).append(
            _("%(given)s mg is more than planned (%(planned)s mg this cycle).") % values
        )
    elif status == Status.REDUCED and given == planned.total_mg:
        errors.setdefault("given_total_mg", []).append(
            _("A reduced cycle was given below the planned %(planned)s mg: give the dose given.")
            % values
        )
    elif status == Status.GIVEN and given < planned.total_mg:
        errors.setdefault("status", []).append(
            _(
                "%(given)s mg is less than the planned %(planned)s mg: choose “Dose reduced” or "
                "“Interrupted” and give the reason."
            )
            % values
        )


@transaction.atomic
def cycle_record(
    *,
    patient: Patient,
    by,
    regimen: DrugRegimen,
    number: int,
    data: dict,
    cycle: DrugCycle | None = None,
    reason: str = "",
) -> DrugCycle:
    """Create or correct cycle ``number`` of ``regimen``; ValidationError saves nothing.

    ``data``: given_on, height_cm, weight_kg, given_total_mg, status, reason (of the status).
    ``reason``: the reason for changing a saved cycle (audit trail), required with ``cycle``.
    """
    _check_patient(patient, regimen)
    if cycle is not None and (
        cycle.patient_id != patient.pk or cycle.regimen_id != regimen.pk or cycle.number != number
    ):
        raise ValidationError(_("This cycle belongs to another patient, regimen or number."))
    if cycle is not None and not reason.strip():
        raise ValidationError(
            {"reason_for_change": _("Give a reason for changing saved data (audit trail).")}
        )
    if not 1 <= number <= regimen.max_cycles:
        raise ValidationError(
            _("Cycle %(n)s is beyond the protocol: %(agent)s is given for at most %(max)s cycles.")
            % {"n": number, "agent": regimen.agent.name, "max": regimen.max_cycles}
        )
    if (
        cycle is None
        and DrugCycle.objects.filter(patient=patient, regimen=regimen, number=number).exists()
    ):
        raise ValidationError(
            _("Cycle %(n)s is already recorded: correct it instead.") % {"n": number}
        )
    anchor = calendar_anchor(patient)
    if anchor.day is None:
        raise ValidationError(
            _(
                "No SBRT course is recorded yet: the study drug's calendar counts from the first "
                "SBRT fraction."
            )
        )
    status = data.get("status") or ""
    status_reason = (data.get("reason") or "").strip()
    given_on = data.get("given_on")
    given = data.get("given_total_mg")
    errors: dict[str, list[str]] = {}
    _check_status(errors, status, status_reason, given_on, given)
    _check_day(errors, patient, given_on)
    height, weight = _measures(errors, regimen, data.get("height_cm"), data.get("weight_kg"))
    planned = None
    if not any(field in errors for field in ("height_cm", "weight_kg")):
        planned = planned_dose(regimen, height, weight)
        _check_dose(errors, status, given, planned)
    if errors or planned is None:
        raise ValidationError(errors)
    with reason_for_change(reason or "Study drug cycle", user=by.pk):
        cycle = cycle or DrugCycle(patient=patient, regimen=regimen, number=number)
        cycle.planned_on = planned_day(anchor.day, regimen, number)
        cycle.given_on = given_on
        cycle.height_cm = height
        cycle.weight_kg = weight
        cycle.bsa_m2 = planned.bsa_m2
        cycle.planned_daily_mg = planned.daily_mg
        cycle.planned_total_mg = planned.total_mg
        cycle.given_total_mg = given or Decimal(0)
        cycle.status = status
        cycle.reason = status_reason
        cycle.dose_explanation = planned.explanation[:300]
        cycle.full_clean()  # bsa_m2 stays empty for a flat dose
        cycle.save()
    return cycle
