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
    staff = (
        user.is_superuser
        or Membership.objects.filter(user=user, is_active=True, role__in=STAFF_ROLES).exists()
    )
    if user.is_staff != staff:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])


def strata_for(study) -> list[str]:
    """Every stratum of the study: each site crossed with every level of every factor."""
    from itertools import product

    from studies.randomisation import stratum_key

    factors = [(f.name, f.level_list) for f in study.strat_factors.order_by("name")]
    combos = list(product(*(levels for _name, levels in factors))) or [()]
    return [
        stratum_key(
            ss.number, {name: level for (name, _l), level in zip(factors, combo, strict=True)}
        )
        for ss in study.study_sites.order_by("number")
        for combo in combos
    ]


@transaction.atomic
def randomisation_list_generate(
    *,
    study,
    by,
    seed: str = "",
    block_multipliers: tuple[int, ...] = (1, 2),
    slots_per_stratum: int = 100,
):
    """Generate and store the study's concealed allocation list from a recorded seed.

    An empty seed is replaced by a random one (``secrets``): the seed is kept in the database for
    reproducibility and shown to nobody in the app.
    """
    import secrets

    from studies.models import AllocationSlot, RandomisationList
    from studies.randomisation import ArmWeight, ListSpec, generate_list

    if RandomisationList.objects.filter(study=study, is_active=True).exists():
        raise ValueError("This study already has an active randomisation list.")
    seed = seed.strip() or secrets.token_hex(16)
    arms = {arm.code: arm for arm in study.arms.all()}
    spec = ListSpec(
        arms=tuple(ArmWeight(code, arm.allocation_weight) for code, arm in sorted(arms.items())),
        block_multipliers=tuple(block_multipliers),
        slots_per_stratum=slots_per_stratum,
        seed=seed,
    )
    slots = generate_list(spec, strata_for(study))
    with reason_for_change("randomisation list generated", user=by.pk):
        rlist = RandomisationList.objects.create(
            study=study,
            seed=seed,
            created_by=by,
            slots_per_stratum=slots_per_stratum,
            block_multipliers=",".join(str(m) for m in block_multipliers),
        )
        AllocationSlot.objects.bulk_create(
            AllocationSlot(rlist=rlist, stratum=s.stratum, sequence=s.sequence, arm=arms[s.arm])
            for s in slots
        )
    return rlist
