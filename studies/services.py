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


@transaction.atomic
def randomisation_list_upload(*, study, by, rows: list[dict[str, str]]):
    """Store a list prepared outside the app (CSV rows: stratum, sequence, arm).

    Refused whole, with the first problems named, unless every row names a known arm, each
    stratum's sequence runs 1, 2, 3... without gap or repeat, and every stratum of the study is
    present.
    """
    from studies.models import AllocationSlot, RandomisationList

    if RandomisationList.objects.filter(study=study, is_active=True).exists():
        raise ValueError("This study already has an active randomisation list.")
    arms = {arm.code: arm for arm in study.arms.all()}
    problems: list[str] = []
    by_stratum: dict[str, list[int]] = {}
    for line, row in enumerate(rows, start=2):
        arm, stratum = row.get("arm", "").strip(), row.get("stratum", "").strip()
        if arm not in arms:
            problems.append(f"line {line}: unknown arm {arm!r}")
        try:
            by_stratum.setdefault(stratum, []).append(int(row.get("sequence", "")))
        except ValueError:
            problems.append(f"line {line}: sequence must be a whole number")
    for stratum, sequences in by_stratum.items():
        if sorted(sequences) != list(range(1, len(sequences) + 1)):
            problems.append(f"stratum {stratum!r}: sequences must run 1..{len(sequences)}")
    missing = sorted(set(strata_for(study)) - set(by_stratum))
    if missing:
        problems.append(f"strata missing: {', '.join(missing[:5])}")
    if problems or not rows:
        raise ValueError("; ".join(problems[:5]) or "The file has no row.")
    with reason_for_change("randomisation list uploaded", user=by.pk):
        rlist = RandomisationList.objects.create(
            study=study,
            uploaded=True,
            created_by=by,
            slots_per_stratum=max(len(s) for s in by_stratum.values()),
            block_multipliers="",
        )
        AllocationSlot.objects.bulk_create(
            AllocationSlot(
                rlist=rlist,
                stratum=row["stratum"].strip(),
                sequence=int(row["sequence"]),
                arm=arms[row["arm"].strip()],
            )
            for row in rows
        )
    return rlist
