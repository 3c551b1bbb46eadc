"""What was given: SBRT courses with their prescriptions and fractions, and protocol constraints.

Doses and fractionation are arm-revealing in STOP-2 (8 Gy in 1 fraction versus SABR): pages show
them only to users who may see allocations (studies/blinding.py); blinded users see that
radiotherapy was delivered, and when.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from lesions.models import Lesion
from patients.models import Patient
from studies.audit import audited
from studies.models import Arm, Study
from treatments.querysets import CourseQuerySet


@audited()
class RadiotherapyCourse(models.Model):
    class Technique(models.TextChoices):
        CYBERKNIFE = "cyberknife", _("CyberKnife")
        TRUEBEAM = "truebeam", _("TrueBeam")
        OTHER_LINAC = "linac", _("Other linear accelerator")
        TOMOTHERAPY = "tomotherapy", _("TomoTherapy")
        MR_LINAC = "mr_linac", _("MR-linac")
        OTHER = "other", _("Other")

    class Motion(models.TextChoices):
        NONE = "none", _("None")
        COMPRESSION = "compression", _("Abdominal compression")
        BREATH_HOLD = "breath_hold", _("Breath-hold")
        GATING = "gating", _("Gating")
        TRACKING = "tracking", _("Real-time tracking")
        ITV = "itv", _("Internal target volume (4D-CT)")

    class Guidance(models.TextChoices):
        CBCT = "cbct", _("Cone-beam CT at each fraction")
        MV_KV = "planar", _("Planar kV/MV imaging at each fraction")
        MRI = "mri", _("MRI at each fraction")
        FIDUCIALS = "fiducials", _("Fiducial tracking")
        OTHER = "other", _("Other")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="courses")
    number = models.PositiveSmallIntegerField(_("course number"), default=1)
    technique = models.CharField(_("technique / machine"), max_length=15, choices=Technique.choices)
    motion_management = models.CharField(
        _("motion management"), max_length=15, choices=Motion.choices, default=Motion.NONE
    )
    image_guidance = models.CharField(
        _("image guidance"), max_length=15, choices=Guidance.choices, default=Guidance.CBCT
    )
    planned_start = models.DateField(_("planned start"))
    planned_end = models.DateField(_("planned end"), null=True, blank=True)

    objects = CourseQuerySet.as_manager()

    class Meta:
        verbose_name = _("SBRT course")
        verbose_name_plural = _("SBRT courses")
        ordering = ["patient", "number"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "number"], name="course_number_unique")
        ]

    def __str__(self) -> str:
        return f"{self.patient} SBRT course {self.number}"

    def clean(self) -> None:
        if self.planned_end and self.planned_start and self.planned_end < self.planned_start:
            raise ValidationError({"planned_end": _("The end cannot be before the start.")})


@audited()
class Prescription(models.Model):
    """One treated lesion's prescription within a course."""

    course = models.ForeignKey(
        RadiotherapyCourse, on_delete=models.CASCADE, related_name="prescriptions"
    )
    lesion = models.ForeignKey(Lesion, on_delete=models.PROTECT, related_name="prescriptions")
    total_dose_gy = models.DecimalField(
        _("total dose (Gy)"), max_digits=5, decimal_places=2, validators=[MinValueValidator(0.01)]
    )
    fractions = models.PositiveSmallIntegerField(
        _("number of fractions"), validators=[MinValueValidator(1)]
    )
    dose_per_fraction_gy = models.DecimalField(
        _("dose per fraction (Gy)"), max_digits=5, decimal_places=2
    )
    isodose_pct = models.PositiveSmallIntegerField(
        _("prescription isodose (%)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(30), MaxValueValidator(100)],
    )

    class Meta:
        verbose_name = _("prescription")
        verbose_name_plural = _("prescriptions")
        constraints = [
            models.UniqueConstraint(fields=["course", "lesion"], name="one_prescription_per_lesion")
        ]

    def __str__(self) -> str:
        return f"{self.lesion.label}: {self.total_dose_gy} Gy / {self.fractions}"


@audited()
class Fraction(models.Model):
    class Status(models.TextChoices):
        DELIVERED = "delivered", _("Delivered")
        MISSED = "missed", _("Missed")
        INTERRUPTED = "interrupted", _("Interrupted")

    course = models.ForeignKey(
        RadiotherapyCourse, on_delete=models.CASCADE, related_name="fraction_log"
    )
    number = models.PositiveSmallIntegerField(_("fraction"))
    day = models.DateField(_("date"))
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.DELIVERED
    )
    reason = models.CharField(_("reason (missed or interrupted)"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("fraction")
        verbose_name_plural = _("fractions")
        ordering = ["course", "number"]
        constraints = [
            models.UniqueConstraint(fields=["course", "number"], name="fraction_number_unique")
        ]

    def __str__(self) -> str:
        return f"{self.course} fraction {self.number}"


@audited()
class SbrtConstraint(models.Model):
    """A study's radiotherapy rules, checked on every course; breaches become deviations."""

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="sbrt_rules")
    allowed_fractions = models.CharField(
        _("allowed numbers of fractions"),
        max_length=40,
        blank=True,
        help_text=_("Comma-separated, e.g. 3,5 (empty: any)."),
    )
    max_overall_days = models.PositiveSmallIntegerField(
        _("maximum overall treatment time (days)"), null=True, blank=True
    )
    weekdays_only = models.BooleanField(_("fractions on weekdays only"), default=False)
    max_cumulated_diameter_mm = models.DecimalField(
        _("maximum cumulated diameter of treated lesions (mm)"),
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
    )
    min_treated_diameter_mm = models.DecimalField(
        _("every lesion above this diameter must be treated (mm)"),
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
    )
    all_progressing_lesions_treated = models.BooleanField(
        _("every progressing lesion must be treated"), default=False
    )
    max_dose_per_fraction_gy = models.DecimalField(
        _("maximum dose per fraction (Gy)"), max_digits=5, decimal_places=2, default=30
    )

    class Meta:
        verbose_name = _("SBRT protocol rules")
        verbose_name_plural = _("SBRT protocol rules")

    def __str__(self) -> str:
        return f"{self.study.code} SBRT rules"

    @property
    def fraction_counts(self) -> set[int]:
        return {int(p) for p in self.allowed_fractions.split(",") if p.strip().isdigit()}


@audited()
class ArmPrescription(models.Model):
    """A prescription fixed by the arm (STOP-2 control: 8 Gy in 1 fraction)."""

    arm = models.OneToOneField(Arm, on_delete=models.CASCADE, related_name="fixed_prescription")
    total_dose_gy = models.DecimalField(_("total dose (Gy)"), max_digits=5, decimal_places=2)
    fractions = models.PositiveSmallIntegerField(_("number of fractions"))

    class Meta:
        verbose_name = _("arm prescription")
        verbose_name_plural = _("arm prescriptions")

    def __str__(self) -> str:
        return f"{self.arm}: {self.total_dose_gy} Gy / {self.fractions}"


@audited()
class ProtocolDeviation(models.Model):
    """A breach of a protocol rule, recorded (not blocked) for the monitor to review."""

    course = models.ForeignKey(
        RadiotherapyCourse, on_delete=models.CASCADE, related_name="deviations"
    )
    rule = models.CharField(_("rule"), max_length=40)
    message = models.CharField(_("deviation"), max_length=300)
    arm_revealing = models.BooleanField(default=False)
    confirmed_by_site = models.BooleanField(_("confirmed by the site"), default=True)
    detected_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("protocol deviation")
        verbose_name_plural = _("protocol deviations")
        constraints = [
            models.UniqueConstraint(fields=["course", "rule"], name="one_deviation_per_rule")
        ]

    def __str__(self) -> str:
        return f"{self.course}: {self.message}"
