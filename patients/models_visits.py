"""Planned visits: the study's schedule (studies.VisitDefinition) applied to one patient.

Dates are computed by ``patients/schedule.py`` (pure) from the patient's anchor events and kept in
step by ``patients/visit_services.py`` whenever an anchor changes.  Whether a visit is upcoming,
due (in its window) or overdue depends on today's date and is derived, not stored; what is stored
is what happened: planned, done (with the CRF that records it), missed (with a reason), or not
applicable (the patient went off study).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from patients.querysets import PatientDataQuerySet
from studies.audit import audited
from studies.models import VisitDefinition


@audited()
class PlannedVisit(models.Model):
    class State(models.TextChoices):
        PLANNED = "planned", _("Planned")
        DONE = "done", _("Done")
        MISSED = "missed", _("Missed")
        NOT_APPLICABLE = "na", _("Not applicable")

    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="planned_visits"
    )
    definition = models.ForeignKey(
        VisitDefinition, on_delete=models.CASCADE, related_name="planned_visits"
    )
    occurrence = models.PositiveSmallIntegerField(_("occurrence"), default=1)
    due_on = models.DateField(_("due"))
    window_start = models.DateField(_("window opens"))
    window_end = models.DateField(_("window closes"))
    state = models.CharField(_("state"), max_length=8, choices=State.choices, default="planned")
    done_on = models.DateField(_("done on"), null=True, blank=True)
    done_form = models.CharField(_("recorded in"), max_length=40, blank=True)  # e.g. "scan:12"
    missed_reason = models.CharField(_("reason (missed)"), max_length=200, blank=True)

    objects = PatientDataQuerySet.as_manager()

    class Meta:
        verbose_name = _("planned visit")
        verbose_name_plural = _("planned visits")
        ordering = ["patient", "due_on", "definition"]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "definition", "occurrence"], name="planned_visit_unique"
            )
        ]
        indexes = [
            models.Index(fields=["state", "window_start"]),
            models.Index(fields=["state", "window_end"]),
        ]

    def __str__(self) -> str:
        return f"{self.patient} {self.definition.name} #{self.occurrence} ({self.due_on})"
