"""Visit schedules applied to one patient: pure computation, no Django (issue #7, parts 1 and 2).

A study's schedule is a list of :class:`Definition` (``studies.VisitDefinition`` as plain data):
a visit falls ``offset_days`` after an anchor event (enrolment, randomisation, first or last SBRT
fraction, progression), with a window of ``window_before_days`` / ``window_after_days`` around
its due date.  A repeated definition recurs every ``repeat_every_days`` from its first
occurrence while the due date is no later than ``anchor + repeat_until_days`` and, with
``until_progression``, strictly before the patient's progression.  "Imaging every 8 weeks until
progression, then every 12 weeks" is two definitions, the second anchored at progression.

Rules (issue #7):

* an anchor the patient has not reached (no date yet) gives no occurrence;
* occurrences due after the patient went off study are *not applicable*;
* a repeat bounded by progression only, whose patient has not progressed, is generated up to
  :data:`OPEN_ENDED_DAYS` after its anchor (and never more than :data:`MAX_OCCURRENCES`):
  follow-up visits of an open-ended schedule stop somewhere, and five years is beyond the
  follow-up of every seed trial.

Whether a visit is upcoming, due, overdue, done, missed or not applicable is :func:`status`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

ENROLMENT = "enrolment"
RANDOMISATION = "randomisation"
SBRT_START = "sbrt_start"
SBRT_END = "sbrt_end"
PROGRESSION = "progression"
ANCHORS = (ENROLMENT, RANDOMISATION, SBRT_START, SBRT_END, PROGRESSION)

#: How far an open-ended ("until progression") repeat is planned when progression is unknown.
OPEN_ENDED_DAYS = 5 * 365
#: Safety cap on the occurrences of one definition.
MAX_OCCURRENCES = 200

# Stored states (PlannedVisit.State) and derived statuses.
PLANNED = "planned"
DONE = "done"
MISSED = "missed"
NOT_APPLICABLE = "na"
UPCOMING = "upcoming"
DUE = "due"
OVERDUE = "overdue"


@dataclass(frozen=True)
class Definition:
    """One visit of a study's schedule (``key`` identifies it, e.g. the VisitDefinition pk)."""

    key: Hashable
    anchor: str
    offset_days: int
    window_before_days: int = 0
    window_after_days: int = 0
    repeat_every_days: int | None = None
    repeat_until_days: int | None = None
    until_progression: bool = False


@dataclass(frozen=True)
class Anchors:
    """A patient's anchor events and end of study (None: not happened, or not recorded)."""

    enrolment: date | None = None
    randomisation: date | None = None
    sbrt_start: date | None = None
    sbrt_end: date | None = None
    progression: date | None = None
    off_study: date | None = None

    def date_of(self, anchor: str) -> date | None:
        if anchor not in ANCHORS:
            raise ValueError(f"unknown anchor event: {anchor!r}")
        return getattr(self, anchor)


@dataclass(frozen=True)
class Occurrence:
    key: Hashable  # the definition's key
    occurrence: int  # 1, 2, ... within the definition
    due_on: date
    window_start: date
    window_end: date
    applicable: bool = True  # False: due after the patient went off study

    def contains(self, day: date) -> bool:
        return self.window_start <= day <= self.window_end


def _check(definition: Definition) -> None:
    if definition.window_before_days < 0 or definition.window_after_days < 0:
        raise ValueError(f"{definition.key}: a window cannot be negative")
    if definition.repeat_every_days is not None and definition.repeat_every_days <= 0:
        raise ValueError(f"{definition.key}: the repeat interval must be at least 1 day")


def _last_due(definition: Definition, anchor_day: date, progression: date | None) -> date | None:
    """The latest due date a repeat may reach (inclusive); None: no bound at all."""
    bounds = []
    if definition.repeat_until_days is not None:
        bounds.append(anchor_day + timedelta(days=definition.repeat_until_days))
    if definition.until_progression and progression is not None:
        bounds.append(progression - timedelta(days=1))  # strictly before progression
    if bounds:
        return min(bounds)
    return None


def occurrences(definition: Definition, anchors: Anchors) -> list[Occurrence]:
    """The occurrences of one definition for one patient, in date order."""
    _check(definition)
    anchor_day = anchors.date_of(definition.anchor)
    if anchor_day is None:
        return []
    first = anchor_day + timedelta(days=definition.offset_days)
    every = definition.repeat_every_days
    if every is None:
        dues = [first]
        if (
            definition.until_progression
            and anchors.progression is not None
            and first >= anchors.progression
        ):
            dues = []
    else:
        last = _last_due(definition, anchor_day, anchors.progression)
        if last is None:
            last = anchor_day + timedelta(days=OPEN_ENDED_DAYS)
        dues, day = [], first
        while day <= last and len(dues) < MAX_OCCURRENCES:
            dues.append(day)
            day += timedelta(days=every)
    before = timedelta(days=definition.window_before_days)
    after = timedelta(days=definition.window_after_days)
    return [
        Occurrence(
            key=definition.key,
            occurrence=number,
            due_on=due,
            window_start=due - before,
            window_end=due + after,
            applicable=anchors.off_study is None or due <= anchors.off_study,
        )
        for number, due in enumerate(dues, start=1)
    ]


def plan(definitions: Iterable[Definition], anchors: Anchors) -> list[Occurrence]:
    """Every occurrence of every definition, ordered by due date."""
    planned = [occ for definition in definitions for occ in occurrences(definition, anchors)]
    return sorted(planned, key=lambda occ: (occ.due_on, str(occ.key), occ.occurrence))


def match(windows: Sequence[tuple[date, date, date]], days: Iterable[date]) -> list[date | None]:
    """For each (window start, due date, window end), the recorded day that fulfils it, or None.

    A day (e.g. a scan date) fulfils at most one window of the list (the list is one
    definition's occurrences); each window, earlier ones first, takes the free day of its window
    closest to its due date.
    """
    free = sorted(set(days))
    found: list[date | None] = []
    for start, due, end in windows:
        inside = [day for day in free if start <= day <= end]
        if not inside:
            found.append(None)
            continue
        best = min(inside, key=lambda day: (abs((day - due).days), day))
        free.remove(best)
        found.append(best)
    return found


def status(state: str, window_start: date, window_end: date, today: date) -> str:
    """upcoming / due (today in the window) / overdue (window passed) / done / missed / na."""
    if state != PLANNED:
        return state
    if today < window_start:
        return UPCOMING
    if today <= window_end:
        return DUE
    return OVERDUE
