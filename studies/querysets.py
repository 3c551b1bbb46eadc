"""Read access to the protocol tables, always starting from the user's scope."""

from __future__ import annotations

from django.db import models
from django.db.models import Count, Q

from studies.access import scope_for, site_q


class StudyQuerySet(models.QuerySet):
    def for_user(self, user) -> StudyQuerySet:
        scope = scope_for(user)
        if scope.superuser:
            return self.all()
        return self.filter(pk__in=scope.study_ids)


class StudySiteQuerySet(models.QuerySet):
    def for_user(self, user) -> StudySiteQuerySet:
        return self.filter(site_q(user))

    def with_enrolment(self) -> StudySiteQuerySet:
        """Annotate each study-site with the number of patients enrolled so far."""
        return self.annotate(
            enrolled=Count("patients", filter=Q(patients__enrolled_on__isnull=False))
        )


class MembershipQuerySet(models.QuerySet):
    def for_user(self, user) -> MembershipQuerySet:
        scope = scope_for(user)
        if scope.superuser:
            return self.all()
        return self.filter(
            Q(study_id__in=scope.all_sites_study_ids) | Q(study_site_id__in=scope.site_ids)
        )

    def active(self) -> MembershipQuerySet:
        return self.filter(is_active=True, user__is_active=True)


class SiteQuerySet(models.QuerySet):
    def for_user(self, user) -> SiteQuerySet:
        """Institutions taking part in at least one study-site the user can see."""
        from studies.models import StudySite

        if scope_for(user).superuser:
            return self.all()
        return self.filter(pk__in=StudySite.objects.for_user(user).values("site_id"))


class ArmQuerySet(models.QuerySet):
    def for_user(self, user) -> ArmQuerySet:
        """Arms of the user's studies; in a double-blind study only for unblinded users."""
        scope = scope_for(user)
        if scope.superuser:
            return self.all()
        unblinded = {g.study_id for g in scope.grants if not g.blinded}
        return self.filter(study_id__in=scope.study_ids).filter(
            Q(study__blinding="open") | Q(study_id__in=unblinded)
        )
