from __future__ import annotations

from django.db import models

from studies.access import site_q


class PatientQuerySet(models.QuerySet):
    def for_user(self, user) -> PatientQuerySet:
        return self.filter(site_q(user, "study_site"))

    def enrolled(self) -> PatientQuerySet:
        return self.filter(enrolled_on__isnull=False)
