"""Tumour burden and response: lesions, imaging assessments, measurements and computed results.

The results (TimepointResult, PatientResponse) are computed by the pure engine (lesions/recist.py)
in lesions/services.py, in the same transaction as any change of a measurement or assessment,
and stored for fast listing. They are never edited by hand.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from lesions.querysets import LesionScopedQuerySet
from patients.models import Patient
from studies.audit import audited
from studies.validation import LoadedRelationsMixin


class Organ(models.TextChoices):
    LUNG = "lung", _("Lung")
    LIVER = "liver", _("Liver")
    LYMPH_NODE = "lymph node", _("Lymph node")
    BONE = "bone", _("Bone")
    ADRENAL = "adrenal", _("Adrenal gland")
    BRAIN = "brain", _("Brain")
    KIDNEY = "kidney", _("Kidney")
    PANCREAS = "pancreas", _("Pancreas")
    PLEURA = "pleura", _("Pleura")
    PERITONEUM = "peritoneum", _("Peritoneum")
    SOFT_TISSUE = "soft tissue", _("Soft tissue")
    SKIN = "skin", _("Skin")
    SPLEEN = "spleen", _("Spleen")
    THYROID = "thyroid", _("Thyroid")
    OTHER = "other", _("Other")


class Response(models.TextChoices):
    CR = "CR", _("Complete response")
    PR = "PR", _("Partial response")
    SD = "SD", _("Stable disease")
    NON_CR_NON_PD = "NON_CR_NON_PD", _("Non-CR/non-PD")
    PD = "PD", _("Progressive disease")
    NE = "NE", _("Not evaluable")


@audited()
class Lesion(LoadedRelationsMixin, models.Model):
    class Category(models.TextChoices):
        TARGET = "target", _("Target")
        NON_TARGET = "non_target", _("Non-target")
        NEW = "new", _("New")

    class InclusionStatus(models.TextChoices):
        PROGRESSING = "progressing", _("Progressing")
        STABLE = "stable", _("Stable")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="lesions")
    label = models.CharField(_("label"), max_length=10, help_text=_("e.g. T1, NT1, N1"))
    organ = models.CharField(_("organ"), max_length=20, choices=Organ.choices)
    location = models.CharField(_("location detail"), max_length=120, blank=True)
    is_node = models.BooleanField(_("lymph node"), default=False)
    category = models.CharField(_("category"), max_length=12, choices=Category.choices)
    status_at_inclusion = models.CharField(
        _("status at inclusion"), max_length=12, choices=InclusionStatus.choices, blank=True
    )
    planned_for_sbrt = models.BooleanField(_("planned for SBRT"), default=False)
    new_is_target = models.BooleanField(
        _("measurable new lesion (new-lesion target)"),
        default=True,
        help_text=_("iRECIST: new lesions are followed as new-lesion targets or non-targets."),
    )

    objects = LesionScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("lesion")
        verbose_name_plural = _("lesions")
        ordering = ["patient", "category", "label"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "label"], name="lesion_label_unique")
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_organ_display()})"


@audited()
class ImagingAssessment(LoadedRelationsMixin, models.Model):
    class Modality(models.TextChoices):
        CT = "CT", _("CT")
        MRI = "MRI", _("MRI")
        PET_CT = "PET-CT", _("PET-CT")

    class NonTarget(models.TextChoices):
        CR = "CR", _("Complete response (all disappeared, nodes < 10 mm)")
        NON_CR_NON_PD = "NON_CR_NON_PD", _("Non-CR/non-PD")
        PD = "PD", _("Unequivocal progression")
        NE = "NE", _("Not evaluable")

    class NewLesions(models.TextChoices):
        NO = "NO", _("No")
        EQUIVOCAL = "EQUIVOCAL", _("Equivocal")
        YES = "YES", _("Yes (unequivocal)")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="assessments")
    scan_date = models.DateField(_("scan date"))
    modality = models.CharField(_("modality"), max_length=8, choices=Modality.choices)
    is_baseline = models.BooleanField(_("baseline"), default=False)
    non_target_status = models.CharField(
        _("non-target lesions"), max_length=15, choices=NonTarget.choices, blank=True
    )
    new_lesions = models.CharField(
        _("new lesions"), max_length=10, choices=NewLesions.choices, default=NewLesions.NO
    )
    non_target_increase = models.BooleanField(
        _("non-target lesions increased since unconfirmed progression (iRECIST)"), default=False
    )

    objects = LesionScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("imaging assessment")
        verbose_name_plural = _("imaging assessments")
        ordering = ["patient", "scan_date"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "scan_date"], name="one_scan_per_day"),
            models.UniqueConstraint(
                fields=["patient"],
                condition=models.Q(is_baseline=True),
                name="one_baseline_per_patient",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} {self.scan_date:%Y-%m-%d}"


@audited()
class Measurement(LoadedRelationsMixin, models.Model):
    class State(models.TextChoices):
        PRESENT = "present", _("Measured")
        DISAPPEARED = "disappeared", _("Disappeared")
        TOO_SMALL = "too_small", _("Too small to measure (counts 5 mm)")
        NOT_EVALUABLE = "not_evaluable", _("Not evaluable")
        SPLIT = "split", _("Split (fragments added)")
        COALESCED = "coalesced", _("Coalesced into another lesion")

    assessment = models.ForeignKey(
        ImagingAssessment, on_delete=models.CASCADE, related_name="measurements"
    )
    lesion = models.ForeignKey(Lesion, on_delete=models.PROTECT, related_name="measurements")
    state = models.CharField(
        _("state"), max_length=15, choices=State.choices, default=State.PRESENT
    )
    diameter_mm = models.DecimalField(
        _("diameter (mm)"),
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(500)],
        help_text=_("Longest diameter; short axis for lymph nodes."),
    )
    fragments_mm = models.CharField(
        _("fragments (mm)"),
        max_length=60,
        blank=True,
        help_text=_("Split lesion: the fragments' diameters, comma-separated."),
    )
    coalesced_into = models.ForeignKey(
        Lesion,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("coalesced into"),
    )
    status = models.CharField(
        _("status (new non-target lesion)"),
        max_length=15,
        blank=True,
        choices=ImagingAssessment.NonTarget.choices,
    )

    class Meta:
        verbose_name = _("measurement")
        verbose_name_plural = _("measurements")
        constraints = [
            models.UniqueConstraint(
                fields=["assessment", "lesion"], name="one_measurement_per_lesion_and_scan"
            )
        ]

    def __str__(self) -> str:
        return f"{self.lesion.label}: {self.diameter_mm or self.get_state_display()}"


class TimepointResult(models.Model):
    """What the engine computed for one scan. Rewritten on every recomputation."""

    assessment = models.OneToOneField(
        ImagingAssessment, on_delete=models.CASCADE, related_name="result"
    )
    sum_mm = models.DecimalField(max_digits=7, decimal_places=1, null=True)
    nadir_mm = models.DecimalField(max_digits=7, decimal_places=1, null=True)
    change_from_baseline_pct = models.DecimalField(max_digits=7, decimal_places=1, null=True)
    change_from_nadir_pct = models.DecimalField(max_digits=7, decimal_places=1, null=True)
    target = models.CharField(max_length=15, blank=True)
    non_target = models.CharField(max_length=15, blank=True)
    new_lesions = models.CharField(max_length=10, blank=True)
    overall = models.CharField(max_length=15, blank=True)
    irecist_overall = models.CharField(max_length=20, blank=True)

    def __str__(self) -> str:
        return f"{self.assessment}: {self.overall}"


class PatientResponse(models.Model):
    """Per-patient outcome of the engine: best overall response and progression."""

    patient = models.OneToOneField(Patient, on_delete=models.CASCADE, related_name="response")
    baseline_sum_mm = models.DecimalField(max_digits=7, decimal_places=1, null=True)
    best_overall_response = models.CharField(max_length=15, blank=True)
    best_response_on = models.DateField(null=True)
    best_change_pct = models.DecimalField(max_digits=7, decimal_places=1, null=True)
    progression_on = models.DateField(null=True)
    irecist_best_response = models.CharField(max_length=20, blank=True)
    first_iupd_on = models.DateField(null=True)
    icpd_on = models.DateField(null=True)
    # Local control of irradiated lesions (per-lesion progression, lesions/recist.py).
    in_field_progression_on = models.DateField(null=True)
    out_of_field_progression_on = models.DateField(null=True)
    local_control = models.JSONField(default=list)
    local_control_note = models.CharField(max_length=300, blank=True)
    baseline_issues = models.JSONField(default=list)
    computed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.patient}: {self.best_overall_response}"
