from __future__ import annotations

from django.db import models

from studies.access import site_q


class PatientQuerySet(models.QuerySet):
    def for_user(self, user) -> PatientQuerySet:
        return self.filter(site_q(user, "study_site"))

    def enrolled(self) -> PatientQuerySet:
        return self.filter(enrolled_on__isnull=False)


class PatientDataQuerySet(models.QuerySet):
    """Rows hanging off a patient (adverse events, lab results): the patient's site scope."""

    def for_user(self, user) -> PatientDataQuerySet:
        return self.filter(site_q(user, "patient__study_site"))


class StudySiteDataQuerySet(models.QuerySet):
    """Rows of a study site (normal ranges of its laboratory)."""

    def for_user(self, user) -> StudySiteDataQuerySet:
        return self.filter(site_q(user, "study_site"))
