"""The participant's journey at a site. Pseudonymised: no names, no full birth dates, no national
identifiers; year of birth or age at consent, sex, and a local reference only if the sponsor
enables it."""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from patients.querysets import PatientQuerySet
from studies.audit import audited
from studies.models import AllocationSlot, Arm, EligibilityCriterion, StudySite


@audited()
class Patient(models.Model):
    class Status(models.TextChoices):
        SCREENING = "screening", _("Screening")
        SCREEN_FAILURE = "screen_failure", _("Screen failure")
        ENROLLED = "enrolled", _("Enrolled")
        ON_TREATMENT = "on_treatment", _("On treatment")
        FOLLOW_UP = "follow_up", _("Follow-up")
        OFF_STUDY = "off_study", _("Off study")

    class Sex(models.TextChoices):
        FEMALE = "F", _("Female")
        MALE = "M", _("Male")
        UNKNOWN = "U", _("Unknown / not stated")

    class ScreeningOutcome(models.TextChoices):
        PENDING = "pending", _("Pending")
        ELIGIBLE = "eligible", _("Eligible")
        SCREEN_FAILURE = "screen_failure", _("Screen failure")
        DECLINED = "declined", _("Declined")

    class OffStudyReason(models.TextChoices):
        COMPLETED = "completed", _("Completed")
        CONSENT_WITHDRAWN = "consent_withdrawn", _("Consent withdrawn")
        LOST_TO_FOLLOW_UP = "lost_to_follow_up", _("Lost to follow-up")
        DEATH = "death", _("Death")
        INVESTIGATOR_DECISION = "investigator_decision", _("Investigator decision")
        SPONSOR_DECISION = "sponsor_decision", _("Sponsor decision")

    study_site = models.ForeignKey(
        StudySite, on_delete=models.PROTECT, related_name="patients", verbose_name=_("site")
    )
    screening_number = models.CharField(_("screening number"), max_length=20, blank=True)
    screened_on = models.DateField(_("screening date"), null=True, blank=True)
    screening_outcome = models.CharField(
        _("screening outcome"),
        max_length=20,
        choices=ScreeningOutcome.choices,
        default=ScreeningOutcome.PENDING,
    )
    declined_reason = models.CharField(_("reason for declining"), max_length=200, blank=True)
    subject_id = models.CharField(
        _("subject identifier"), max_length=40, unique=True, null=True, blank=True
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.SCREENING
    )
    status_changed_on = models.DateField(_("status date"), null=True, blank=True)
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices, blank=True)
    year_of_birth = models.PositiveSmallIntegerField(
        _("year of birth"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1900), MaxValueValidator(2100)],
    )
    age_at_consent = models.PositiveSmallIntegerField(
        _("age at consent (years)"), null=True, blank=True, validators=[MaxValueValidator(120)]
    )
    local_reference = models.CharField(_("site's own reference"), max_length=40, blank=True)
    enrolled_on = models.DateField(_("enrolment date"), null=True, blank=True)
    off_study_reason = models.CharField(
        _("reason for going off study"), max_length=30, choices=OffStudyReason.choices, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PatientQuerySet.as_manager()

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        ordering = ["study_site", "screening_number", "subject_id"]
        indexes = [models.Index(fields=["study_site", "status"])]
        constraints = [
            models.UniqueConstraint(
                fields=["study_site", "screening_number"],
                condition=~models.Q(screening_number=""),
                name="screening_number_unique_per_site",
                violation_error_message=_("This screening number is already used at this site."),
            )
        ]

    def __str__(self) -> str:
        return self.subject_id or _("Screening %(number)s") % {"number": self.screening_number}


@audited()
class EligibilityFacts(models.Model):
    """Data entered at screening from which eligibility rules are computed."""

    patient = models.OneToOneField(Patient, on_delete=models.CASCADE, related_name="facts")
    ecog = models.PositiveSmallIntegerField(
        _("performance status (WHO/ECOG)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(4)],
    )
    current_line = models.PositiveSmallIntegerField(
        _("systemic line ongoing at oligoprogression"),
        null=True,
        blank=True,
        help_text=_("1 for first line; empty if none."),
    )
    prior_lines = models.PositiveSmallIntegerField(
        _("lines of systemic therapy received"), null=True, blank=True
    )
    liver_metastases = models.BooleanField(_("liver metastases"), null=True, blank=True)
    restaging_on = models.DateField(_("restaging imaging date"), null=True, blank=True)
    planned_treatment_start = models.DateField(
        _("planned start of radiotherapy"), null=True, blank=True
    )
    childbearing_potential = models.BooleanField(
        _("of childbearing potential"), null=True, blank=True
    )
    pregnancy_test_on = models.DateField(_("pregnancy test date"), null=True, blank=True)
    pregnancy_test_negative = models.BooleanField(
        _("pregnancy test negative"), null=True, blank=True
    )

    class Meta:
        verbose_name = _("eligibility data")
        verbose_name_plural = _("eligibility data")

    def __str__(self) -> str:
        return f"{self.patient}: eligibility data"


@audited()
class ScreeningLesion(models.Model):
    """A metastasis as known at screening (the lesion CRFs come with the lesions module)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="screening_lesions")
    organ = models.CharField(_("organ"), max_length=40)
    diameter_mm = models.DecimalField(
        _("largest diameter (mm)"),
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(500)],
    )
    progressing = models.BooleanField(_("progressing"), default=True)
    long_bone = models.BooleanField(_("in a long bone"), default=False)

    class Meta:
        verbose_name = _("lesion at screening")
        verbose_name_plural = _("lesions at screening")
        ordering = ["patient", "pk"]

    def __str__(self) -> str:
        return f"{self.organ} {self.diameter_mm or ''} mm"


@audited()
class ScreeningLab(models.Model):
    class Analyte(models.TextChoices):
        ANC = "anc", _("Absolute neutrophil count")
        PLATELETS = "platelets", _("Platelets")
        HAEMOGLOBIN = "haemoglobin", _("Haemoglobin")
        CREATININE = "creatinine", _("Creatinine")
        CREATININE_CLEARANCE = "creatinine_clearance", _("Creatinine clearance")
        BILIRUBIN = "bilirubin", _("Total bilirubin")
        DIRECT_BILIRUBIN = "direct_bilirubin", _("Direct bilirubin")
        AST = "ast", _("AST")
        ALT = "alt", _("ALT")

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="screening_labs")
    analyte = models.CharField(_("analyte"), max_length=30, choices=Analyte.choices)
    value = models.DecimalField(
        _("value"), max_digits=10, decimal_places=3, validators=[MinValueValidator(0)]
    )
    unit = models.CharField(_("unit"), max_length=20)
    uln = models.DecimalField(
        _("upper limit of normal"), max_digits=10, decimal_places=3, null=True, blank=True
    )
    sampled_on = models.DateField(_("sample date"))

    class Meta:
        verbose_name = _("screening laboratory result")
        verbose_name_plural = _("screening laboratory results")
        constraints = [
            models.UniqueConstraint(fields=["patient", "analyte"], name="one_screening_lab_each")
        ]

    def __str__(self) -> str:
        return f"{self.get_analyte_display()} {self.value} {self.unit}"


@audited()
class EligibilityAnswer(models.Model):
    """The investigator's answer to one criterion, beside what the app computed."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="eligibility")
    criterion = models.ForeignKey(EligibilityCriterion, on_delete=models.PROTECT, related_name="+")
    satisfied = models.BooleanField(
        _("criterion satisfied"),
        help_text=_("Inclusion: the patient meets it. Exclusion: the patient is free of it."),
    )
    computed_outcome = models.CharField(_("computed"), max_length=10, blank=True)
    computed_detail = models.CharField(_("computed detail"), max_length=300, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    answered_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("eligibility answer")
        verbose_name_plural = _("eligibility answers")
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "criterion"], name="one_answer_per_criterion"
            )
        ]

    def __str__(self) -> str:
        return f"{self.patient} {self.criterion_id}: {self.satisfied}"


@audited()
class Consent(models.Model):
    class WithdrawalScope(models.TextChoices):
        TREATMENT = "treatment", _("Study treatment only (follow-up continues)")
        ALL = "all", _("All study procedures and follow-up")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consents")
    consented_on = models.DateField(_("date of consent"))
    form_version = models.CharField(_("consent form version"), max_length=40)
    obtained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("obtained by"),
    )
    withdrawn_on = models.DateField(_("date of withdrawal"), null=True, blank=True)
    withdrawal_scope = models.CharField(
        _("scope of withdrawal"), max_length=10, choices=WithdrawalScope.choices, blank=True
    )

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["patient", "consented_on"]

    def __str__(self) -> str:
        return f"{self.patient} consent {self.consented_on:%Y-%m-%d}"


@audited()
class Allocation(models.Model):
    """The arm a patient receives. Written once, never changed or deleted (database triggers)."""

    class Part(models.TextChoices):
        SINGLE_ARM = "single_arm", _("Single-arm enrolment")
        RUN_IN = "run_in", _("Safety run-in")
        RANDOMISED = "randomised", _("Randomised")

    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="allocation")
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, related_name="+")
    slot = models.OneToOneField(
        AllocationSlot, on_delete=models.PROTECT, null=True, blank=True, related_name="allocation"
    )
    part = models.CharField(max_length=12, choices=Part.choices)
    stratum = models.CharField(max_length=200, blank=True)
    allocated_at = models.DateTimeField(auto_now_add=True)
    allocated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("allocation")
        verbose_name_plural = _("allocations")
        triggers = [
            pgtrigger.Protect(
                name="allocation_immutable", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]

    def __str__(self) -> str:
        return f"{self.patient} allocation"


@audited()
class EmergencyUnblinding(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="unblindings")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(_("reason"))
    requested_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("emergency unblinding")
        verbose_name_plural = _("emergency unblindings")

    def __str__(self) -> str:
        return f"{self.patient} unblinded {self.requested_at:%Y-%m-%d}"


from patients.models_dm import (  # noqa: E402,F401
    DataLock,
    DataQuery,
    FormKind,
    QueryMessage,
    Signature,
    SourceVerification,
)
from patients.models_safety import (  # noqa: E402,F401 - models of this app, kept in their own module
    AdverseEvent,
    Analyte,
    Attribution,
    CtcaeTerm,
    LabResult,
    NormalRange,
    SaeReport,
    SafetyRules,
)
from patients.models_visits import PlannedVisit  # noqa: E402,F401
