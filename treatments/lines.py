"""Lines of systemic therapy for metastatic disease, their checks and their endpoints.

Pure Python (standard library only, no Django): the Django layer builds
:class:`SystemicLine` records from the eCRF and shows what these functions return.

Sources
-------
* GETUG-StORM-01, ClinicalTrials.gov NCT04299646 (seed 000), brief summary: SBRT of
  oligoprogressive RCC "under ongoing systemic treatment, and consequently delay
  subsequent systemic treatment"; the strategy aims "to prolong ongoing systemic
  treatment and delay further lines" (the sponsor's retrospective series "allowed to
  continue current systemic line for 10.5 months").  Hence :func:`time_to_next_line`
  and :func:`time_on_line_after`, both from the first SBRT fraction.  Inclusion 4:
  "Patients treated in first or second line systemic therapy"; exclusion 3: "3 or more
  lines of systemic therapy".
* STOP-2, ClinicalTrials.gov NCT06918951 (seed 004), primary objective:
  "Progression-free survival on next line systemic therapy (PFS-NEST)"; secondary
  objectives: overall survival, PFS, and "the time to initiation of the next line of
  systemic therapy".  Hence :func:`pfs_nest` and :func:`time_to_next_line`.
* STEREOSARC, NCT03548428 (seed 002), inclusion: "First or second metastatic line":
  lines are counted in the metastatic setting.
* US FDA, Guidance for Industry "Clinical Trial Endpoints for the Approval of Cancer
  Drugs and Biologics" (December 2018): PFS is the time until objective tumour
  progression or death (deaths count, unlike time to progression); time to treatment
  failure (TTF) is a composite of treatment discontinuation for any reason, including
  progression, toxicity and death.  The guidance does not define time to next
  treatment; how deaths count there is this module's choice (``death_is_event``).

Line numbers (:func:`derive_numbers`)
-------------------------------------
The caller passes every line given for metastatic disease, and only those
(adjuvant or neoadjuvant treatment of the primary is not entered).  The derived number
of a line is its rank by start date, 1-based: the first line started for metastatic
disease is line 1.  One record is one line: the engine does not merge records (some
line-of-therapy rules keep an agent swapped for toxicity in the same line; enter such a
change inside the line's ``agents``).  Lines starting the same day (an error, see
:func:`validate_lines`) are ranked by their entered number, then by input order.

Checks (:func:`validate_lines`)
-------------------------------
Each :class:`LineIssue` carries a stable :class:`LineIssueCode`, the input position
of the line it is about, and an English message.  Date codes (:data:`DATE_CODES`):
an end before the start; two lines starting the same day; a line starting while an
earlier one has no end date; a line starting before an earlier line ended.  A line may
start on the day the previous one ended (same-day switch).  Other codes: an entered
number that differs from the derived one; an end date without a stop reason; a stop
reason without an end date.

Endpoints
---------
Results are :class:`TimeToEvent`: ``days`` = ``date - origin`` in whole days (same
day = 0).  ``last_contact`` is the last date on which the patient's systemic treatment,
disease status and vital status are known (last visit, call or record review; the
date of death or later for a patient who died).  A patient lost to follow-up is
censored at ``last_contact``.  Refused with ``ValueError``: ``last_contact`` before
``origin``; ``death`` before ``origin`` or after ``last_contact`` (the history between
them would be unknown; pass ``last_contact`` >= death if it is complete, or leave the
death out to censor at the last contact); a line date or progression after
``last_contact`` or after ``death``; and any date issue in the lines, since the answer
would be ambiguous (number and stop-reason issues do not change dates and are allowed).

The current line is the line started before the origin (the first SBRT fraction) and
not ended before it.  The next line is the first line started on or after the origin:
a line started the day SBRT began was not delayed by it (0 days).  On a same-day switch
:func:`line_at` gives the new line: it is the one ongoing from that day on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from operator import attrgetter
from typing import Final

__all__ = [
    "DATE_CODES",
    "EVENT_STOP_REASONS",
    "LineIssue",
    "LineIssueCode",
    "StopReason",
    "SystemicLine",
    "TimeToEvent",
    "derive_numbers",
    "line_at",
    "line_label",
    "pfs_nest",
    "time_on_line_after",
    "time_to_next_line",
    "validate_lines",
]


class StopReason(StrEnum):
    """Why a line ended (the eCRF's vocabulary)."""

    PROGRESSION = "progression"
    TOXICITY = "toxicity"
    PATIENT_CHOICE = "patient_choice"
    COMPLETED = "completed"
    OTHER = "other"


#: Stop reasons that end :func:`time_on_line_after` with an event (the line failed).
EVENT_STOP_REASONS: Final = frozenset(
    {StopReason.PROGRESSION, StopReason.TOXICITY, StopReason.PATIENT_CHOICE, StopReason.OTHER}
)


class LineIssueCode(StrEnum):
    """Stable codes of :class:`LineIssue` (stored and matched by forms; never rename)."""

    END_BEFORE_START = "end_before_start"
    SAME_START = "same_start"
    PREVIOUS_NOT_ENDED = "previous_not_ended"
    OVERLAP = "overlap"
    NUMBER_MISMATCH = "number_mismatch"
    MISSING_STOP_REASON = "missing_stop_reason"
    STOP_REASON_WITHOUT_END = "stop_reason_without_end"


#: Issues that make the order of lines, hence every endpoint, ambiguous.
DATE_CODES: Final = frozenset(
    {
        LineIssueCode.END_BEFORE_START,
        LineIssueCode.SAME_START,
        LineIssueCode.PREVIOUS_NOT_ENDED,
        LineIssueCode.OVERLAP,
    }
)


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------


def _check_date(name: str, value: object) -> date:
    """A calendar date; ``TypeError`` for a datetime (it cannot be compared with a date)."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{name} must be a datetime.date, got {type(value).__name__}")
    return value


def _check_number(number: object) -> None:
    if number is None:
        return
    if isinstance(number, bool) or not isinstance(number, int):
        raise TypeError(f"line_number must be an int or None, got {number!r}")
    if number < 1:
        raise ValueError(f"line_number must be at least 1, got {number}")


def _check_stop_reason(value: object) -> StopReason:
    if not isinstance(value, str):
        raise TypeError(f"stop_reason must be a str or None, got {value!r}")
    try:
        return StopReason(value)
    except ValueError:
        allowed = ", ".join(reason.value for reason in StopReason)
        raise ValueError(f"stop_reason must be one of {allowed}, got {value!r}") from None


def _check_agents(agents: object) -> tuple[str, ...]:
    if not isinstance(agents, tuple) or not all(isinstance(a, str) for a in agents):
        raise TypeError(f"agents must be a tuple of str, got {agents!r}")
    if any(not agent.strip() for agent in agents):
        raise ValueError(f"agents must not hold blank names, got {agents!r}")
    return agents


@dataclass(frozen=True)
class SystemicLine:
    """One line of systemic therapy as entered: ``end`` and ``stop_reason`` empty while ongoing.

    ``line_number`` is the number entered on the form (``None`` if not entered); it must
    be >= 1.  ``stop_reason`` is one of :class:`StopReason` (stored as that member).
    An end before the start is accepted here and reported by :func:`validate_lines`.
    """

    line_number: int | None
    start: date
    end: date | None = None
    stop_reason: str | None = None
    agents: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_number(self.line_number)
        _check_date("start", self.start)
        if self.end is not None:
            _check_date("end", self.end)
        if self.stop_reason is not None:
            object.__setattr__(self, "stop_reason", _check_stop_reason(self.stop_reason))
        _check_agents(self.agents)


@dataclass(frozen=True)
class LineIssue:
    """A problem in a patient's lines: ``index`` is the line's position in the input."""

    code: LineIssueCode
    index: int
    message: str


@dataclass(frozen=True)
class TimeToEvent:
    """An endpoint for one patient: ``event`` on ``date``, or censored on ``date``.

    ``days`` runs from the endpoint's origin to ``date`` (same day = 0); ``reason`` says
    which event happened or why the patient is censored.
    """

    event: bool
    date: date
    days: int
    reason: str

    def __post_init__(self) -> None:
        if self.days < 0:
            raise ValueError(f"days must not be negative, got {self.days}")


def _check_lines(lines: Iterable[SystemicLine]) -> tuple[SystemicLine, ...]:
    if isinstance(lines, SystemicLine):
        raise TypeError("lines must be a sequence of SystemicLine, got one SystemicLine")
    checked = tuple(lines)
    for position, line in enumerate(checked):
        if not isinstance(line, SystemicLine):
            raise TypeError(f"lines[{position}] must be a SystemicLine, got {type(line).__name__}")
    return checked


# ---------------------------------------------------------------------------
# Numbering and checks
# ---------------------------------------------------------------------------


def _start_order(lines: tuple[SystemicLine, ...]) -> tuple[int, ...]:
    """Input positions by start date; ties by entered number (missing last), then position."""

    def key(position: int) -> tuple[date, bool, int, int]:
        line = lines[position]
        return (line.start, line.line_number is None, line.line_number or 0, position)

    return tuple(sorted(range(len(lines)), key=key))


def _numbers(order: tuple[int, ...]) -> tuple[int, ...]:
    numbers = [0] * len(order)
    for rank, position in enumerate(order, start=1):
        numbers[position] = rank
    return tuple(numbers)


def derive_numbers(lines: Iterable[SystemicLine]) -> tuple[int, ...]:
    """Derived line numbers, aligned with ``lines``: the rank by start date, 1-based.

    Counted from the first line entered for metastatic disease (StORM-01 inclusion 4,
    "first or second line systemic therapy"; STEREOSARC "First or second metastatic
    line").  E.g. lines started 2023-05-01, 2021-02-01, 2022-03-01 -> (3, 1, 2).
    """
    return _numbers(_start_order(_check_lines(lines)))


def line_label(line: SystemicLine, number: int) -> str:
    """How messages name a line: ``"line 2 (started 2024-03-01)"``."""
    return f"line {number} (started {line.start.isoformat()})"


def _record_issues(lines: tuple[SystemicLine, ...], numbers: tuple[int, ...]) -> list[LineIssue]:
    """Issues within one record: its own dates, number and stop reason."""
    issues = []
    for position, line in enumerate(lines):
        label = line_label(line, numbers[position])
        if line.end is not None and line.end < line.start:
            text = f"{label} ends on {line.end.isoformat()}, before it starts"
            issues.append(LineIssue(LineIssueCode.END_BEFORE_START, position, text))
        if line.line_number is not None and line.line_number != numbers[position]:
            text = (
                f"{label} is entered as line {line.line_number} but is line "
                f"{numbers[position]} by start date"
            )
            issues.append(LineIssue(LineIssueCode.NUMBER_MISMATCH, position, text))
        if line.end is not None and line.stop_reason is None:
            text = f"{label} has an end date but no stop reason"
            issues.append(LineIssue(LineIssueCode.MISSING_STOP_REASON, position, text))
        if line.end is None and line.stop_reason is not None:
            text = f"{label} has a stop reason ({line.stop_reason}) but no end date"
            issues.append(LineIssue(LineIssueCode.STOP_REASON_WITHOUT_END, position, text))
    return issues


def _sequence_issue(
    lines: tuple[SystemicLine, ...], numbers: tuple[int, ...], position: int, earlier: int
) -> LineIssue | None:
    """The issue of ``position`` against the earlier line that ends last, if any."""
    line, before = lines[position], lines[earlier]
    label, before_label = line_label(line, numbers[position]), line_label(before, numbers[earlier])
    if before.end is None:
        text = f"{label} starts while {before_label} has no end date"
        return LineIssue(LineIssueCode.PREVIOUS_NOT_ENDED, position, text)
    if line.start < before.end:
        text = f"{label} starts before {before_label} ended on {before.end.isoformat()}"
        return LineIssue(LineIssueCode.OVERLAP, position, text)
    return None


def _order_issues(
    lines: tuple[SystemicLine, ...], order: tuple[int, ...], numbers: tuple[int, ...]
) -> list[LineIssue]:
    """Same start day, or a start before an earlier line ended (same-day switch allowed)."""
    issues: list[LineIssue] = []
    for rank in range(1, len(order)):
        position, previous = order[rank], order[rank - 1]
        if lines[position].start == lines[previous].start:
            label = line_label(lines[position], numbers[position])
            other = line_label(lines[previous], numbers[previous])
            text = f"{label} starts on the same day as {other}"
            issues.append(LineIssue(LineIssueCode.SAME_START, position, text))
            continue
        latest = max(order[:rank], key=lambda p: (lines[p].end is None, lines[p].end or date.min))
        issue = _sequence_issue(lines, numbers, position, latest)
        if issue is not None:
            issues.append(issue)
    return issues


def validate_lines(lines: Iterable[SystemicLine]) -> tuple[LineIssue, ...]:
    """Every issue in a patient's lines, ordered by input position (empty when clean).

    Codes: see :class:`LineIssueCode` and the module docstring.  A new line may start on
    the day the previous one ended (same-day switch); starting earlier is an overlap.
    """
    checked = _check_lines(lines)
    order = _start_order(checked)
    numbers = _numbers(order)
    issues = _record_issues(checked, numbers) + _order_issues(checked, order, numbers)
    return tuple(sorted(issues, key=attrgetter("index")))


def line_at(lines: Iterable[SystemicLine], day: date) -> SystemicLine | None:
    """The line ongoing on ``day``: start <= day and (no end or day <= end); else ``None``.

    On a same-day switch (one line ends on ``day``, the next starts on it) the new line.
    ``ValueError`` when lines overlap on ``day`` in any other way.
    """
    checked = _check_lines(lines)
    _check_date("day", day)
    ongoing = [
        line for line in checked if line.start <= day and (line.end is None or day <= line.end)
    ]
    if len(ongoing) == 2:
        old, new = sorted(ongoing, key=attrgetter("start"))
        if old.start < day and old.end == day and new.start == day:
            ongoing = [new]  # same-day switch
    if len(ongoing) > 1:
        raise ValueError(f"{len(ongoing)} lines are ongoing on {day.isoformat()}; fix the overlap")
    return ongoing[0] if ongoing else None


# ---------------------------------------------------------------------------
# Endpoints
# ---------------------------------------------------------------------------


def _check_follow_up(origin: date, last_contact: date, death: date | None) -> None:
    _check_date("origin", origin)
    _check_date("last_contact", last_contact)
    if last_contact < origin:
        raise ValueError(
            f"last contact {last_contact.isoformat()} is before the origin {origin.isoformat()}"
        )
    if death is None:
        return
    _check_date("death", death)
    if death < origin:
        raise ValueError(f"death {death.isoformat()} is before the origin {origin.isoformat()}")
    if death > last_contact:
        raise ValueError(
            f"death {death.isoformat()} is after the last contact {last_contact.isoformat()}: "
            "pass the date up to which the history is known as last_contact, or no death"
        )


def _check_not_after(
    lines: tuple[SystemicLine, ...], progressions: tuple[date, ...], limit: date, name: str
) -> None:
    """No date is recorded after the end of follow-up (death or last contact)."""
    for number, line in enumerate(lines, start=1):
        for field, value in (("start", line.start), ("end", line.end)):
            if value is not None and value > limit:
                raise ValueError(
                    f"{line_label(line, number)} has its {field} {value.isoformat()} after "
                    f"the {name} {limit.isoformat()}"
                )
    for value in progressions:
        if value > limit:
            raise ValueError(
                f"progression on {value.isoformat()} is after the {name} {limit.isoformat()}"
            )


def _history(
    lines: Iterable[SystemicLine],
    origin: date,
    last_contact: date,
    death: date | None,
    progressions: Iterable[date] = (),
) -> tuple[SystemicLine, ...]:
    """The lines in start order, after refusing inconsistent follow-up (module docstring)."""
    checked = _check_lines(lines)
    _check_follow_up(origin, last_contact, death)
    dated = tuple(_check_date("progression", value) for value in progressions)
    blocking = [issue.message for issue in validate_lines(checked) if issue.code in DATE_CODES]
    if blocking:
        raise ValueError("the lines must be fixed first: " + "; ".join(blocking))
    ordered = tuple(checked[position] for position in _start_order(checked))
    limit, name = (death, "death") if death is not None else (last_contact, "last contact")
    _check_not_after(ordered, dated, limit, name)
    return ordered


def _current(ordered: tuple[SystemicLine, ...], origin: date) -> tuple[int, SystemicLine] | None:
    """(number, line) started before ``origin`` and not ended before it."""
    for number, line in enumerate(ordered, start=1):
        if line.start < origin and (line.end is None or line.end >= origin):
            return number, line
    return None


def _next(ordered: tuple[SystemicLine, ...], origin: date) -> tuple[int, SystemicLine] | None:
    """(number, line) of the first line started on or after ``origin``."""
    for number, line in enumerate(ordered, start=1):
        if line.start >= origin:
            return number, line
    return None


def _result(event: bool, origin: date, day: date, reason: str) -> TimeToEvent:
    return TimeToEvent(event, day, (day - origin).days, reason)


def time_on_line_after(
    lines: Iterable[SystemicLine],
    origin: date,
    *,
    last_contact: date,
    death: date | None = None,
    completed_is_event: bool = False,
) -> TimeToEvent | None:
    """Time on the current line from ``origin`` (first SBRT fraction) until it fails.

    StORM-01 (NCT04299646): SBRT aims "to prolong ongoing systemic treatment".  ``None``
    when no line was ongoing at the origin (the patient does not enter this analysis).
    Event: the line stopped for progression, toxicity, patient choice or other reason
    (discontinuation for any reason, as in the FDA's time to treatment failure), or the
    patient died on a line without an end date.  Censored: at ``last_contact`` while the
    line is ongoing; at the line's end when it stopped as ``completed`` (a planned end
    is no failure), unless ``completed_is_event``.  ``ValueError`` for an ended line
    without a stop reason.
    """
    ordered = _history(lines, origin, last_contact, death)
    found = _current(ordered, origin)
    if found is None:
        return None
    number, line = found
    label = line_label(line, number)
    if line.end is None and death is not None:
        return _result(True, origin, death, f"death on {death.isoformat()} while on {label}")
    if line.end is None:
        return _result(False, origin, last_contact, f"{label} ongoing at last contact")
    if line.stop_reason is None:
        raise ValueError(f"{label} ended on {line.end.isoformat()} without a stop reason")
    ended = f"{label} stopped ({line.stop_reason}) on {line.end.isoformat()}"
    if line.stop_reason == StopReason.COMPLETED and not completed_is_event:
        return _result(False, origin, line.end, f"{ended}: completed as planned, censored")
    return _result(True, origin, line.end, ended)


def time_to_next_line(
    lines: Iterable[SystemicLine],
    origin: date,
    *,
    last_contact: date,
    death: date | None = None,
    death_is_event: bool = True,
) -> TimeToEvent:
    """Time from ``origin`` (first SBRT fraction) to the start of the next systemic line.

    StORM-01 (NCT04299646): "delay subsequent systemic treatment"; STOP-2 (NCT06918951):
    "time to initiation of the next line of systemic therapy".  The next line is the
    first started on or after the origin.  Death before a next line is an event when
    ``death_is_event`` (time to next treatment or death, so that dying early does not
    look like a long delay), else the patient is censored at death.  No next line and
    no death: censored at ``last_contact`` (still followed, or lost to follow-up).
    """
    ordered = _history(lines, origin, last_contact, death)
    found = _next(ordered, origin)
    if found is not None:
        number, line = found
        reason = f"{line_label(line, number)} is the next line"
        return _result(True, origin, line.start, reason)
    if death is not None:
        reason = f"death on {death.isoformat()} before any next line"
        if death_is_event:
            return _result(True, origin, death, reason)
        return _result(False, origin, death, f"{reason}; deaths are not events: censored")
    reason = f"no next line by last contact on {last_contact.isoformat()}"
    return _result(False, origin, last_contact, reason)


def _check_progression_recorded(
    line: SystemicLine, number: int, progressions: tuple[date, ...]
) -> None:
    """A next line stopped for progression needs a progression dated within it."""
    if line.stop_reason != StopReason.PROGRESSION or line.end is None:
        return
    end = line.end
    if not any(line.start < value <= end for value in progressions):
        raise ValueError(
            f"{line_label(line, number)} stopped for progression on {end.isoformat()} "
            "but no progression is recorded after its start and by its end"
        )


def pfs_nest(
    lines: Iterable[SystemicLine],
    origin: date,
    progressions: Sequence[date],
    *,
    last_contact: date,
    death: date | None = None,
) -> TimeToEvent | None:
    """STOP-2's PFS-NEST: from the start of the next line to progression or death.

    STOP-2 (NCT06918951) primary objective: "Progression-free survival on next line
    systemic therapy (PFS-NEST)"; PFS counts progression or death, whichever first
    (FDA 2018).  The next line is the first started on or after ``origin`` (first SBRT
    fraction); without one, ``None``: the patient does not enter the PFS-NEST analysis.
    Only progressions after the next line's start count: earlier ones, including one
    dated the day it starts (the progression that led to it), are ignored.  A later line
    change does not stop follow-up.  No event: censored at ``last_contact``.  Days run
    from the next line's start.
    """
    recorded = tuple(progressions)
    ordered = _history(lines, origin, last_contact, death, recorded)
    found = _next(ordered, origin)
    if found is None:
        return None
    number, line = found
    label = line_label(line, number)
    _check_progression_recorded(line, number, recorded)
    on_line = [value for value in recorded if value > line.start]
    progression = min(on_line) if on_line else None
    if progression is not None and (death is None or progression <= death):
        reason = f"progression on {progression.isoformat()} after the start of {label}"
        return _result(True, line.start, progression, reason)
    if death is not None:
        return _result(True, line.start, death, f"death on {death.isoformat()} on {label}")
    reason = f"no progression or death since the start of {label} by last contact"
    return _result(False, line.start, last_contact, reason)
