"""Recording SBRT courses: hard input errors refused, protocol breaches confirmed and recorded.

A course is written in one transaction with its prescriptions and fraction log. Bad input (a
prescription for another patient's lesion, a dose per fraction that does not match total /
fractions or exceeds the study's maximum, a fraction before the course start, in the future, or
on a weekend where the study forbids it) is refused with a message and nothing is saved.
Protocol breaches (treatments/constraints.py) are returned for the site to confirm, then stored
as ProtocolDeviation rows for the monitor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from lesions.models import Lesion, Measurement
from patients.models import Allocation, Patient
from patients.visit_services import visits_sync
from studies.audit import reason_for_change
from studies.compiled import CompiledQuery
from studies.jsonrows import from_json_rows, json_rows
from treatments import constraints, radiobiology
from treatments.models import (
    ArmPrescription,
    Fraction,
    Prescription,
    ProtocolDeviation,
    RadiotherapyCourse,
    SbrtConstraint,
)


@dataclass(frozen=True)
class PrescriptionRow:
    lesion: Lesion
    total_dose_gy: Decimal
    fractions: int
    dose_per_fraction_gy: Decimal
    isodose_pct: int | None = None


@dataclass(frozen=True)
class FractionRow:
    number: int
    day: date
    status: str = Fraction.Status.DELIVERED
    reason: str = ""


class DeviationsToConfirm(Exception):  # noqa: N818 - a question to the user, not a failure
    """The course breaks protocol rules: the site must confirm before it is saved."""

    def __init__(self, deviations: list[constraints.Deviation]) -> None:
        super().__init__("; ".join(d.message for d in deviations))
        self.deviations = deviations


_RULES_ATTR = "_oligocrf_sbrt_rules"


def _fixed_prescription(patient: Patient) -> QuerySet[ArmPrescription] | None:
    """The arm's fixed prescription of the patient, a queryset to read or to use in a subquery
    (None: the patient is known to have no allocation)."""
    if Patient._meta.get_field("allocation").is_cached(patient):
        allocation = patient.allocation
        if allocation is None:
            return None
        return ArmPrescription.objects.filter(arm_id=allocation.arm_id)
    arm = Allocation.objects.filter(patient_id=patient.pk).values("arm_id")
    return ArmPrescription.objects.filter(arm_id__in=Subquery(arm))


def _constraint_row(patient: Patient) -> SbrtConstraint | None:
    """The study's SBRT constraints with the arm's fixed prescription (``fixed_total_gy``,
    ``fixed_fractions``), read once per patient object (a request's checks share it): one
    query, a second only for a study without constraints whose patient has a fixed arm dose."""
    if not hasattr(patient, _RULES_ATTR + "_row"):
        fixed = _fixed_prescription(patient)
        rows = SbrtConstraint.objects.filter(study_id=patient.study_site.study_id)
        if fixed is not None:
            rows = rows.annotate(
                fixed_total_gy=Subquery(fixed.values("total_dose_gy")[:1]),
                fixed_fractions=Subquery(fixed.values("fractions")[:1]),
            )
        row = rows.first()
        setattr(patient, _RULES_ATTR + "_row", row)
        if row is None and fixed is not None:
            setattr(patient, _RULES_ATTR + "_fixed", fixed.first())
    return getattr(patient, _RULES_ATTR + "_row")


def _arm_prescription(patient: Patient) -> tuple[Decimal, int] | None:
    """(total dose, fractions) fixed by the patient's arm, or None."""
    row = _constraint_row(patient)
    if row is not None:
        total = getattr(row, "fixed_total_gy", None)
        return (total, row.fixed_fractions) if total is not None else None
    fixed = getattr(patient, _RULES_ATTR + "_fixed", None)
    return (fixed.total_dose_gy, fixed.fractions) if fixed else None


def study_rules(patient: Patient) -> constraints.Rules:
    """The engine's rules for the patient: the study's constraints and the arm's fixed dose
    (read once per patient object)."""
    cached = getattr(patient, _RULES_ATTR, None)
    if cached is not None:
        return cached
    rules = _constraint_row(patient)
    result = constraints.Rules(
        allowed_fractions=frozenset(rules.fraction_counts) if rules else frozenset(),
        max_overall_days=rules.max_overall_days if rules else None,
        weekdays_only=rules.weekdays_only if rules else False,
        max_cumulated_diameter_mm=rules.max_cumulated_diameter_mm if rules else None,
        min_treated_diameter_mm=rules.min_treated_diameter_mm if rules else None,
        all_progressing_lesions_treated=rules.all_progressing_lesions_treated if rules else False,
        arm_prescription=_arm_prescription(patient),
    )
    setattr(patient, _RULES_ATTR, result)
    return result


def _max_dose_per_fraction(patient: Patient) -> Decimal:
    rules = _constraint_row(patient)
    return rules.max_dose_per_fraction_gy if rules else Decimal(30)


def _check_prescriptions(patient: Patient, rows: list[PrescriptionRow]) -> None:
    if not rows:
        raise ValidationError(_("Prescribe at least one lesion."))
    limit = _max_dose_per_fraction(patient)
    for row in rows:
        if row.lesion.patient_id != patient.pk:
            raise ValidationError(_("A prescription names a lesion of another patient."))
        try:
            radiobiology.check_dose_per_fraction(
                row.total_dose_gy,
                row.fractions,
                row.dose_per_fraction_gy,
                max_dose_per_fraction_gy=limit,
            )
        except (TypeError, ValueError) as error:
            raise ValidationError(f"{row.lesion.label}: {error}") from error
    labels = [row.lesion.pk for row in rows]
    if len(set(labels)) != len(labels):
        raise ValidationError(_("A lesion is prescribed twice in this course."))


def _check_fractions(patient: Patient, start: date, rows: list[FractionRow]) -> None:
    today = timezone.localdate()
    numbers = [row.number for row in rows]
    if len(set(numbers)) != len(numbers):
        raise ValidationError(_("Two fractions have the same number."))
    for row in rows:
        if row.day < start:
            raise ValidationError(
                _("Fraction %(n)s is dated before the course start.") % {"n": row.number}
            )
        if row.day > today:
            raise ValidationError(_("Fraction %(n)s is dated in the future.") % {"n": row.number})
        if row.status != Fraction.Status.DELIVERED and not row.reason.strip():
            raise ValidationError(
                _("Fraction %(n)s: say why it was missed or interrupted.") % {"n": row.number}
            )
    if study_rules(patient).weekdays_only:
        weekend = constraints.weekend_days([row.day for row in rows])
        if weekend:
            raise ValidationError(
                _("This study delivers fractions on weekdays only (%(days)s is a weekend day).")
                % {"days": weekend[0].isoformat()}
            )


def baseline_diameter() -> Subquery:
    """A lesion's diameter at the baseline scan (annotation ``baseline_mm``)."""
    baseline = Measurement.objects.filter(lesion=OuterRef("pk"), assessment__is_baseline=True)
    return Subquery(baseline.values("diameter_mm")[:1])


def course_lesions(patient: Patient):
    """The lesions a course may treat (all but new ones), with their baseline diameter."""
    return patient.lesions.exclude(category=Lesion.Category.NEW).annotate(
        baseline_mm=baseline_diameter()
    )


def course_deviations(
    patient: Patient,
    prescriptions: list[PrescriptionRow],
    fractions: list[FractionRow],
    lesions: list[Lesion] | None = None,
) -> list[constraints.Deviation]:
    """The protocol breaches of a course. ``lesions``: :func:`course_lesions`, if the caller
    has read them (else read here)."""
    treated = {row.lesion.pk for row in prescriptions}
    facts_of_lesions = [
        constraints.LesionFact(
            label=le.label,
            diameter_mm=le.baseline_mm,
            progressing=le.status_at_inclusion == Lesion.InclusionStatus.PROGRESSING,
            treated=le.pk in treated,
        )
        for le in (course_lesions(patient) if lesions is None else lesions)
    ]
    facts = [
        constraints.PrescriptionFact(row.lesion.label, row.total_dose_gy, row.fractions)
        for row in prescriptions
    ]
    delivered = [row.day for row in fractions if row.status == Fraction.Status.DELIVERED]
    return constraints.check_course(study_rules(patient), facts_of_lesions, facts, delivered)


@transaction.atomic
def course_record(
    *,
    patient: Patient,
    by,
    data: dict,
    prescriptions: list[PrescriptionRow],
    fractions: list[FractionRow],
    course: RadiotherapyCourse | None = None,
    reason: str = "",
    confirmed: bool = False,
    lesions: list[Lesion] | None = None,
) -> RadiotherapyCourse:
    """Create or correct a course; raises DeviationsToConfirm until the site confirms.

    ``lesions``: the patient's :func:`course_lesions`, if the page has just read them."""
    if patient.subject_id is None:
        raise ValidationError(_("Radiotherapy is recorded for enrolled patients only."))
    if course is not None and not reason.strip():
        raise ValidationError({"reason": _("Give a reason for changing saved data (audit trail).")})
    _check_prescriptions(patient, prescriptions)
    _check_fractions(patient, data["planned_start"], fractions)
    deviations = course_deviations(patient, prescriptions, fractions, lesions)
    if deviations and not confirmed:
        raise DeviationsToConfirm(deviations)
    with reason_for_change(reason or "SBRT course", user=by.pk):
        new = course is None
        course = course or RadiotherapyCourse(patient=patient)
        course.patient = patient  # read by the caller: no query to re-check it
        for field, value in data.items():
            setattr(course, field, value)
        if course.pk is None:
            course.number = patient.courses.count() + 1
        # A correction keeps the course's patient and number: its unique constraint holds.
        course.full_clean(validate_constraints=new)
        course.save()
        # Read after the course row is written (and so locked): a concurrent correction of the
        # same course waits for this one to commit, then reads its rows.
        children = _NO_CHILDREN if new else _children(course.pk)
        _sync_rows(
            ProtocolDeviation,
            course,
            "rule",
            {
                d.rule: {"message": d.message[:300], "arm_revealing": d.arm_revealing}
                for d in deviations
            },
            children[ProtocolDeviation],
        )
        _replace_children(course, prescriptions, fractions, children)
        visits_sync(patient)
    return course


_CHILDREN = {ProtocolDeviation: "dev_rows", Prescription: "rx_rows", Fraction: "fx_rows"}
_NO_CHILDREN = dict.fromkeys(_CHILDREN, [])
# A course's deviations, prescriptions and fraction log in one query, compiled once per process.
_COURSE_CHILDREN = CompiledQuery(
    lambda pk: (
        RadiotherapyCourse.objects.filter(pk=pk)
        .only("pk")
        .annotate(
            **{
                attr: json_rows(model.objects.filter(course=OuterRef("pk")).order_by("pk"))
                for model, attr in _CHILDREN.items()
            }
        )
        .order_by()
    )
)


def _children(course_pk: int) -> dict[type, list]:
    """The saved rows of a course, per model, as model instances."""
    row = _COURSE_CHILDREN.first(course_pk)
    return {model: from_json_rows(model, getattr(row, attr)) for model, attr in _CHILDREN.items()}


def _sync_rows(model, course, key: str, wanted: dict, saved: list) -> None:
    """Make the course's ``model`` rows those of ``wanted`` ({key value: field values}), the
    ``saved`` ones read before: delete the others, update the changed ones, create the missing
    ones, in at most three statements for any number of rows. Unchanged rows are not written
    (no audit row for them)."""
    existing = {getattr(r, key): r for r in saved}
    gone = [row.pk for k, row in existing.items() if k not in wanted]
    if gone:
        model.objects.filter(pk__in=gone).delete()
    created, changed, fields = [], [], set()
    for k, values in wanted.items():
        row = existing.get(k)
        if row is None:
            created.append(model(course=course, **{key: k}, **values))
            continue
        differs = [name for name, value in values.items() if getattr(row, name) != value]
        if differs:
            for name in differs:
                setattr(row, name, values[name])
            changed.append(row)
            fields.update(differs)
    if changed:
        model.objects.bulk_update(changed, sorted(fields))
    if created:
        model.objects.bulk_create(created)


def _replace_children(course, prescriptions: list[PrescriptionRow], fractions, children):
    _sync_rows(
        Prescription,
        course,
        "lesion_id",
        {
            row.lesion.pk: {
                "total_dose_gy": row.total_dose_gy,
                "fractions": row.fractions,
                "dose_per_fraction_gy": row.dose_per_fraction_gy,
                "isodose_pct": row.isodose_pct,
            }
            for row in prescriptions
        },
        children[Prescription],
    )
    _sync_rows(
        Fraction,
        course,
        "number",
        {
            row.number: {"day": row.day, "status": row.status, "reason": row.reason}
            for row in fractions
        },
        children[Fraction],
    )


@dataclass(frozen=True)
class PrescriptionSummary:
    lesion: str
    total_dose_gy: Decimal
    fractions: int
    dose_per_fraction_gy: Decimal
    delivered_gy: Decimal
    bed10: Decimal
    eqd2_10: Decimal
    bed3: Decimal
    eqd2_3: Decimal


def summaries(course: RadiotherapyCourse, prescriptions, delivered: int):
    """Per prescription: delivered dose and BED/EQD2 at alpha/beta 10 and 3 (LQ model)."""
    rows = []
    for p in prescriptions:
        lq = radiobiology.Prescription(p.total_dose_gy, p.fractions)
        rows.append(
            PrescriptionSummary(
                lesion=p.lesion.label,
                total_dose_gy=p.total_dose_gy,
                fractions=p.fractions,
                dose_per_fraction_gy=p.dose_per_fraction_gy,
                delivered_gy=p.dose_per_fraction_gy * min(delivered, p.fractions),
                bed10=radiobiology.bed(lq, 10),
                eqd2_10=radiobiology.eqd2(lq, 10),
                bed3=radiobiology.bed(lq, 3),
                eqd2_3=radiobiology.eqd2(lq, 3),
            )
        )
    return rows
