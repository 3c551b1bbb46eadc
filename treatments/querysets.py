from __future__ import annotations

from django.db import models

from studies.access import site_q


class CourseQuerySet(models.QuerySet):
    def for_user(self, user) -> CourseQuerySet:
        return self.filter(site_q(user, "patient__study_site"))


class PatientDataQuerySet(models.QuerySet):
    """Rows hanging off a patient (systemic lines, drug cycles): the patient's site scope."""

    def for_user(self, user) -> PatientDataQuerySet:
        return self.filter(site_q(user, "patient__study_site"))
