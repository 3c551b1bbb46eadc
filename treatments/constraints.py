"""Protocol rules for an SBRT course, checked on plain data (standard library only, no Django).

The rules come from the seed trials' registry pages (shared/seeds):

* STEREOSARC (NCT03548428): "Three fractions are proposed in favorable cases, 5 in more delicate
  cases ... the whole SBRT duration should not exceed 3 weeks"; "The maximal cumulative tumor
  diameter is 6 cm".
* SBRT +/- ATRA (NCT06439888): "SBRT to all lesions more than 1.5cm, on week days (from Monday to
  Friday), over a maximum of 2 weeks".
* GETUG-StORM-01 (NCT04299646) and STOP-2 (NCT06918951): every progressing lesion treated ("All
  progressive lesions have to be accessible to SRT", "SABR treatment to all sites of
  oligoprogression"); STOP-2's control arm: "8 Gy in 1 fraction to all sites of oligoprogression".

:func:`check_course` returns the breaches as :class:`Deviation` rows: the site is warned and
confirms (a real clinical fact is recorded, never silently blocked); the monitor sees them.
Deviations about the arm's prescription reveal the arm and are flagged ``arm_revealing``.
Hard input errors (a weekend fraction where forbidden, a dose per fraction over the limit) are
the caller's validation, not deviations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class Rules:
    allowed_fractions: frozenset[int] = frozenset()
    max_overall_days: int | None = None
    weekdays_only: bool = False
    max_cumulated_diameter_mm: Decimal | None = None
    min_treated_diameter_mm: Decimal | None = None
    all_progressing_lesions_treated: bool = False
    arm_prescription: tuple[Decimal, int] | None = None  # (total Gy, fractions) fixed by the arm


@dataclass(frozen=True)
class LesionFact:
    label: str
    diameter_mm: Decimal | None  # baseline diameter (None for a non-target)
    progressing: bool
    treated: bool  # has a prescription in this course


@dataclass(frozen=True)
class PrescriptionFact:
    lesion: str
    total_dose_gy: Decimal
    fractions: int


@dataclass(frozen=True)
class Deviation:
    rule: str
    message: str
    arm_revealing: bool = False


def overall_days(days: list[date]) -> int | None:
    """Overall treatment time in days, first to last delivered fraction inclusive."""
    return (max(days) - min(days)).days + 1 if days else None


def weekend_days(days: list[date]) -> list[date]:
    return sorted(d for d in days if d.weekday() >= 5)


def _fraction_rules(rules: Rules, prescriptions, delivered: list[date]) -> list[Deviation]:
    found = []
    if rules.allowed_fractions:
        allowed = ", ".join(str(n) for n in sorted(rules.allowed_fractions))
        for p in prescriptions:
            if p.fractions not in rules.allowed_fractions:
                found.append(
                    Deviation(
                        "fractions",
                        f"{p.lesion}: {p.fractions} fractions; the protocol allows {allowed}",
                    )
                )
    days = overall_days(delivered)
    if rules.max_overall_days and days and days > rules.max_overall_days:
        found.append(
            Deviation(
                "overall_time",
                f"overall treatment time {days} days > {rules.max_overall_days} days",
            )
        )
    return found


def _lesion_rules(rules: Rules, lesions: list[LesionFact]) -> list[Deviation]:
    found = []
    treated = [le for le in lesions if le.treated]
    if rules.max_cumulated_diameter_mm is not None:
        total = sum((le.diameter_mm or Decimal(0) for le in treated), Decimal(0))
        if total > rules.max_cumulated_diameter_mm:
            found.append(
                Deviation(
                    "cumulated_diameter",
                    f"treated lesions measure {total} mm together, more than "
                    f"{rules.max_cumulated_diameter_mm} mm",
                )
            )
    if rules.min_treated_diameter_mm is not None:
        missed = [
            le.label
            for le in lesions
            if not le.treated
            and le.diameter_mm is not None
            and le.diameter_mm > rules.min_treated_diameter_mm
        ]
        if missed:
            found.append(
                Deviation(
                    "untreated_large",
                    f"lesions above {rules.min_treated_diameter_mm} mm not "
                    f"treated: {', '.join(missed)}",
                )
            )
    if rules.all_progressing_lesions_treated:
        missed = [le.label for le in lesions if le.progressing and not le.treated]
        if missed:
            found.append(
                Deviation(
                    "untreated_progressing", f"progressing lesions not treated: {', '.join(missed)}"
                )
            )
    return found


def _arm_rules(rules: Rules, prescriptions) -> list[Deviation]:
    if rules.arm_prescription is None:
        return []
    total, fractions = rules.arm_prescription
    wrong = [
        p.lesion for p in prescriptions if (p.total_dose_gy, p.fractions) != (total, fractions)
    ]
    if not wrong:
        return []
    return [
        Deviation(
            "arm_prescription",
            f"{', '.join(wrong)}: not the arm's {total} Gy in {fractions} fraction(s)",
            arm_revealing=True,
        )
    ]


def check_course(
    rules: Rules,
    lesions: list[LesionFact],
    prescriptions: list[PrescriptionFact],
    delivered: list[date],
) -> list[Deviation]:
    """Every protocol rule the course breaks (empty when compliant)."""
    return (
        _fraction_rules(rules, prescriptions, delivered)
        + _lesion_rules(rules, lesions)
        + _arm_rules(rules, prescriptions)
    )
