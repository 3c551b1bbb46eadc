"""The protocol as configured by the sponsor: studies, arms, sites and who works on them."""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from studies.audit import audited
from studies.querysets import (
    ArmQuerySet,
    MembershipQuerySet,
    SiteQuerySet,
    StudyQuerySet,
    StudySiteQuerySet,
)
from studies.roles import (
    ALWAYS_UNBLINDED_ROLES,
    SITE_ROLES,
    SPONSOR_ROLES,
    Role,
)


class RecruitmentStatus(models.TextChoices):
    """Recruitment status vocabulary of ClinicalTrials.gov, for studies and for sites."""

    NOT_YET_RECRUITING = "NOT_YET_RECRUITING", _("Not yet recruiting")
    RECRUITING = "RECRUITING", _("Recruiting")
    ACTIVE_NOT_RECRUITING = "ACTIVE_NOT_RECRUITING", _("Active, not recruiting")
    SUSPENDED = "SUSPENDED", _("Suspended")
    COMPLETED = "COMPLETED", _("Completed")
    TERMINATED = "TERMINATED", _("Terminated")
    WITHDRAWN = "WITHDRAWN", _("Withdrawn")
    UNKNOWN = "UNKNOWN", _("Unknown")


@audited()
class Study(models.Model):
    class Phase(models.TextChoices):
        PHASE1 = "PHASE1", _("Phase I")
        PHASE1_2 = "PHASE1_2", _("Phase I/II")
        PHASE2 = "PHASE2", _("Phase II")
        PHASE3 = "PHASE3", _("Phase III")
        NA = "NA", _("Not applicable")

    class Design(models.TextChoices):
        SINGLE_ARM = "single_arm", _("Single arm")
        RANDOMISED = "randomised", _("Randomised")
        RUN_IN_RANDOMISED = "run_in_randomised", _("Phase I/II: safety run-in, then randomised")

    class Blinding(models.TextChoices):
        OPEN = "open", _("Open label")
        DOUBLE_BLIND = "double_blind", _("Double-blind")

    code = models.CharField(_("code"), max_length=30, unique=True)
    acronym = models.CharField(_("acronym"), max_length=60)
    title = models.TextField(_("title"))
    registry_id = models.CharField(
        _("registry identifier"),
        max_length=20,
        blank=True,
        validators=[RegexValidator(r"^NCT\d{8}$", _("Enter an identifier such as NCT04299646."))],
    )
    other_ids = models.CharField(_("other identifiers"), max_length=200, blank=True)
    phase = models.CharField(_("phase"), max_length=10, choices=Phase.choices)
    design = models.CharField(_("design"), max_length=20, choices=Design.choices)
    blinding = models.CharField(
        _("blinding"), max_length=20, choices=Blinding.choices, default=Blinding.OPEN
    )
    target_enrolment = models.PositiveIntegerField(
        _("target enrolment"), null=True, blank=True, validators=[MinValueValidator(1)]
    )
    status = models.CharField(
        _("status"),
        max_length=25,
        choices=RecruitmentStatus.choices,
        default=RecruitmentStatus.NOT_YET_RECRUITING,
    )
    start_date = models.DateField(_("start date"), null=True, blank=True)
    completion_date = models.DateField(_("completion date"), null=True, blank=True)
    sponsor = models.CharField(_("sponsor"), max_length=200, blank=True)
    collaborators = models.CharField(_("collaborators"), max_length=300, blank=True)
    condition = models.CharField(_("condition"), max_length=200, blank=True)
    protocol_version = models.CharField(_("protocol version"), max_length=40, blank=True)
    primary_endpoint = models.TextField(_("primary endpoint"), blank=True)
    subject_prefix = models.CharField(
        _("subject identifier prefix"),
        max_length=12,
        blank=True,
        validators=[RegexValidator(r"^[A-Z0-9]+$", _("Capital letters and digits only."))],
        help_text=_("Subject identifiers read PREFIX-SITE-SEQUENCE, e.g. STORM01-14-003."),
    )
    run_in_size = models.PositiveSmallIntegerField(
        _("safety run-in size"),
        null=True,
        blank=True,
        help_text=_("Phase I/II designs: patients enrolled single-arm before randomisation opens."),
    )
    run_in_arm_code = models.CharField(
        _("safety run-in arm code"),
        max_length=20,
        blank=True,
        help_text=_("Arm given to run-in patients (e.g. the experimental arm)."),
    )
    local_reference_enabled = models.BooleanField(
        _("sites may record their own patient reference"), default=False
    )
    response_confirmation_required = models.BooleanField(
        _("RECIST responses need confirmation"),
        default=False,
        help_text=_("RECIST 1.1 section 4.6: usually for non-randomised trials."),
    )
    irecist_new_lesions_block_reset = models.BooleanField(
        _("iRECIST: persisting new lesions block the reset after iUPD"),
        default=True,
        help_text=_("Seymour 2017 Table 2 (default) versus the EORTC iRECIST Q&A reading."),
    )
    min_sd_days = models.PositiveSmallIntegerField(
        _("minimum interval for stable disease (days)"),
        default=42,
        help_text=_(
            "A stable disease counts as best response only this long after treatment start."
        ),
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=40,
        default="Europe/Paris",
        help_text=_("Reminders and scheduled reports run on this zone's clock."),
    )
    reminder_hour = models.PositiveSmallIntegerField(
        _("daily reminders at (hour)"), default=7, validators=[MaxValueValidator(23)]
    )
    reminder_days_ahead = models.PositiveSmallIntegerField(
        _("remind this many days before a visit window opens"),
        default=7,
        validators=[MaxValueValidator(60)],
    )

    objects = StudyQuerySet.as_manager()

    class Meta:
        verbose_name = _("study")
        verbose_name_plural = _("studies")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.acronym or self.code

    @property
    def is_blinded_design(self) -> bool:
        return self.blinding == self.Blinding.DOUBLE_BLIND

    @property
    def is_randomised(self) -> bool:
        return self.design != self.Design.SINGLE_ARM

    @property
    def prefix(self) -> str:
        return self.subject_prefix or "".join(ch for ch in self.code.upper() if ch.isalnum())

    def clean(self) -> None:
        if self.start_date and self.completion_date and self.completion_date < self.start_date:
            raise ValidationError(
                {"completion_date": _("The completion date cannot be before the start date.")}
            )


@audited()
class Arm(models.Model):
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="arms")
    code = models.CharField(_("code"), max_length=20)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    allocation_weight = models.PositiveSmallIntegerField(
        _("allocation weight"), default=1, validators=[MinValueValidator(1)]
    )
    uses_irecist = models.BooleanField(
        _("also report iRECIST"),
        default=False,
        help_text=_("Immunotherapy arms: iRECIST results beside RECIST 1.1."),
    )

    objects = ArmQuerySet.as_manager()

    class Meta:
        verbose_name = _("arm")
        verbose_name_plural = _("arms")
        ordering = ["study", "code"]
        constraints = [
            models.UniqueConstraint(fields=["study", "code"], name="arm_code_unique_per_study")
        ]

    def __str__(self) -> str:
        return f"{self.study.code} {self.code}"


@audited()
class Site(models.Model):
    institution = models.CharField(_("institution"), max_length=200)
    city = models.CharField(_("city"), max_length=100)
    country = models.CharField(_("country"), max_length=100)

    objects = SiteQuerySet.as_manager()

    class Meta:
        verbose_name = _("site")
        verbose_name_plural = _("sites")
        ordering = ["country", "city", "institution"]
        constraints = [
            models.UniqueConstraint(
                fields=["institution", "city", "country"], name="site_unique_institution_city"
            )
        ]

    def __str__(self) -> str:
        return f"{self.institution} ({self.city})"


@audited()
class StudySite(models.Model):
    """A site's participation in one study."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="study_sites")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="study_sites")
    number = models.CharField(
        _("site number"),
        max_length=4,
        validators=[RegexValidator(r"^\d{2,4}$", _("Use 2 to 4 digits, e.g. 07."))],
    )
    recruitment_status = models.CharField(
        _("recruitment status"),
        max_length=25,
        choices=RecruitmentStatus.choices,
        default=RecruitmentStatus.NOT_YET_RECRUITING,
    )
    activation_date = models.DateField(_("activation date"), null=True, blank=True)
    principal_investigator = models.CharField(
        _("principal investigator"), max_length=200, blank=True
    )
    target_enrolment = models.PositiveIntegerField(
        _("site target enrolment"), null=True, blank=True
    )

    objects = StudySiteQuerySet.as_manager()

    class Meta:
        verbose_name = _("study site")
        verbose_name_plural = _("study sites")
        ordering = ["study", "number"]
        constraints = [
            models.UniqueConstraint(fields=["study", "number"], name="studysite_number_unique"),
            models.UniqueConstraint(fields=["study", "site"], name="studysite_site_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.study.code}-{self.number} {self.site.institution} ({self.site.city})"


@audited()
class Membership(models.Model):
    """A user's role in a study, at one site or (study_site empty) at all sites of the study."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships"
    )
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="memberships")
    study_site = models.ForeignKey(
        StudySite,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="memberships",
        verbose_name=_("site"),
        help_text=_("Leave empty for all sites of the study."),
    )
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)
    blinded = models.BooleanField(
        _("blinded to allocation"),
        default=True,
        help_text=_("Blinded users never see a patient's arm or anything that reveals it."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        ordering = ["study", "study_site", "role"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "study", "study_site", "role"],
                name="membership_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        where = self.study_site.number if self.study_site_id else _("all sites")
        return f"{self.user} - {self.get_role_display()} - {self.study.code} ({where})"

    @property
    def all_sites(self) -> bool:
        return self.study_site_id is None

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.role in SITE_ROLES and self.study_site_id is None:
            errors["study_site"] = _("This role works at one site: choose the site.")
        if self.role in SPONSOR_ROLES and self.study_site_id is not None:
            errors["study_site"] = _("This sponsor role covers all sites: leave the site empty.")
        if self.study_site_id and self.study_id and self.study_site.study_id != self.study_id:
            errors["study_site"] = _("This site does not take part in the chosen study.")
        if self.role in ALWAYS_UNBLINDED_ROLES and self.blinded:
            errors["blinded"] = _("The radiotherapy planner must be unblinded.")
        if errors:
            raise ValidationError(errors)


@audited()
class EligibilityCriterion(models.Model):
    """One inclusion or exclusion criterion of a study, verbatim from the protocol."""

    class Kind(models.TextChoices):
        INCLUSION = "inclusion", _("Inclusion")
        EXCLUSION = "exclusion", _("Exclusion")

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="criteria")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    number = models.PositiveSmallIntegerField(_("number"))
    text = models.TextField(_("text"))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("eligibility criterion")
        verbose_name_plural = _("eligibility criteria")
        ordering = ["study", "-kind", "number"]  # inclusion before exclusion
        constraints = [
            models.UniqueConstraint(fields=["study", "kind", "number"], name="criterion_unique")
        ]

    def __str__(self) -> str:
        prefix = "I" if self.kind == self.Kind.INCLUSION else "E"
        return f"{prefix}{self.number}. {self.text[:80]}"


@audited()
class CriterionRule(models.Model):
    """A rule computed from entered data that checks a criterion (see patients/eligibility.py)."""

    criterion = models.ForeignKey(
        EligibilityCriterion, on_delete=models.CASCADE, related_name="rules"
    )
    rule_key = models.CharField(_("rule"), max_length=40)
    params = models.JSONField(_("parameters"), default=dict, blank=True)

    class Meta:
        verbose_name = _("computed rule")
        verbose_name_plural = _("computed rules")

    def __str__(self) -> str:
        return f"{self.rule_key} {self.params}"

    def clean(self) -> None:
        from patients.eligibility import RULES

        rule = RULES.get(self.rule_key)
        if rule is None:
            raise ValidationError({"rule_key": _("Unknown rule.")})
        try:
            rule.resolve_params(self.params or {})
        except ValueError as error:
            raise ValidationError({"params": str(error)}) from error


@audited()
class StratificationFactor(models.Model):
    """A factor the randomisation is stratified by, besides the site (e.g. ECOG 0-1 vs 2)."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="strat_factors")
    name = models.SlugField(_("name"), max_length=30)
    label = models.CharField(_("label"), max_length=100)
    levels = models.CharField(
        _("levels"), max_length=200, help_text=_("Comma-separated, e.g. 0-1,2")
    )

    class Meta:
        verbose_name = _("stratification factor")
        verbose_name_plural = _("stratification factors")
        ordering = ["study", "name"]
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="strat_factor_unique")
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def level_list(self) -> list[str]:
        return [level.strip() for level in self.levels.split(",") if level.strip()]


@audited()
class RandomisationList(models.Model):
    """A concealed allocation list: generated from a recorded seed, or uploaded."""

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="randomisation_lists")
    seed = models.CharField(_("seed"), max_length=100, blank=True)
    block_multipliers = models.CharField(_("block size multipliers"), max_length=30, default="1,2")
    slots_per_stratum = models.PositiveIntegerField(_("slots per stratum"), default=100)
    uploaded = models.BooleanField(_("uploaded"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("randomisation list")
        verbose_name_plural = _("randomisation lists")
        constraints = [
            models.UniqueConstraint(
                fields=["study"],
                condition=models.Q(is_active=True),
                name="one_active_list_per_study",
            )
        ]

    def __str__(self) -> str:
        return f"{self.study.code} list #{self.pk}"


@audited()
class AllocationSlot(models.Model):
    """One concealed slot of a list. Taken, under a row lock, by exactly one patient."""

    rlist = models.ForeignKey(RandomisationList, on_delete=models.PROTECT, related_name="slots")
    stratum = models.CharField(max_length=200)
    sequence = models.PositiveIntegerField()
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, related_name="+")
    taken_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rlist", "stratum", "sequence"], name="slot_unique_sequence"
            )
        ]
        indexes = [models.Index(fields=["rlist", "stratum", "taken_at", "sequence"])]

    def __str__(self) -> str:
        return f"{self.rlist_id}:{self.stratum}:{self.sequence}"


class AuditedUser(get_user_model()):
    """Proxy of the user model, so that its audit triggers live in our migrations."""

    class Meta:
        proxy = True
        verbose_name = _("user")


# Accounts are audited too (who was given access, activated, deactivated); never the password.
UserEvent = pghistory.create_event_model(
    AuditedUser,
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    exclude=["password", "last_login"],
    app_label="studies",
    model_name="UserEvent",
    abstract=False,
)


class OutboxEmail(models.Model):
    """An email decided in a transaction, sent after it commits; each key is sent once.

    Written in the same transaction as the event it reports (so an event never lacks its email
    and an email never reports an event that was rolled back); the sender task claims the row,
    sends it and marks it sent, retrying on mail-server errors.
    """

    key = models.CharField(max_length=200, unique=True)
    to = models.JSONField(default=list)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("outgoing email")
        verbose_name_plural = _("outgoing emails")
        indexes = [models.Index(fields=["sent_at", "created_at"])]

    def __str__(self) -> str:
        return self.key


class OutboxAttempt(models.Model):
    """Every attempt to send an outbox email, successful or not (append-only log)."""

    email = models.ForeignKey(OutboxEmail, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(auto_now_add=True)
    ok = models.BooleanField()
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("sending attempt")
        verbose_name_plural = _("sending attempts")
        ordering = ["email", "at"]

    def __str__(self) -> str:
        return f"{self.email.key} {self.at:%Y-%m-%d %H:%M:%S} {'ok' if self.ok else 'failed'}"


@audited()
class VisitDefinition(models.Model):
    """A visit of the study's schedule: an offset from an anchor event, a window, repeats.

    ``repeat_every_days`` repeats the visit from its first occurrence until
    ``repeat_until_days`` after the anchor (and, with ``until_progression``, until the
    patient's progression).  "Imaging every 8 weeks until progression, then every 12 weeks"
    is two definitions: the second anchored at progression.
    """

    class Kind(models.TextChoices):
        IMAGING = "imaging", _("Imaging")
        LABS = "labs", _("Laboratory tests")
        CLINICAL = "clinical", _("Clinical visit")
        QOL = "qol", _("Quality of life")

    class Anchor(models.TextChoices):
        ENROLMENT = "enrolment", _("Enrolment")
        RANDOMISATION = "randomisation", _("Randomisation")
        SBRT_START = "sbrt_start", _("First SBRT fraction")
        SBRT_END = "sbrt_end", _("Last SBRT fraction")
        PROGRESSION = "progression", _("Progression")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="visit_definitions")
    code = models.SlugField(_("code"), max_length=30)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    anchor = models.CharField(_("anchor event"), max_length=15, choices=Anchor.choices)
    offset_days = models.IntegerField(_("days after the anchor"))
    window_before_days = models.IntegerField(_("window before (days)"), default=0)
    window_after_days = models.IntegerField(_("window after (days)"), default=0)
    repeat_every_days = models.IntegerField(
        _("repeat every (days)"), null=True, blank=True, help_text=_("Empty: once.")
    )
    repeat_until_days = models.PositiveIntegerField(
        _("repeat until (days after the anchor)"), null=True, blank=True
    )
    until_progression = models.BooleanField(_("stop repeating at progression"), default=False)
    source = models.CharField(
        _("source"), max_length=300, blank=True, help_text=_("Where the schedule comes from.")
    )

    class Meta:
        verbose_name = _("visit definition")
        verbose_name_plural = _("visit definitions")
        ordering = ["study", "anchor", "offset_days"]
        constraints = [models.UniqueConstraint(fields=["study", "code"], name="visit_code_unique")]

    def __str__(self) -> str:
        return f"{self.study.code} {self.name}"

    def clean(self) -> None:
        errors = {}
        if self.window_before_days is not None and self.window_before_days < 0:
            errors["window_before_days"] = _("A window cannot be negative.")
        if self.window_after_days is not None and self.window_after_days < 0:
            errors["window_after_days"] = _("A window cannot be negative.")
        if self.repeat_every_days is not None and self.repeat_every_days <= 0:
            errors["repeat_every_days"] = _(
                "The repeat interval must be at least 1 day (leave it empty for a single visit)."
            )
        if self.repeat_every_days and not (self.repeat_until_days or self.until_progression):
            errors["repeat_until_days"] = _(
                "A repeated visit needs an end: a maximum duration or progression."
            )
        if (
            self.anchor == self.Anchor.RANDOMISATION
            and self.study_id
            and not self.study.is_randomised
        ):
            errors["anchor"] = _("This study does not randomise: choose another anchor event.")
        if errors:
            raise ValidationError(errors)


@audited()
class ReportSchedule(models.Model):
    """When a study's per-site and study PDF reports are emailed."""

    class Frequency(models.TextChoices):
        WEEKLY = "weekly", _("Weekly")
        MONTHLY = "monthly", _("Monthly")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="report_schedules")
    frequency = models.CharField(_("frequency"), max_length=8, choices=Frequency.choices)
    weekday = models.PositiveSmallIntegerField(
        _("day of the week (0 = Monday)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(6)],
    )
    day_of_month = models.PositiveSmallIntegerField(
        _("day of the month"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(28)],
    )
    hour = models.PositiveSmallIntegerField(
        _("hour"), default=6, validators=[MaxValueValidator(23)]
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("report schedule")
        verbose_name_plural = _("report schedules")

    def __str__(self) -> str:
        return f"{self.study.code} {self.get_frequency_display()}"

    def clean(self) -> None:
        if self.frequency == self.Frequency.WEEKLY and self.weekday is None:
            raise ValidationError({"weekday": _("Choose the day of the week.")})
        if self.frequency == self.Frequency.MONTHLY and self.day_of_month is None:
            raise ValidationError({"day_of_month": _("Choose the day of the month.")})


class ReportDelivery(models.Model):
    """One scheduled report to one recipient for one period: sent once, every attempt counted."""

    class Kind(models.TextChoices):
        SITE = "site", _("Site report")
        STUDY = "study", _("Study report")

    schedule = models.ForeignKey(
        ReportSchedule, on_delete=models.CASCADE, related_name="deliveries"
    )
    period = models.CharField(max_length=20)  # e.g. "2026-W48" or "2026-11"
    kind = models.CharField(max_length=5, choices=Kind.choices)
    study_site = models.ForeignKey(
        StudySite, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="report_deliveries"
    )
    email = models.EmailField()
    language = models.CharField(max_length=8, default="en")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("report delivery")
        verbose_name_plural = _("report deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "period", "kind", "study_site", "recipient"],
                name="report_delivered_once",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.schedule} {self.period} {self.kind} -> {self.email}"


class ReportJob(models.Model):
    """A PDF report generated on demand by a Celery task; the page polls its progress."""

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Generating")
        DONE = "done", _("Ready")
        FAILED = "failed", _("Failed")

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="report_jobs"
    )
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+")
    study_site = models.ForeignKey(
        StudySite, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    language = models.CharField(max_length=8, default="en")
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    pdf = models.BinaryField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("report job")
        verbose_name_plural = _("report jobs")

    def __str__(self) -> str:
        return f"report {self.pk} {self.state}"


class ExportJob(models.Model):
    """A data export requested by a data manager or statistician: the export log and its file.

    The Celery task writes the file under a temporary name and renames it when complete, so a
    crashed export is never offered half-written; a retry starts again from scratch.
    """

    class Format(models.TextChoices):
        CSV = "csv", _("CSV (zip, one file per form, with data dictionary)")
        ODM = "odm", _("CDISC ODM 1.3.2 XML")
        SDTM = "sdtm", _("CDISC SDTM-style datasets (zip)")

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Exporting")
        DONE = "done", _("Ready")
        FAILED = "failed", _("Failed")

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="export_jobs"
    )
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="+")
    format = models.CharField(_("format"), max_length=8, choices=Format.choices)
    blinded = models.BooleanField(_("blinded"), default=True)
    include_audit = models.BooleanField(_("include audit records"), default=False)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    file_path = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export {self.pk} {self.format} {self.state}"


class UserPreference(models.Model):
    """What a user chose for themselves: the language of their emails and reports."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference"
    )
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )

    class Meta:
        verbose_name = _("user preference")
        verbose_name_plural = _("user preferences")

    def __str__(self) -> str:
        return f"{self.user} ({self.language})"
