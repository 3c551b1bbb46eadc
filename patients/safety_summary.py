"""Toxicity summaries and the DLT stopping rule (pure Python, no Django).

Issue #6, parts 3 and 6. Adverse events are graded with the NCI Common Terminology Criteria
for Adverse Events (CTCAE) version 5.0 (27 November 2017): one term, one grade 1-5 per event.
A toxicity table counts *patients*, not events: for every term, each patient is counted once,
at the worst grade they had of that term (in the period the table covers), which is the usual
way CTCAE toxicity is reported ("number of patients with worst grade g").

Acute and late toxicity (issue #6 part 1) is derived, never stored: an event whose onset is
more than ``late_after_days`` (90 by default, per study) after the last delivered SBRT fraction
is late; every other event is acute, including events before or during SBRT and events of a
patient with no delivered fraction yet.

The DLT panel (issue #6 part 3): the safety run-in stops when the number of run-in patients
with at least one dose-limiting toxicity reaches the study's ``dlt_stop_count``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

ACUTE = "acute"
LATE = "late"
ANY_TIME = "any"
PHASES = (ANY_TIME, ACUTE, LATE)
GRADES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Event:
    """One adverse event, reduced to what the summaries need."""

    patient_id: int
    term: str
    soc: str
    grade: int
    onset_on: date
    dlt: bool = False


@dataclass(frozen=True)
class PatientInfo:
    """A patient of the summary's population: the group (arm name, or "" overall) and the day
    of the last delivered SBRT fraction (None when none was delivered)."""

    group: str = ""
    last_fraction_on: date | None = None


def phase_of(onset_on: date, last_fraction_on: date | None, late_after_days: int) -> str:
    """ACUTE or LATE: late when the onset is *more than* ``late_after_days`` after the last
    delivered fraction (exactly ``late_after_days`` after it is still acute)."""
    if last_fraction_on is None:
        return ACUTE
    return LATE if (onset_on - last_fraction_on).days > late_after_days else ACUTE


def worst_grades(events: Iterable[Event]) -> dict[tuple[int, str], int]:
    """The worst (highest) CTCAE grade of each (patient, term)."""
    worst: dict[tuple[int, str], int] = {}
    for event in events:
        if event.grade not in GRADES:
            raise ValueError(f"CTCAE v5.0 grades are 1 to 5, not {event.grade}")
        key = (event.patient_id, event.term)
        if event.grade > worst.get(key, 0):
            worst[key] = event.grade
    return worst


@dataclass(frozen=True)
class TermRow:
    soc: str
    term: str
    by_grade: tuple[int, int, int, int, int]  # patients whose worst grade of the term is 1..5

    @property
    def patients(self) -> int:
        return sum(self.by_grade)

    @property
    def grade3_plus(self) -> int:
        return sum(self.by_grade[2:])


@dataclass(frozen=True)
class ToxicityTable:
    group: str  # arm name, or "" for all patients together
    phase: str  # ANY_TIME, ACUTE or LATE
    population: int  # patients of the group (the denominator), with or without an event
    patients_with_event: int  # patients of the group with at least one event in the phase
    rows: tuple[TermRow, ...]


def term_rows(events: Iterable[Event]) -> tuple[TermRow, ...]:
    """Worst grade per patient per term, as counts per grade; by system organ class, then term."""
    events = list(events)
    soc_of = {e.term: e.soc for e in events}
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for (_patient, term), grade in worst_grades(events).items():
        counts[term][grade - 1] += 1
    return tuple(
        TermRow(soc=soc_of[term], term=term, by_grade=tuple(counts[term]))
        for term in sorted(counts, key=lambda t: (soc_of[t], t))
    )


def toxicity_tables(
    events: Iterable[Event],
    patients: Mapping[int, PatientInfo],
    *,
    late_after_days: int,
    by_group: bool,
) -> list[ToxicityTable]:
    """One table per group (arms when ``by_group``, else one overall group "") and per phase
    (any time, acute, late). Events of patients outside ``patients`` are ignored."""
    groups = sorted({p.group for p in patients.values()}) if by_group else [""]
    population = defaultdict(int)
    for info in patients.values():
        population[info.group if by_group else ""] += 1
    buckets: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for event in events:
        info = patients.get(event.patient_id)
        if info is None:
            continue
        group = info.group if by_group else ""
        buckets[(group, ANY_TIME)].append(event)
        buckets[(group, phase_of(event.onset_on, info.last_fraction_on, late_after_days))].append(
            event
        )
    return [
        ToxicityTable(
            group=group,
            phase=phase,
            population=population[group],
            patients_with_event=len({e.patient_id for e in buckets[(group, phase)]}),
            rows=term_rows(buckets[(group, phase)]),
        )
        for phase in PHASES
        for group in groups
    ]


@dataclass(frozen=True)
class DltStatus:
    run_in_size: int | None  # planned run-in patients (Study.run_in_size)
    run_in_patients: int  # run-in patients enrolled (that the reader can see)
    patients_with_dlt: int  # run-in patients with at least one DLT
    stop_count: int | None  # SafetyRules.dlt_stop_count

    @property
    def stopping_rule_met(self) -> bool:
        return self.stop_count is not None and self.patients_with_dlt >= self.stop_count

    @property
    def remaining_before_stop(self) -> int | None:
        if self.stop_count is None:
            return None
        return max(self.stop_count - self.patients_with_dlt, 0)


def dlt_status(
    run_in_patient_ids: Iterable[int],
    events: Iterable[Event],
    *,
    run_in_size: int | None,
    stop_count: int | None,
) -> DltStatus:
    """Count run-in patients with a DLT (a patient with two DLTs counts once)."""
    run_in = set(run_in_patient_ids)
    with_dlt = {e.patient_id for e in events if e.dlt and e.patient_id in run_in}
    return DltStatus(
        run_in_size=run_in_size,
        run_in_patients=len(run_in),
        patients_with_dlt=len(with_dlt),
        stop_count=stop_count,
    )
