from __future__ import annotations

from django.db import models

from studies.access import site_q


class LesionScopedQuerySet(models.QuerySet):
    """Lesions and assessments belong to a patient: scoped through the patient's site."""

    def for_user(self, user) -> LesionScopedQuerySet:
        return self.filter(site_q(user, "patient__study_site"))
