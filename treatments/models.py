"""What was given: SBRT courses with their prescriptions and fractions, and protocol constraints.

Doses and fractionation are arm-revealing in STOP-2 (8 Gy in 1 fraction versus SABR): pages show
them only to users who may see allocations (studies/blinding.py); blinded users see that
radiotherapy was delivered, and when.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from lesions.models import Lesion
from patients.models import Patient
from studies.audit import audited
from studies.models import Arm, Study
from studies.validation import LoadedRelationsMixin
from treatments.querysets import CourseQuerySet, PatientDataQuerySet


@audited()
class RadiotherapyCourse(LoadedRelationsMixin, models.Model):
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


# ---------------------------------------------------------------------------
# Systemic therapy (treatments/lines.py holds the checks and the endpoints)
# ---------------------------------------------------------------------------


@audited()
class Agent(models.Model):
    """A systemic agent in the controlled list, with its class (sponsor-editable)."""

    class DrugClass(models.TextChoices):
        TKI = "tki", _("Tyrosine kinase inhibitor")
        MTOR = "mtor", _("mTOR inhibitor")
        ANTI_PD1 = "anti_pd1", _("Anti-PD-1")
        ANTI_PDL1 = "anti_pdl1", _("Anti-PD-L1")
        ANTI_CTLA4 = "anti_ctla4", _("Anti-CTLA-4")
        CHEMOTHERAPY = "chemotherapy", _("Chemotherapy")
        RETINOID = "retinoid", _("Retinoid")
        OTHER = "other", _("Other")

    name = models.CharField(_("agent"), max_length=60, unique=True)
    drug_class = models.CharField(_("class"), max_length=15, choices=DrugClass.choices)

    class Meta:
        verbose_name = _("systemic agent")
        verbose_name_plural = _("systemic agents")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


@audited()
class SystemicLine(LoadedRelationsMixin, models.Model):
    """One line of systemic therapy for metastatic disease (agents in LineAgent)."""

    class StopReason(models.TextChoices):
        PROGRESSION = "progression", _("Progression")
        TOXICITY = "toxicity", _("Toxicity")
        PATIENT_CHOICE = "patient_choice", _("Patient choice")
        COMPLETED = "completed", _("Completed as planned")
        OTHER = "other", _("Other")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="systemic_lines")
    line_number = models.PositiveSmallIntegerField(
        _("line number"), validators=[MinValueValidator(1), MaxValueValidator(20)]
    )
    agents = models.ManyToManyField(Agent, through="LineAgent", related_name="lines")
    start = models.DateField(_("start"))
    end = models.DateField(_("end"), null=True, blank=True)
    stop_reason = models.CharField(
        _("reason for stopping"), max_length=15, choices=StopReason.choices, blank=True
    )
    stop_detail = models.CharField(_("details"), max_length=200, blank=True)

    objects = PatientDataQuerySet.as_manager()

    class Meta:
        verbose_name = _("systemic therapy line")
        verbose_name_plural = _("systemic therapy lines")
        ordering = ["patient", "start"]

    def __str__(self) -> str:
        return f"{self.patient} line {self.line_number}"


@audited()
class LineAgent(models.Model):
    line = models.ForeignKey(SystemicLine, on_delete=models.CASCADE, related_name="line_agents")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("agent of a line")
        verbose_name_plural = _("agents of a line")
        constraints = [models.UniqueConstraint(fields=["line", "agent"], name="line_agent_unique")]

    def __str__(self) -> str:
        return f"{self.line}: {self.agent}"


# ---------------------------------------------------------------------------
# Study drug (treatments/bsa.py computes per-m2 doses)
# ---------------------------------------------------------------------------


@audited()
class DrugRegimen(models.Model):
    """A study drug's regimen as protocol data; given in ``arm`` only (or every arm if empty).

    STEREOSARC: atezolizumab 1200 mg IV every 3 weeks, 6 cycles (arm A).  ATRA trial
    (seed 003): "ATRA 150 mg/m^2/day for 3 days every 3 weeks for a maximum of 4 cycles
    (about 3 months), starting on the first day of radiation therapy" (arm SBRT_ATRA).
    """

    class DoseBasis(models.TextChoices):
        FLAT = "flat", _("Flat dose (mg)")
        PER_M2 = "per_m2", _("Per square metre of body surface area (mg/m²)")

    class Route(models.TextChoices):
        ORAL = "oral", _("Oral")
        IV = "iv", _("Intravenous")
        SC = "sc", _("Subcutaneous")

    class BsaFormula(models.TextChoices):
        MOSTELLER = "mosteller", _("Mosteller")
        DUBOIS = "dubois", _("DuBois")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="drug_regimens")
    arm = models.ForeignKey(
        Arm,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="drug_regimens",
        verbose_name=_("arm"),
    )
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, verbose_name=_("agent"))
    dose = models.DecimalField(
        _("dose per administration day"),
        max_digits=7,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    dose_basis = models.CharField(_("dose basis"), max_length=8, choices=DoseBasis.choices)
    route = models.CharField(_("route"), max_length=5, choices=Route.choices)
    days_per_cycle = models.PositiveSmallIntegerField(
        _("administration days per cycle"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(28)],
        help_text=_("Consecutive days from day 1 of each cycle."),
    )
    cycle_length_days = models.PositiveSmallIntegerField(
        _("cycle length (days)"), validators=[MinValueValidator(1), MaxValueValidator(84)]
    )
    max_cycles = models.PositiveSmallIntegerField(
        _("maximum number of cycles"), validators=[MinValueValidator(1), MaxValueValidator(60)]
    )
    start_offset_days = models.SmallIntegerField(
        _("first cycle: days after the first SBRT fraction"),
        default=0,
        validators=[MinValueValidator(-60), MaxValueValidator(180)],
    )
    bsa_formula = models.CharField(
        _("BSA formula"), max_length=10, choices=BsaFormula.choices, default=BsaFormula.MOSTELLER
    )
    rounding_mg = models.DecimalField(
        _("round the dose to (mg)"), max_digits=6, decimal_places=2, default=Decimal(10)
    )
    cap_bsa_m2 = models.DecimalField(
        _("cap the BSA at (m²)"), max_digits=4, decimal_places=2, null=True, blank=True
    )

    class Meta:
        verbose_name = _("study drug regimen")
        verbose_name_plural = _("study drug regimens")
        constraints = [
            models.UniqueConstraint(fields=["study", "agent"], name="one_regimen_per_agent")
        ]

    def __str__(self) -> str:
        unit = "mg/m²" if self.dose_basis == self.DoseBasis.PER_M2 else "mg"
        return (
            f"{self.agent} {self.dose.normalize():f} {unit} d1-{self.days_per_cycle} "
            f"q{self.cycle_length_days}d x{self.max_cycles}"
        )

    def clean(self) -> None:
        if self.arm_id and self.study_id and self.arm.study_id != self.study_id:
            raise ValidationError({"arm": _("This arm belongs to another study.")})
        days, length = self.days_per_cycle, self.cycle_length_days
        if days and length and days > length:
            raise ValidationError(
                {"days_per_cycle": _("More administration days than days in the cycle.")}
            )


@audited()
class DrugCycle(models.Model):
    """One cycle of a study drug for a patient: planned against given."""

    class Status(models.TextChoices):
        GIVEN = "given", _("Given as planned")
        DELAYED = "delayed", _("Delayed")
        REDUCED = "reduced", _("Dose reduced")
        INTERRUPTED = "interrupted", _("Interrupted")
        OMITTED = "omitted", _("Omitted")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="drug_cycles")
    regimen = models.ForeignKey(DrugRegimen, on_delete=models.PROTECT, related_name="cycles")
    number = models.PositiveSmallIntegerField(_("cycle"))
    planned_on = models.DateField(_("planned day 1"))
    given_on = models.DateField(_("day 1 given"), null=True, blank=True)
    height_cm = models.DecimalField(
        _("height (cm)"), max_digits=5, decimal_places=1, null=True, blank=True
    )
    weight_kg = models.DecimalField(
        _("weight (kg)"), max_digits=5, decimal_places=1, null=True, blank=True
    )
    bsa_m2 = models.DecimalField(
        _("BSA (m²)"), max_digits=4, decimal_places=2, null=True, blank=True
    )
    planned_daily_mg = models.DecimalField(
        _("planned dose per day (mg)"), max_digits=8, decimal_places=2
    )
    planned_total_mg = models.DecimalField(
        _("planned dose this cycle (mg)"), max_digits=9, decimal_places=2
    )
    given_total_mg = models.DecimalField(
        _("dose given this cycle (mg)"), max_digits=9, decimal_places=2, default=0
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices)
    reason = models.CharField(_("reason (delay, reduction, omission)"), max_length=200, blank=True)
    dose_explanation = models.CharField(_("dose calculation"), max_length=300, blank=True)

    objects = PatientDataQuerySet.as_manager()

    class Meta:
        verbose_name = _("study drug cycle")
        verbose_name_plural = _("study drug cycles")
        ordering = ["patient", "regimen", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "regimen", "number"], name="drug_cycle_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.patient} {self.regimen.agent} cycle {self.number}"
