"""The participant's journey at a site. Pseudonymised: no names, no full birth dates."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from patients.querysets import PatientQuerySet
from studies.audit import audited
from studies.models import StudySite


@audited()
class Patient(models.Model):
    class Status(models.TextChoices):
        SCREENING = "screening", _("Screening")
        SCREEN_FAILURE = "screen_failure", _("Screen failure")
        ENROLLED = "enrolled", _("Enrolled")
        ON_TREATMENT = "on_treatment", _("On treatment")
        FOLLOW_UP = "follow_up", _("Follow-up")
        OFF_STUDY = "off_study", _("Off study")

    study_site = models.ForeignKey(
        StudySite, on_delete=models.PROTECT, related_name="patients", verbose_name=_("site")
    )
    subject_id = models.CharField(_("subject identifier"), max_length=40, unique=True)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.SCREENING
    )
    enrolled_on = models.DateField(_("enrolment date"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PatientQuerySet.as_manager()

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        ordering = ["subject_id"]
        indexes = [models.Index(fields=["study_site", "status"])]

    def __str__(self) -> str:
        return self.subject_id
