"""The ATRA trial's primary endpoint: grade >= 2 lymphopenia 6 weeks after the end of SBRT.

Pure Python (standard library, :mod:`patients.stats`; no Django).  The Django layer gathers,
per patient, the arm, the day of the last delivered SBRT fraction and the lymphocyte counts
with their stored CTCAE grades, and shows what :func:`evaluate` and :func:`summarise` return.

Source
------
Seed 003 (NCT06439888, Gustave Roussy, SBRT +/- ATRA, phase I/II): "The expected rate of
patients who will have lymphopenia of grade 2 or higher in the control arm at 6 weeks
post-radiotherapy is 50%.  At a one-sided level of statistical significance of 0.07, the
randomization of 52 patients (26 patients in each arm) will provide 85% power to detect a
decrease in this rate to 15% in the SBRT+ATRA arm, using Fisher's exact test."  (The exact
power of that design, ``stats.fisher_power(26, 0.15, 26, 0.50, 0.07, "less")``, is 84.9 %.)

Rules (OligoCRF's reading; every choice is written here)
-------------------------------------------------------
* **Time zero** is the end of SBRT: the day of the patient's last *delivered* fraction.
* **Target day** = end of SBRT + ``day`` (``SafetyRules.lymphopenia_day``, 42 = 6 weeks);
  the **window** is the closed interval target +/- ``window_days``
  (``SafetyRules.lymphopenia_window_days``, 7).
* **Sample**: the lymphocyte count in the window closest to the target day.  On a tie (one
  sample ``k`` days before and one ``k`` days after) the **later** sample is used: the endpoint
  is lymphopenia *at* 6 weeks after radiotherapy, and the later sample is the one taken when
  the full 6 weeks have passed.  (Only one count per day exists: one result per sample date.)
* **Event**: CTCAE v5.0 "Lymphocyte count decreased" grade >= 2, i.e. < 0.8 x 10^9/L (< 800
  /mm3).  Grades 2-4 are absolute bands (``patients/ctcae.py``), so a count stored without a
  grade because the normal range is missing (0.8 x 10^9/L or more: grade 0 or 1) is still
  decided: no event.
* **Not evaluable** (with the reason): no delivered fraction; no count in a window that has
  closed; no count yet while the window is still open ("pending").  A patient with a count in
  a window that has not closed yet is evaluated and flagged *provisional* (a closer count
  could still be entered).
* **Comparison** (studies with two arms): only patients allocated in the randomised part
  (part II) enter Fisher's test; the safety run-in (part I) patients are evaluated and listed
  separately.  The table is ``[[events, non-events] of the experimental arm, [events,
  non-events] of the control arm]``; H1 (ATRA expected to *reduce* lymphopenia):
  rate(experimental) < rate(control), the ``less`` alternative (odds ratio < 1).  The
  experimental arm is the study's run-in arm (``Study.run_in_arm_code``: SBRT_ATRA); without
  one only the two-sided p-value is given, which is always shown beside the one-sided one.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Final

from patients import stats

__all__ = [
    "EVENT_BELOW",
    "ArmSummary",
    "Comparison",
    "Count",
    "Endpoint",
    "PatientData",
    "Reason",
    "Summary",
    "Window",
    "evaluate",
    "summarise",
]

#: Grade 2 lymphopenia begins below this count (x 10^9/L), CTCAE v5.0.
EVENT_BELOW: Final = Decimal("0.8")
EVENT_GRADE: Final = 2


class Reason(enum.Enum):
    NO_SBRT = "no_sbrt"  # no delivered SBRT fraction
    NO_SAMPLE = "no_sample"  # the window has closed without a lymphocyte count
    PENDING = "pending"  # the window has not closed yet and has no count


@dataclass(frozen=True)
class Window:
    day: int = 42  # days after the end of SBRT
    half_width: int = 7  # days either side

    def __post_init__(self) -> None:
        if self.day < 0 or self.half_width < 0:
            raise ValueError("the endpoint day and window must be >= 0")


@dataclass(frozen=True)
class Count:
    """One lymphocyte count: the stored value in 10^9/L and its stored CTCAE grade (or None)."""

    sampled_on: date
    value: Decimal  # x 10^9/L
    grade: int | None

    @property
    def event(self) -> bool:
        if self.grade is not None:
            return self.grade >= EVENT_GRADE
        return self.value < EVENT_BELOW  # ungraded only when >= LLN check needed: grade 0-1


@dataclass(frozen=True)
class PatientData:
    key: object  # the caller's identifier (e.g. a Patient)
    arm: str | None  # arm code; None when not allocated
    randomised: bool  # allocated in the randomised part (else run-in / single arm)
    sbrt_end: date | None
    counts: tuple[Count, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    patient: PatientData
    target: date | None
    window_start: date | None
    window_end: date | None
    count: Count | None
    reason: Reason | None
    provisional: bool = False

    @property
    def evaluable(self) -> bool:
        return self.count is not None

    @property
    def event(self) -> bool | None:
        return None if self.count is None else self.count.event


def _closest(counts: Iterable[Count], target: date, start: date, end: date) -> Count | None:
    in_window = [c for c in counts if start <= c.sampled_on <= end]
    # Closest to the target; on a tie the later sample (larger date sorts first with -ordinal).
    return min(
        in_window,
        key=lambda c: (abs((c.sampled_on - target).days), -c.sampled_on.toordinal()),
        default=None,
    )


def evaluate(patient: PatientData, window: Window, today: date) -> Endpoint:
    """The endpoint for one patient (see the module docstring for the rules)."""
    if patient.sbrt_end is None:
        return Endpoint(patient, None, None, None, None, Reason.NO_SBRT)
    target = patient.sbrt_end + timedelta(days=window.day)
    start = target - timedelta(days=window.half_width)
    end = target + timedelta(days=window.half_width)
    count = _closest(patient.counts, target, start, end)
    still_open = end >= today
    if count is None:
        reason = Reason.PENDING if still_open else Reason.NO_SAMPLE
        return Endpoint(patient, target, start, end, None, reason)
    return Endpoint(patient, target, start, end, count, None, provisional=still_open)


@dataclass(frozen=True)
class ArmSummary:
    arm: str
    endpoints: tuple[Endpoint, ...]

    @property
    def patients(self) -> int:
        return len(self.endpoints)

    @property
    def evaluable(self) -> int:
        return sum(1 for e in self.endpoints if e.evaluable)

    @property
    def events(self) -> int:
        return sum(1 for e in self.endpoints if e.event)

    @property
    def rate(self) -> Fraction | None:
        return Fraction(self.events, self.evaluable) if self.evaluable else None

    @property
    def not_evaluable(self) -> tuple[Endpoint, ...]:
        return tuple(e for e in self.endpoints if not e.evaluable)

    @property
    def provisional(self) -> int:
        return sum(1 for e in self.endpoints if e.provisional)


@dataclass(frozen=True)
class Comparison:
    experimental: str  # first row of the table
    control: str
    table: tuple[tuple[int, int], tuple[int, int]]
    fisher: stats.FisherResult
    directional: bool = True  # False: no experimental arm named, the one-sided test is moot

    @property
    def p_one_sided(self) -> Fraction | None:
        """H1: rate(experimental) < rate(control); None without a named experimental arm."""
        return self.fisher.p_less if self.directional else None

    @property
    def p_two_sided(self) -> Fraction:
        return self.fisher.p_two_sided


@dataclass(frozen=True)
class Summary:
    window: Window
    arms: tuple[ArmSummary, ...]  # randomised patients, per arm
    run_in: tuple[Endpoint, ...]  # non-randomised patients (safety run-in, single arm)
    comparison: Comparison | None
    unallocated: int = 0


def _table(experimental: ArmSummary, control: ArmSummary) -> tuple[tuple[int, int], ...]:
    return (
        (experimental.events, experimental.evaluable - experimental.events),
        (control.events, control.evaluable - control.events),
    )


def summarise(
    patients: Sequence[PatientData],
    window: Window,
    today: date,
    *,
    arms: Sequence[str],
    experimental: str | None = None,
) -> Summary:
    """Per-arm counts and, with exactly two arms, Fisher's test.

    ``arms`` lists the study's arm codes in display order; ``experimental`` is the arm H1
    expects to have fewer events (the other arm is the control).  Without it (or with an arm
    code not in ``arms``) only the two-sided test is meaningful: ``p_one_sided`` is None.
    """
    endpoints = [evaluate(p, window, today) for p in patients if p.arm is not None]
    by_arm = {
        arm: ArmSummary(
            arm, tuple(e for e in endpoints if e.patient.randomised and e.patient.arm == arm)
        )
        for arm in arms
    }
    run_in = tuple(e for e in endpoints if not e.patient.randomised)
    comparison = None
    if len(arms) == 2:
        directional = experimental in by_arm
        first = experimental if directional else arms[0]
        control = next(a for a in arms if a != first)
        table = _table(by_arm[first], by_arm[control])
        comparison = Comparison(first, control, table, stats.fisher_exact(table), directional)
    return Summary(
        window=window,
        arms=tuple(by_arm.values()),
        run_in=run_in,
        comparison=comparison,
        unallocated=sum(1 for p in patients if p.arm is None),
    )
