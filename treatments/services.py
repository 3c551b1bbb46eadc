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
from django.utils import timezone
from django.utils.translation import gettext as _

from lesions.models import Lesion, Measurement
from patients.models import Patient
from patients.visit_services import visits_sync
from studies.audit import reason_for_change
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


def study_rules(patient: Patient) -> constraints.Rules:
    study = patient.study_site.study
    rules = SbrtConstraint.objects.filter(study=study).first()
    allocation = getattr(patient, "allocation", None)
    fixed = ArmPrescription.objects.filter(arm_id=allocation.arm_id).first() if allocation else None
    return constraints.Rules(
        allowed_fractions=frozenset(rules.fraction_counts) if rules else frozenset(),
        max_overall_days=rules.max_overall_days if rules else None,
        weekdays_only=rules.weekdays_only if rules else False,
        max_cumulated_diameter_mm=rules.max_cumulated_diameter_mm if rules else None,
        min_treated_diameter_mm=rules.min_treated_diameter_mm if rules else None,
        all_progressing_lesions_treated=rules.all_progressing_lesions_treated if rules else False,
        arm_prescription=(fixed.total_dose_gy, fixed.fractions) if fixed else None,
    )


def _max_dose_per_fraction(patient: Patient) -> Decimal:
    rules = SbrtConstraint.objects.filter(study_id=patient.study_site.study_id).first()
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


def course_deviations(
    patient: Patient, prescriptions: list[PrescriptionRow], fractions: list[FractionRow]
) -> list[constraints.Deviation]:
    treated = {row.lesion.pk for row in prescriptions}
    baseline = {
        m.lesion_id: m.diameter_mm
        for m in Measurement.objects.filter(
            assessment__patient=patient, assessment__is_baseline=True
        )
    }
    lesions = [
        constraints.LesionFact(
            label=le.label,
            diameter_mm=baseline.get(le.pk),
            progressing=le.status_at_inclusion == Lesion.InclusionStatus.PROGRESSING,
            treated=le.pk in treated,
        )
        for le in patient.lesions.exclude(category=Lesion.Category.NEW)
    ]
    facts = [
        constraints.PrescriptionFact(row.lesion.label, row.total_dose_gy, row.fractions)
        for row in prescriptions
    ]
    delivered = [row.day for row in fractions if row.status == Fraction.Status.DELIVERED]
    return constraints.check_course(study_rules(patient), lesions, facts, delivered)


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
) -> RadiotherapyCourse:
    """Create or correct a course; raises DeviationsToConfirm until the site confirms."""
    if patient.subject_id is None:
        raise ValidationError(_("Radiotherapy is recorded for enrolled patients only."))
    if course is not None and not reason.strip():
        raise ValidationError({"reason": _("Give a reason for changing saved data (audit trail).")})
    _check_prescriptions(patient, prescriptions)
    _check_fractions(patient, data["planned_start"], fractions)
    deviations = course_deviations(patient, prescriptions, fractions)
    if deviations and not confirmed:
        raise DeviationsToConfirm(deviations)
    with reason_for_change(reason or "SBRT course", user=by.pk):
        course = course or RadiotherapyCourse(patient=patient)
        for field, value in data.items():
            setattr(course, field, value)
        if course.pk is None:
            course.number = patient.courses.count() + 1
        course.full_clean()
        course.save()
        _replace_children(course, prescriptions, fractions)
        course.deviations.exclude(rule__in=[d.rule for d in deviations]).delete()
        for deviation in deviations:
            ProtocolDeviation.objects.update_or_create(
                course=course,
                rule=deviation.rule,
                defaults={
                    "message": deviation.message[:300],
                    "arm_revealing": deviation.arm_revealing,
                },
            )
        visits_sync(patient)
    return course


def _replace_children(course, prescriptions: list[PrescriptionRow], fractions) -> None:
    keep = {row.lesion.pk for row in prescriptions}
    course.prescriptions.exclude(lesion_id__in=keep).delete()
    for row in prescriptions:
        Prescription.objects.update_or_create(
            course=course,
            lesion=row.lesion,
            defaults={
                "total_dose_gy": row.total_dose_gy,
                "fractions": row.fractions,
                "dose_per_fraction_gy": row.dose_per_fraction_gy,
                "isodose_pct": row.isodose_pct,
            },
        )
    course.fraction_log.exclude(number__in=[row.number for row in fractions]).delete()
    for row in fractions:
        Fraction.objects.update_or_create(
            course=course,
            number=row.number,
            defaults={
                "day": row.day,
                "status": row.status,
                "reason": row.reason,
            },
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
