"""What a user may see of an allocation: the one function every page, PDF, export and email uses.

Open-label studies hide nothing. In a double-blind study a user sees a patient's arm (and
anything arm-revealing, such as STOP-2's dose and fractionation) only through an unblinded
membership covering the patient's site, or an emergency unblinding they requested for that
patient.
"""

from __future__ import annotations

from studies.access import scope_for


def sees_allocation(
    user, study, study_site_id: int | None, *, patient_id: int | None = None
) -> bool:
    if not study.is_blinded_design:
        return True
    scope = scope_for(user)
    if any(
        g.study_id == study.pk
        and not g.blinded
        and (g.study_site_id is None or g.study_site_id == study_site_id)
        for g in scope.grants
    ):
        return True
    if patient_id is not None:
        from patients.models import EmergencyUnblinding

        return EmergencyUnblinding.objects.filter(patient_id=patient_id, requested_by=user).exists()
    return False
