"""Data management: locks, source data verification, investigator signatures and queries.

A case report form instance is named by its kind (:class:`FormKind`) and the primary key of its
root row (an imaging assessment, an SBRT course, an adverse event...); ``patients/casebook.py``
lists a patient's forms and computes a hash of each one's content in the database.  Verification
and signatures store the hash they were given, so any later change of the content, by whatever
path (form, admin, ``QuerySet.update()``, raw SQL), shows as "changed since" without a signal.
Locks are enforced by database triggers (``patients/locking.py``), again whatever the path.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from studies.audit import audited


class FormKind(models.TextChoices):
    ELIGIBILITY = "eligibility", _("Eligibility")
    CONSENT = "consent", _("Consent")
    BASELINE = "baseline", _("Baseline lesions")
    ASSESSMENT = "assessment", _("Imaging assessment")
    COURSE = "course", _("SBRT course")
    LINE = "line", _("Systemic line")
    DRUG = "drug", _("Study drug cycle")
    AE = "ae", _("Adverse event")
    LAB = "lab", _("Lab result")
    OFF_STUDY = "off_study", _("Off study")


@audited()
class DataLock(models.Model):
    """A freeze of a form, a patient, a site or the whole study; active until released."""

    class Level(models.TextChoices):
        FORM = "form", _("Form")
        PATIENT = "patient", _("Patient")
        SITE = "site", _("Site")
        STUDY = "study", _("Study")

    level = models.CharField(_("level"), max_length=8, choices=Level.choices)
    study = models.ForeignKey("studies.Study", on_delete=models.CASCADE, related_name="+")
    study_site = models.ForeignKey(
        "studies.StudySite", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    form_kind = models.CharField(_("form"), max_length=12, choices=FormKind.choices, blank=True)
    object_id = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(_("reason for locking"), max_length=200)
    locked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    locked_at = models.DateTimeField(_("locked at"))
    released_at = models.DateTimeField(_("unlocked at"), null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    release_reason = models.CharField(_("reason for unlocking"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("data lock")
        verbose_name_plural = _("data locks")
        ordering = ["-locked_at"]
        indexes = [
            models.Index(
                fields=["study", "level"],
                condition=models.Q(released_at__isnull=True),
                name="datalock_active",
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(level="study", study_site__isnull=True, patient__isnull=True)
                    | models.Q(level="site", study_site__isnull=False, patient__isnull=True)
                    | models.Q(level="patient", patient__isnull=False, object_id__isnull=True)
                    | models.Q(level="form", patient__isnull=False, object_id__isnull=False)
                ),
                name="datalock_level_shape",
            )
        ]

    def __str__(self) -> str:
        return f"lock {self.level} {self.pk}"


@audited()
class SourceVerification(models.Model):
    """A monitor's source data verification of one form, bound to the content it saw."""

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="verifications"
    )
    form_kind = models.CharField(_("form"), max_length=12, choices=FormKind.choices)
    object_id = models.BigIntegerField()
    content_hash = models.CharField(max_length=64)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    verified_at = models.DateTimeField(_("verified at"))

    class Meta:
        verbose_name = _("source data verification")
        verbose_name_plural = _("source data verifications")
        constraints = [
            models.UniqueConstraint(fields=["form_kind", "object_id"], name="sdv_one_per_form")
        ]

    def __str__(self) -> str:
        return f"SDV {self.form_kind}:{self.object_id}"


@audited()
class Signature(models.Model):
    """An investigator's electronic signature (21 CFR 11.50, 11.70): never edited or deleted.

    ``forms`` lists the signed forms as ``[kind, id, hash]``; ``content_hash`` is the SHA-256 of
    that list.  The signature is valid while every listed form still has the listed hash.
    """

    MEANING = _("I confirm the data are accurate and complete.")

    class Scope(models.TextChoices):
        CASEBOOK = "casebook", _("Whole casebook")
        FORMS = "forms", _("Selected forms")

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="signatures"
    )
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    printed_name = models.CharField(_("printed name"), max_length=200)
    signed_at = models.DateTimeField(_("signed at (UTC)"))
    meaning = models.CharField(_("meaning"), max_length=200)
    scope = models.CharField(_("scope"), max_length=8, choices=Scope.choices)
    forms = models.JSONField()
    content_hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("investigator signature")
        verbose_name_plural = _("investigator signatures")
        ordering = ["-signed_at"]
        triggers = [
            pgtrigger.Protect(
                name="signature_immutable", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]

    def __str__(self) -> str:
        return f"{self.printed_name} {self.signed_at:%Y-%m-%d %H:%M} UTC"


@audited()
class DataQuery(models.Model):
    """A question about a form or one of its fields (from a monitor, data manager or edit check)."""

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("query status", "Open")
        ANSWERED = "answered", _("Answered")
        CLOSED = "closed", _("Closed")

    class Origin(models.TextChoices):
        MANUAL = "manual", _("Monitor / data manager")
        AUTO = "auto", _("Edit check")

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="queries"
    )
    form_kind = models.CharField(_("form"), max_length=12, choices=FormKind.choices)
    object_id = models.BigIntegerField()
    field = models.CharField(_("field"), max_length=60, blank=True)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.OPEN
    )
    origin = models.CharField(
        _("origin"), max_length=8, choices=Origin.choices, default=Origin.MANUAL
    )
    check_key = models.CharField(max_length=80, blank=True)  # edit check that raised it
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    opened_at = models.DateTimeField(_("opened at"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("query")
        verbose_name_plural = _("queries")
        ordering = ["-opened_at"]
        indexes = [models.Index(fields=["patient", "status"])]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "check_key"],
                condition=~models.Q(check_key="") & ~models.Q(status="closed"),
                name="query_one_live_per_check",
            )
        ]

    def __str__(self) -> str:
        return f"query {self.pk} ({self.status})"


@audited()
class QueryMessage(models.Model):
    """One step of a query's conversation; ``notified_at`` is set by the daily digest."""

    class Action(models.TextChoices):
        OPEN = "open", pgettext_lazy("query action", "Opened")
        ANSWER = "answer", _("Answered")
        CLOSE = "close", _("Closed")
        REOPEN = "reopen", _("Re-opened")

    query = models.ForeignKey(DataQuery, on_delete=models.CASCADE, related_name="messages")
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    text = models.TextField(_("message"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("at"))
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("query message")
        verbose_name_plural = _("query messages")
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=models.Q(notified_at__isnull=True),
                name="querymessage_unnotified",
            )
        ]

    def __str__(self) -> str:
        return f"{self.query_id} {self.action}"
