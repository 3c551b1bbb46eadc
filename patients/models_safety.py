"""Safety data: CTCAE v5.0 adverse events, serious-event reports, laboratory results, normal ranges.

Grades of four haematology terms are computed from the value and the site laboratory's normal
range by ``patients/ctcae.py`` (pure); units are converted by ``patients/labunits.py`` (pure).
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from patients.querysets import PatientDataQuerySet, StudySiteDataQuerySet
from studies.audit import audited
from studies.models import Study, StudySite
from studies.validation import LoadedRelationsMixin


class CtcaeTerm(models.Model):
    """One NCI CTCAE v5.0 term (reference data, loaded from patients/data/ctcae_v5_terms.csv).

    A grade whose text is " -" is not defined for the term (e.g. no grade 5 for most lab terms).
    """

    meddra_code = models.PositiveIntegerField(_("MedDRA code"), unique=True)
    soc = models.CharField(_("system organ class"), max_length=120, db_index=True)
    term = models.CharField(_("CTCAE term"), max_length=200, unique=True)
    definition = models.TextField(_("definition"), blank=True)
    grade1 = models.TextField(blank=True)
    grade2 = models.TextField(blank=True)
    grade3 = models.TextField(blank=True)
    grade4 = models.TextField(blank=True)
    grade5 = models.TextField(blank=True)

    class Meta:
        verbose_name = _("CTCAE v5.0 term")
        verbose_name_plural = _("CTCAE v5.0 terms")
        ordering = ["soc", "term"]

    def __str__(self) -> str:
        return self.term

    def grade_text(self, grade: int) -> str:
        return getattr(self, f"grade{grade}", "") if 1 <= grade <= 5 else ""

    def defines(self, grade: int) -> bool:
        """True when the CTCAE gives a definition for this grade of the term."""
        return self.grade_text(grade).strip() not in ("", "-")

    @property
    def grades(self) -> list[int]:
        return [g for g in range(1, 6) if self.defines(g)]


@audited()
class SafetyRules(models.Model):
    """A study's safety settings (sponsor-editable in the admin)."""

    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="safety_rules")
    pharmacovigilance_emails = models.TextField(
        _("pharmacovigilance contacts"),
        blank=True,
        help_text=_("Email addresses that receive serious adverse events, one per line."),
    )
    sae_report_hours = models.PositiveSmallIntegerField(
        _("full SAE report due within (hours)"), default=24
    )
    late_after_days = models.PositiveSmallIntegerField(
        _("late toxicity: onset more than this many days after the end of SBRT"), default=90
    )
    dlt_window_days = models.PositiveSmallIntegerField(
        _("DLT window (days from the first SBRT fraction)"), null=True, blank=True
    )
    dlt_stop_count = models.PositiveSmallIntegerField(
        _("safety run-in stops at this many patients with a DLT"), null=True, blank=True
    )
    lymphopenia_day = models.PositiveSmallIntegerField(
        _("lymphopenia endpoint: days after the end of SBRT"), default=42
    )
    lymphopenia_window_days = models.PositiveSmallIntegerField(
        _("lymphopenia endpoint: window either side (days)"), default=7
    )

    class Meta:
        verbose_name = _("safety rules")
        verbose_name_plural = _("safety rules")

    def __str__(self) -> str:
        return f"{self.study.code} safety rules"

    @property
    def pharmacovigilance_list(self) -> list[str]:
        return [line.strip() for line in self.pharmacovigilance_emails.splitlines() if line.strip()]


class Attribution(models.TextChoices):
    UNRELATED = "unrelated", _("Unrelated")
    UNLIKELY = "unlikely", _("Unlikely")
    POSSIBLE = "possible", _("Possible")
    PROBABLE = "probable", _("Probable")
    DEFINITE = "definite", _("Definite")
    NOT_APPLICABLE = "na", _("Not applicable")


@audited()
class AdverseEvent(LoadedRelationsMixin, models.Model):
    class Action(models.TextChoices):
        NONE = "none", _("None")
        DOSE_REDUCED = "dose_reduced", _("Dose reduced")
        INTERRUPTED = "interrupted", _("Treatment interrupted")
        WITHDRAWN = "withdrawn", _("Treatment withdrawn")
        NOT_APPLICABLE = "na", _("Not applicable")

    class Outcome(models.TextChoices):
        RECOVERED = "recovered", _("Recovered / resolved")
        RECOVERING = "recovering", _("Recovering / resolving")
        NOT_RECOVERED = "not_recovered", _("Not recovered / not resolved")
        SEQUELAE = "sequelae", _("Recovered with sequelae")
        FATAL = "fatal", _("Fatal")
        UNKNOWN = "unknown", _("Unknown")

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="adverse_events"
    )
    term = models.ForeignKey(
        CtcaeTerm, on_delete=models.PROTECT, related_name="+", verbose_name=_("CTCAE term")
    )
    term_detail = models.CharField(
        _("specify (for 'Other, specify' terms)"), max_length=200, blank=True
    )
    grade = models.PositiveSmallIntegerField(
        _("grade"), validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    onset_on = models.DateField(_("onset"))
    resolved_on = models.DateField(_("resolution"), null=True, blank=True)
    attribution_sbrt = models.CharField(
        _("related to SBRT"), max_length=10, choices=Attribution.choices
    )
    attribution_systemic = models.CharField(
        _("related to systemic therapy"), max_length=10, choices=Attribution.choices
    )
    attribution_study_drug = models.CharField(
        _("related to the study drug"),
        max_length=10,
        choices=Attribution.choices,
        default=Attribution.NOT_APPLICABLE,
    )
    serious = models.BooleanField(_("serious adverse event"), default=False)
    sae_death = models.BooleanField(_("results in death"), default=False)
    sae_life_threatening = models.BooleanField(_("life-threatening"), default=False)
    sae_hospitalisation = models.BooleanField(
        _("requires or prolongs hospitalisation"), default=False
    )
    sae_disability = models.BooleanField(_("persistent or significant disability"), default=False)
    sae_congenital = models.BooleanField(_("congenital anomaly / birth defect"), default=False)
    sae_other = models.BooleanField(_("other important medical event"), default=False)
    action = models.CharField(
        _("action taken"), max_length=15, choices=Action.choices, default=Action.NONE
    )
    outcome = models.CharField(_("outcome"), max_length=15, choices=Outcome.choices)
    death_on = models.DateField(_("date of death"), null=True, blank=True)
    dlt = models.BooleanField(_("dose-limiting toxicity"), default=False)
    dlt_rule = models.CharField(_("DLT rule applied"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PatientDataQuerySet.as_manager()

    SAE_CRITERIA = (
        "sae_death",
        "sae_life_threatening",
        "sae_hospitalisation",
        "sae_disability",
        "sae_congenital",
        "sae_other",
    )

    #: The fields the site enters (form, service and admin share this list).
    ENTERED_FIELDS = (
        "term",
        "term_detail",
        "grade",
        "onset_on",
        "resolved_on",
        "attribution_sbrt",
        "attribution_systemic",
        "attribution_study_drug",
        "serious",
        *SAE_CRITERIA,
        "action",
        "outcome",
        "death_on",
        "dlt",
    )

    class Meta:
        verbose_name = _("adverse event")
        verbose_name_plural = _("adverse events")
        ordering = ["patient", "onset_on", "pk"]
        indexes = [models.Index(fields=["patient", "onset_on"])]

    def __str__(self) -> str:
        return f"{self.patient} {self.term} G{self.grade}"

    @property
    def criteria(self) -> list[str]:
        return [
            str(self._meta.get_field(f).verbose_name) for f in self.SAE_CRITERIA if getattr(self, f)
        ]


@audited()
class SaeReport(models.Model):
    """The initial and follow-up reports of a serious adverse event, until closed."""

    class Kind(models.TextChoices):
        INITIAL = "initial", _("Initial full report")
        FOLLOW_UP = "follow_up", _("Follow-up report")
        FINAL = "final", _("Final report (closes the SAE)")

    adverse_event = models.ForeignKey(
        AdverseEvent, on_delete=models.CASCADE, related_name="sae_reports"
    )
    kind = models.CharField(_("report"), max_length=10, choices=Kind.choices)
    reported_on = models.DateField(_("sent to the sponsor on"))
    narrative = models.TextField(_("narrative"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("SAE report")
        verbose_name_plural = _("SAE reports")
        ordering = ["adverse_event", "reported_on", "pk"]

    def __str__(self) -> str:
        return f"{self.adverse_event} {self.kind} {self.reported_on}"


class Analyte(models.TextChoices):
    LYMPHOCYTES = "lymphocytes", _("Lymphocytes")
    NEUTROPHILS = "neutrophils", _("Neutrophils")
    PLATELETS = "platelets", _("Platelets")
    HAEMOGLOBIN = "haemoglobin", _("Haemoglobin")
    LEUKOCYTES = "leukocytes", _("Leukocytes")
    CREATININE = "creatinine", _("Creatinine")
    CLEARANCE = "clearance", _("Creatinine clearance")
    BILIRUBIN = "bilirubin", _("Bilirubin")
    AST = "ast", _("AST")
    ALT = "alt", _("ALT")


@audited()
class NormalRange(models.Model):
    """A site laboratory's normal range for an analyte, in the laboratory's own unit."""

    study_site = models.ForeignKey(
        StudySite, on_delete=models.CASCADE, related_name="normal_ranges", verbose_name=_("site")
    )
    analyte = models.CharField(_("analyte"), max_length=15, choices=Analyte.choices)
    lln = models.DecimalField(
        _("lower limit of normal"), max_digits=10, decimal_places=3, null=True, blank=True
    )
    uln = models.DecimalField(
        _("upper limit of normal"), max_digits=10, decimal_places=3, null=True, blank=True
    )
    unit = models.CharField(_("unit"), max_length=15)

    objects = StudySiteDataQuerySet.as_manager()

    class Meta:
        verbose_name = _("normal range")
        verbose_name_plural = _("normal ranges")
        constraints = [
            models.UniqueConstraint(fields=["study_site", "analyte"], name="one_range_per_analyte")
        ]

    def __str__(self) -> str:
        return f"{self.study_site} {self.analyte}: {self.lln}-{self.uln} {self.unit}"


@audited()
class LabResult(LoadedRelationsMixin, models.Model):
    """One analyte of one sample; the CTCAE grade is computed and stored with the value."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="lab_results"
    )
    sampled_on = models.DateField(_("sample date"))
    analyte = models.CharField(_("analyte"), max_length=15, choices=Analyte.choices)
    value = models.DecimalField(_("value"), max_digits=12, decimal_places=3)
    unit = models.CharField(_("unit"), max_length=15)
    value_standard = models.DecimalField(max_digits=14, decimal_places=4)
    standard_unit = models.CharField(max_length=15)
    lln = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    uln = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    range_unit = models.CharField(max_length=15, blank=True)
    ctcae_term = models.CharField(max_length=60, blank=True)
    grade = models.PositiveSmallIntegerField(_("CTCAE grade"), null=True, blank=True)
    grade_rule = models.CharField(max_length=200, blank=True)
    grade_problem = models.CharField(max_length=200, blank=True)

    objects = PatientDataQuerySet.as_manager()

    class Meta:
        verbose_name = _("laboratory result")
        verbose_name_plural = _("laboratory results")
        ordering = ["patient", "sampled_on", "analyte"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "sampled_on", "analyte"], name="one_result_per_sample_analyte"
            )
        ]
        indexes = [models.Index(fields=["patient", "analyte", "sampled_on"])]

    def __str__(self) -> str:
        return f"{self.patient} {self.analyte} {self.sampled_on}: {self.value} {self.unit}"
