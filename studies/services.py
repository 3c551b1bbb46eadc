"""Writes to the protocol tables. Each runs in one transaction with its reason in the audit."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from studies.audit import reason_for_change
from studies.models import Membership, StudySite
from studies.roles import STAFF_ROLES


@transaction.atomic
def study_site_update(*, study_site: StudySite, data: dict[str, Any], by, reason: str) -> StudySite:
    """Change a site's participation details; ``reason`` is mandatory for saved data."""
    if not reason.strip():
        raise ValueError("A reason for change is required.")
    for field, value in data.items():
        setattr(study_site, field, value)
    study_site.full_clean()
    with reason_for_change(reason, user=by.pk):
        study_site.save(update_fields=list(data))
    return study_site


def user_sync_staff_flag(*, user) -> None:
    """Give the admin panel (is_staff) to exactly the users holding an active sponsor-side role."""
    staff = user.is_superuser or Membership.objects.filter(
        user=user, is_active=True, role__in=STAFF_ROLES
    ).exists()
    if user.is_staff != staff:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])
