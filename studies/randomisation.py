"""Stratified permuted-block randomisation with randomly varying block sizes: a pure engine.

Standard library only, no Django: frozen dataclasses in, frozen dataclasses out, so the
engine can be tested, audited and re-run by the trial statistician outside the eCRF.

Method
------
Each stratum (a site, optionally crossed with stratification factors) gets its own list of
``spec.slots_per_stratum`` slots, made of consecutive permuted blocks. For every block a
multiplier ``m`` is drawn uniformly from ``spec.block_multipliers``; the block then holds
each arm's code ``weight * m`` times, so its size is ``m * sum(weights)``, and it is shuffled
(uniform random permutation). Varying the block size at random keeps the end of a block,
and so the next allocation, from being guessed by staff who have seen earlier allocations.

The last block of a stratum is cut short when ``slots_per_stratum`` is not a multiple of
the block sizes drawn: its slots keep the block's planned size in ``Slot.block_size``, but
fewer of them are listed, so that block need not be balanced.

Sources: Rosenberger WF & Lachin JM, *Randomization in Clinical Trials: Theory and
Practice*, 2nd ed., Wiley 2016, ch. 3 (restricted randomisation, permuted blocks, random
block sizes). ICH E9 *Statistical Principles for Clinical Trials* (1998), section 2.3
"Design techniques to avoid bias" (2.3.1 Blinding; the block-length advice is in 2.3.2
Randomisation): staff should be blind to the block length, and two or more randomly chosen
block lengths achieve this. Schulz KF & Grimes DA, "Generation of allocation sequences in
randomised trials: chance, not choice", Lancet 2002;359:515-519 (vary block sizes at
random; stratify with restricted randomisation), with their companion papers "Allocation
concealment in randomised trials: defending against deciphering", Lancet 2002;359:614-618,
and "Unequal group sizes in randomised trials: guarding against guessing", Lancet
2002;359:966-970.

API
---
``ArmWeight(code, weight)``          one arm and its integer allocation weight (>= 1).
``ListSpec(arms, block_multipliers, slots_per_stratum, seed)``  what to generate.
``Slot(stratum, sequence, arm, block, block_size)``  one allocation; 1-based numbering.
``stratum_key(site_number, factors)`` canonical label, e.g. ``'07|ecog=0-1|histology=LMS'``.
``validate_spec(spec)``               raises ``ValueError`` naming the problem.
``generate_stratum(spec, stratum)``   the list of one stratum.
``generate_list(spec, strata)``       the lists of several strata, concatenated in order.
``imbalance(slots, arms)``            per arm: ``count * sum(weights) - n * weight``.

Imbalance is kept in exact integer units: ``count * W - n * w`` for an arm of weight ``w``,
``W`` the sum of weights and ``n`` the number of slots, i.e. ``W`` times the difference
between the observed and the expected count ``n * w / W``; no rounding is involved. It is 0
after every complete block. Inside a block of multiplier ``m`` it lies within
``+/- m * w * (W - w)``, the extremes being reached when the block starts with all of that
arm's ``m * w`` slots, or with all the others'. So, at every prefix of a stratum's list,
``|imbalance| <= max(block_multipliers) * w * (W - w)``, and this bound is tight.

Reproducibility and concealment
-------------------------------
A stratum's list depends only on ``(spec, stratum)``: the generator is
``random.Random(f"{seed}|{stratum}")``, never shared between strata, so adding, removing
or reordering other strata changes nothing. A ``str`` seed is hashed with SHA-512 into the
Mersenne Twister state (seeding "version 2", the default since Python 3.2), which does not
depend on ``PYTHONHASHSEED`` or the platform. Python only promises that ``random()`` keeps
its sequence across versions; ``choice`` and ``shuffle`` draw through ``getrandbits``
(``_randbelow``) and have not changed since 3.2. A 30-stratum, 15,000-slot list was checked
to be identical under CPython 3.7 to 3.13, and a known-answer test pins the output, so a
change in a future Python would be caught; the stored list, not the seed, stays the record.
A seed may not contain ``|``, so different ``(seed, stratum)`` pairs always give different
generator seeds.

``random`` is not cryptographically secure: the list is reproducible by anyone who knows
the seed, and its state could in principle be inferred from enough of its output.
Concealment therefore rests, as is standard practice, on the generated list being stored
server-side and never shown to anyone who enrols patients, and on the seed being kept by
the trial statistician (not in the eCRF's user interface) so the list can be regenerated
and verified at audit. Generate the seed itself with :mod:`secrets`: the empty default
seed yields a list anyone can reproduce.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

SEPARATOR = "|"


@dataclass(frozen=True)
class ArmWeight:
    """One arm: its code and integer allocation weight (1 and 1 for 1:1; 2 and 1 for 2:1)."""

    code: str
    weight: int


@dataclass(frozen=True)
class ListSpec:
    """What to generate. Block sizes are ``m * sum(weights)`` for ``m`` in block_multipliers."""

    arms: tuple[ArmWeight, ...]
    block_multipliers: tuple[int, ...] = (1, 2)
    slots_per_stratum: int = 100
    seed: str = ""


@dataclass(frozen=True)
class Slot:
    """One allocation: ``sequence`` and ``block`` are 1-based within the stratum."""

    stratum: str
    sequence: int
    arm: str
    block: int
    block_size: int


def stratum_key(site_number: str, factors: Mapping[str, str] | None = None) -> str:
    """Canonical stratum label: site number then factors sorted by name.

    ``stratum_key("07", {"histology": "LMS", "ecog": "0-1"}) == "07|ecog=0-1|histology=LMS"``.
    Values are used as given (no trimming or case folding). Raises ``ValueError`` for an
    empty site number or factor name, a ``|`` anywhere, or an ``=`` in a factor name, as
    these would make two different strata share a label.
    """
    if not site_number:
        raise ValueError("stratum_key: the site number is empty")
    parts = [site_number]
    for name, value in sorted((factors or {}).items()):
        if not name:
            raise ValueError("stratum_key: a stratification factor name is empty")
        if "=" in name:
            raise ValueError(f"stratum_key: factor name {name!r} contains '='")
        parts.append(f"{name}={value}")
    for part in parts:
        if SEPARATOR in part:
            raise ValueError(f"stratum_key: {part!r} contains the separator {SEPARATOR!r}")
    return SEPARATOR.join(parts)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_arms(arms: Sequence[ArmWeight]) -> None:
    if len(arms) < 2:
        raise ValueError(f"a randomisation list needs at least 2 arms, got {len(arms)}")
    codes = [arm.code for arm in arms]
    duplicates = sorted(code for code, count in Counter(codes).items() if count > 1)
    if duplicates:
        raise ValueError(f"arm codes must be unique; duplicated: {', '.join(duplicates)}")
    for arm in arms:
        if not isinstance(arm.code, str) or not arm.code:
            raise ValueError(f"arm code must be a non-empty string, got {arm.code!r}")
        if not _is_int(arm.weight) or arm.weight < 1:
            raise ValueError(
                f"arm {arm.code!r}: weight must be an integer >= 1, got {arm.weight!r}"
            )


def validate_spec(spec: ListSpec) -> None:
    """Raise ``ValueError`` with a clear message if ``spec`` cannot give a valid list."""
    _validate_arms(spec.arms)
    if not spec.block_multipliers:
        raise ValueError("block_multipliers is empty: give at least one, e.g. (1, 2)")
    bad = [m for m in spec.block_multipliers if not _is_int(m) or m < 1]
    if bad:
        raise ValueError(f"block multipliers must be integers >= 1, got {bad!r}")
    if not _is_int(spec.slots_per_stratum) or spec.slots_per_stratum < 1:
        raise ValueError(
            f"slots_per_stratum must be an integer >= 1, got {spec.slots_per_stratum!r}"
        )
    if not isinstance(spec.seed, str) or SEPARATOR in spec.seed:
        raise ValueError(f"seed must be a string without {SEPARATOR!r}, got {spec.seed!r}")
    if not _is_text(spec.seed):
        raise ValueError("seed must be valid Unicode text (no lone surrogates)")


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _block(arms: Sequence[ArmWeight], multiplier: int, rng: random.Random) -> list[str]:
    """One permuted block: each arm's code ``weight * multiplier`` times, shuffled."""
    codes = [arm.code for arm in arms for _ in range(arm.weight * multiplier)]
    rng.shuffle(codes)
    return codes


def generate_stratum(spec: ListSpec, stratum: str) -> tuple[Slot, ...]:
    """The ``spec.slots_per_stratum`` slots of one stratum (the last block may be cut short).

    Deterministic: the same spec (seed included) and stratum always give the same list.
    """
    validate_spec(spec)
    # Reproducible by design; concealment is by storage (see the module docstring).
    rng = random.Random(f"{spec.seed}{SEPARATOR}{stratum}")  # noqa: S311
    slots: list[Slot] = []
    block_number = 0
    while len(slots) < spec.slots_per_stratum:
        block_number += 1
        codes = _block(spec.arms, rng.choice(spec.block_multipliers), rng)
        room = spec.slots_per_stratum - len(slots)
        for code in codes[:room]:
            slots.append(Slot(stratum, len(slots) + 1, code, block_number, len(codes)))
    return tuple(slots)


def generate_list(spec: ListSpec, strata: Iterable[str]) -> tuple[Slot, ...]:
    """The lists of ``strata``, concatenated in the order given.

    Each stratum's list depends only on (spec, seed, stratum), not on which other strata
    are generated or their order. Raises ``ValueError`` if a stratum is given twice.
    """
    strata = list(strata)
    repeated = sorted(s for s, count in Counter(strata).items() if count > 1)
    if repeated:
        raise ValueError(f"strata given more than once: {', '.join(repeated)}")
    return tuple(slot for stratum in strata for slot in generate_stratum(spec, stratum))


def imbalance(slots: Sequence[Slot], arms: Sequence[ArmWeight]) -> dict[str, int]:
    """Per arm, ``count * sum(weights) - n * weight`` over ``slots`` (``n = len(slots)``).

    An exact integer: ``sum(weights)`` times (observed - expected count), so 0 means the
    slots follow the allocation ratio exactly. Raises ``ValueError`` for a slot whose arm
    is not among ``arms``. Slots of several strata may be pooled.
    """
    _validate_arms(arms)
    counts = Counter(slot.arm for slot in slots)
    unknown = sorted(set(counts) - {arm.code for arm in arms})
    if unknown:
        raise ValueError(f"slots allocate to arms not given: {', '.join(unknown)}")
    total_weight = sum(arm.weight for arm in arms)
    n = len(slots)
    return {arm.code: counts[arm.code] * total_weight - n * arm.weight for arm in arms}
