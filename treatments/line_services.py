"""Recording systemic therapy lines and deriving their endpoints (engine: treatments/lines.py).

A line is written in one transaction with its agents.  Every issue the engine finds about the
line being saved (an end before the start, the same start day as another line, a start while an
earlier line is ongoing or before it ended, an entered number that differs from the number its
start date gives, an end without a reason for stopping or the reverse) is refused with a
translated message keyed to the field to fix, and nothing is saved.  Issues that saving this
line creates on other saved lines' dates are refused too.  A saved line whose entered number
became stale because an earlier line was added later is only warned about on the list page.

:func:`patient_endpoints` reads a patient's lines, SBRT fractions, scans, response and vital
status in a constant number of queries and runs the StORM-01 / STOP-2 endpoints from the first
delivered SBRT fraction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date

from django.contrib.postgres.aggregates import ArrayAgg
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import OuterRef, Prefetch, Subquery
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from lesions.models import ImagingAssessment, PatientResponse
from patients.models import Patient
from studies.audit import reason_for_change
from treatments import lines
from treatments.lines import LineIssueCode
from treatments.models import Agent, Fraction, LineAgent, SystemicLine

#: Average month length used to show durations in months (365.25 / 12 days).
DAYS_PER_MONTH = 30.4375


def _day(value: date) -> str:
    return date_format(value, "SHORT_DATE_FORMAT")


def _pure(line: SystemicLine, agent_names: Iterable[str]) -> lines.SystemicLine:
    """The engine's record of a saved (or about to be saved) line."""
    return lines.SystemicLine(
        line_number=line.line_number,
        start=line.start,
        end=line.end,
        stop_reason=line.stop_reason or None,
        agents=tuple(agent_names),
    )


# ---------------------------------------------------------------------------
# Messages (the engine's English texts are never shown)
# ---------------------------------------------------------------------------


def _same_start_other(pure: list[lines.SystemicLine], position: int) -> int:
    start = pure[position].start
    return next(q for q, line in enumerate(pure) if q != position and line.start == start)


def _earlier_ending_last(pure: list[lines.SystemicLine], position: int) -> int:
    """The earlier line that ends last (no end: last of all), as the engine compares it."""
    start = pure[position].start
    earlier = [q for q, line in enumerate(pure) if line.start < start]
    return max(earlier, key=lambda q: (pure[q].end is None, pure[q].end or date.min))


def issue_message(
    issue: lines.LineIssue, pure: list[lines.SystemicLine], numbers: tuple[int, ...]
) -> tuple[str, str]:
    """(form field, translated message) for an issue about the line at ``issue.index``."""
    line = pure[issue.index]
    code = issue.code
    if code == LineIssueCode.END_BEFORE_START:
        return "end", _("The end cannot be before the start.")
    if code == LineIssueCode.SAME_START:
        other = _same_start_other(pure, issue.index)
        return "start", _(
            "Line %(n)s also starts on %(day)s: two lines cannot start the same day."
        ) % {"n": numbers[other], "day": _day(line.start)}
    if code == LineIssueCode.PREVIOUS_NOT_ENDED:
        other = _earlier_ending_last(pure, issue.index)
        return "start", _(
            "This line starts while line %(n)s (started %(day)s) has no end date: "
            "enter the end of line %(n)s first."
        ) % {"n": numbers[other], "day": _day(pure[other].start)}
    if code == LineIssueCode.OVERLAP:
        other = _earlier_ending_last(pure, issue.index)
        return "start", _(
            "This line starts before line %(n)s (started %(day)s) ended on %(end)s. "
            "A new line may start on the day the previous one ended, not before."
        ) % {"n": numbers[other], "day": _day(pure[other].start), "end": _day(pure[other].end)}
    if code == LineIssueCode.NUMBER_MISMATCH:
        return "line_number", _(
            "Entered as line %(entered)s, but by start date this is line %(derived)s."
        ) % {"entered": line.line_number, "derived": numbers[issue.index]}
    if code == LineIssueCode.MISSING_STOP_REASON:
        return "stop_reason", _("The line has an end date: give the reason for stopping.")
    if code == LineIssueCode.STOP_REASON_WITHOUT_END:
        return "stop_reason", _(
            "A reason for stopping needs an end date; leave it empty while the line is ongoing."
        )
    return NON_FIELD_ERRORS, _("The lines are inconsistent.")


def _caused_message(
    issue: lines.LineIssue, pure: list[lines.SystemicLine], numbers: tuple[int, ...], saving: int
) -> tuple[str, str]:
    """(field, message) for a date issue that saving line ``saving`` creates on another line."""
    other = pure[issue.index]
    values = {"n": numbers[issue.index], "day": _day(other.start)}
    about_saving = (
        issue.code in (LineIssueCode.PREVIOUS_NOT_ENDED, LineIssueCode.OVERLAP)
        and _earlier_ending_last(pure, issue.index) == saving
    ) or (issue.code == LineIssueCode.SAME_START and other.start == pure[saving].start)
    if not about_saving:
        return NON_FIELD_ERRORS, _(
            "Saving this line would make line %(n)s (started %(day)s) inconsistent."
        ) % values
    if issue.code == LineIssueCode.SAME_START:
        return "start", _(
            "Line %(n)s also starts on %(day)s: two lines cannot start the same day."
        ) % values
    if issue.code == LineIssueCode.PREVIOUS_NOT_ENDED:
        return "end", _(
            "Line %(n)s starts on %(day)s, after this line: enter this line's end date "
            "(on or before %(day)s)."
        ) % values
    if issue.code == LineIssueCode.OVERLAP:
        return "end", _("This line ends on %(end)s, after line %(n)s started on %(day)s.") % {
            **values,
            "end": _day(pure[saving].end),
        }
    return NON_FIELD_ERRORS, _(
        "Saving this line would make line %(n)s (started %(day)s) inconsistent."
    ) % values


# ---------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------


def _saved_lines(patient: Patient, exclude_pk: int | None) -> list[lines.SystemicLine]:
    # The other lines with their agents' names, in one query.
    others = (
        SystemicLine.objects.filter(patient=patient)
        .exclude(pk=exclude_pk)
        .annotate(agent_names=ArrayAgg("agents__name", ordering="agents__name", default=[]))
        .order_by("start", "pk")
    )
    return [_pure(other, [n for n in other.agent_names if n is not None]) for other in others]


def _date_errors(data: dict) -> dict[str, list[str]]:
    today = timezone.localdate()
    errors: dict[str, list[str]] = {}
    if data.get("start") and data["start"] > today:
        errors["start"] = [_("The start cannot be in the future.")]
    if data.get("end") and data["end"] > today:
        errors["end"] = [_("The end cannot be in the future.")]
    return errors


def _history_errors(
    others: list[lines.SystemicLine], candidate: lines.SystemicLine
) -> dict[str, list[str]]:
    """Every issue about ``candidate`` and every date issue it creates on another line."""
    before = {(issue.code, issue.index) for issue in lines.validate_lines(others)}
    pure = [*others, candidate]
    saving = len(others)
    numbers = lines.derive_numbers(pure)
    errors: dict[str, list[str]] = {}
    for issue in lines.validate_lines(pure):
        if issue.index == saving:
            field, message = issue_message(issue, pure, numbers)
        elif issue.code in lines.DATE_CODES and (issue.code, issue.index) not in before:
            field, message = _caused_message(issue, pure, numbers, saving)
        else:
            continue  # a stale number or an old issue of another line: warned on the list
        if message not in errors.setdefault(field, []):
            errors[field].append(message)
    return errors


def _merge(errors: dict[str, list[str]], more: dict[str, list[str]]) -> None:
    for field, messages in more.items():
        for message in messages:
            if message not in errors.setdefault(field, []):
                errors[field].append(message)


def _problems(
    patient: Patient, record: SystemicLine, chosen: list[Agent], data: dict
) -> dict[str, list[str]]:
    """Everything wrong with ``record`` (already holding ``data``), field by field."""
    errors = _date_errors(data)
    if not chosen:
        _merge(errors, {"agents": [_("Choose at least one agent.")]})
    try:
        record.full_clean()
    except ValidationError as error:
        _merge(errors, error.message_dict)
        return errors  # the dates may be missing: the history cannot be checked yet
    candidate = _pure(record, sorted(agent.name for agent in chosen))
    _merge(errors, _history_errors(_saved_lines(patient, record.pk), candidate))
    return errors


@transaction.atomic
def line_record(
    *,
    patient: Patient,
    by,
    data: dict,
    agents: Iterable[Agent],
    line: SystemicLine | None = None,
    reason: str = "",
) -> SystemicLine:
    """Create or correct a line of systemic therapy with its agents (ValidationError if bad).

    ``data`` holds line_number, start, end, stop_reason and stop_detail.  Every problem is
    reported at once, each on its field; nothing is saved unless there is none.
    """
    if patient.subject_id is None:
        raise ValidationError(_("Systemic therapy is recorded for enrolled patients only."))
    if line is not None and line.patient_id != patient.pk:
        raise ValidationError(_("This line belongs to another patient."))
    # One writer at a time per patient: the checks read the patient's other lines.
    list(Patient.objects.select_for_update().filter(pk=patient.pk).values_list("pk", flat=True))
    chosen = list({agent.pk: agent for agent in agents}.values())
    record = line or SystemicLine(patient=patient)
    record.patient = patient  # the patient read by the caller (no query to re-check it)
    for field, value in data.items():
        setattr(record, field, value)
    errors = _problems(patient, record, chosen, data)
    if line is not None and not reason.strip():
        _merge(errors, {"reason": [_("Give a reason for changing saved data (audit trail).")]})
    if errors:
        raise ValidationError(errors)
    with reason_for_change(reason or "Systemic therapy line", user=by.pk):
        record.save()
        keep = {agent.pk for agent in chosen}
        record.line_agents.exclude(agent_id__in=keep).delete()
        present = set(record.line_agents.values_list("agent_id", flat=True))
        LineAgent.objects.bulk_create(
            [LineAgent(line=record, agent=agent) for agent in chosen if agent.pk not in present]
        )
    return record


# ---------------------------------------------------------------------------
# Endpoints
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LineRow:
    """A saved line with its number derived from the start dates and warnings about it."""

    line: SystemicLine
    number: int
    agents: tuple[Agent, ...]
    warnings: tuple[str, ...]

    @property
    def agent_names(self) -> str:
        return ", ".join(agent.name for agent in self.agents)


@dataclass(frozen=True)
class Endpoint:
    """A time-to-event endpoint as shown: from ``start`` to ``date``, event or censored."""

    event: bool
    start: date
    date: date
    days: int
    reason: str

    @property
    def months(self) -> float:
        return round(self.days / DAYS_PER_MONTH, 1)


@dataclass(frozen=True)
class PatientEndpoints:
    rows: tuple[LineRow, ...]
    origin: date | None  # first delivered SBRT fraction
    last_contact: date | None
    death: date | None
    progressions: tuple[date, ...]
    line_at_sbrt: LineRow | None = None
    time_on_line: Endpoint | None = None
    time_to_next_line: Endpoint | None = None
    pfs_nest: Endpoint | None = None
    current: LineRow | None = None  # the line started before SBRT and not ended before it
    next_line: LineRow | None = None  # the first line started on or after SBRT
    problem: str = ""  # why the endpoints cannot be computed

    @property
    def computed(self) -> bool:
        return self.origin is not None and not self.problem


@dataclass(frozen=True)
class _Facts:
    origin: date | None
    last_fraction: date | None
    last_scan: date | None
    progression_on: date | None


def _facts(patient: Patient) -> _Facts:
    """First and last delivered fraction, last scan and progression date, in one query."""
    delivered = Fraction.objects.filter(
        course__patient=OuterRef("pk"), status=Fraction.Status.DELIVERED
    )
    row = (
        Patient.objects.filter(pk=patient.pk)
        .annotate(
            first_fraction=Subquery(delivered.order_by("day").values("day")[:1]),
            last_fraction=Subquery(delivered.order_by("-day").values("day")[:1]),
            last_scan=Subquery(
                ImagingAssessment.objects.filter(patient=OuterRef("pk"))
                .order_by("-scan_date")
                .values("scan_date")[:1]
            ),
            progression=Subquery(
                PatientResponse.objects.filter(patient=OuterRef("pk"))
                .order_by("pk")
                .values("progression_on")[:1]
            ),
        )
        .values("first_fraction", "last_fraction", "last_scan", "progression")
        .first()
    ) or dict.fromkeys(("first_fraction", "last_fraction", "last_scan", "progression"))
    return _Facts(row["first_fraction"], row["last_fraction"], row["last_scan"], row["progression"])


def _rows(patient: Patient) -> tuple[tuple[LineRow, ...], list[lines.SystemicLine]]:
    """The lines in start order and their engine records (aligned)."""
    saved = list(
        SystemicLine.objects.filter(patient=patient)
        .prefetch_related(
            Prefetch(
                "line_agents",
                queryset=LineAgent.objects.select_related("agent").order_by("agent__name"),
            )
        )
        .order_by("start", "pk")
    )
    agents = [tuple(la.agent for la in line.line_agents.all()) for line in saved]
    pure = [_pure(line, [a.name for a in found]) for line, found in zip(saved, agents, strict=True)]
    numbers = lines.derive_numbers(pure)
    warnings: dict[int, list[str]] = {}
    for issue in lines.validate_lines(pure):
        warnings.setdefault(issue.index, []).append(issue_message(issue, pure, numbers)[1])
    rows = [
        LineRow(line, numbers[i], agents[i], tuple(warnings.get(i, ())))
        for i, line in enumerate(saved)
    ]
    order = sorted(range(len(rows)), key=lambda i: numbers[i])
    return tuple(rows[i] for i in order), [pure[i] for i in order]


def _last_contact(patient, facts: _Facts, rows: tuple[LineRow, ...]) -> date | None:
    known = [facts.last_fraction, facts.last_scan, patient.status_changed_on]
    for row in rows:
        known += [row.line.start, row.line.end]
    known = [value for value in known if value is not None]
    return max(known) if known else None


def _progressions(facts: _Facts, rows: tuple[LineRow, ...]) -> tuple[date, ...]:
    found = {
        row.line.end
        for row in rows
        if row.line.end is not None and row.line.stop_reason == SystemicLine.StopReason.PROGRESSION
    }
    if facts.progression_on is not None:
        found.add(facts.progression_on)
    return tuple(sorted(found))


def patient_endpoints(patient: Patient) -> PatientEndpoints:
    """The patient's lines and the StORM-01 / STOP-2 endpoints from the first SBRT fraction."""
    facts = _facts(patient)
    rows, pure = _rows(patient)
    death = patient.status_changed_on if patient.off_study_reason == "death" else None
    base = PatientEndpoints(
        rows=rows,
        origin=facts.origin,
        last_contact=_last_contact(patient, facts, rows),
        death=death,
        progressions=_progressions(facts, rows),
    )
    if base.origin is None:
        return base
    if any(issue.code in lines.DATE_CODES for issue in lines.validate_lines(pure)):
        problem = _("The endpoints cannot be computed until the dates of the lines are fixed.")
        return replace(base, problem=problem)
    try:
        return _compute(base, pure)
    except ValueError as error:
        problem = _("The endpoints cannot be computed: the history is inconsistent (%(detail)s).")
        return replace(base, problem=problem % {"detail": error})


def _compute(base: PatientEndpoints, pure: list[lines.SystemicLine]) -> PatientEndpoints:
    origin, last_contact, death = base.origin, base.last_contact, base.death
    follow_up = {"last_contact": last_contact, "death": death}
    at_sbrt = lines.line_at(pure, origin)
    on_line = lines.time_on_line_after(pure, origin, **follow_up)
    to_next = lines.time_to_next_line(pure, origin, **follow_up)
    nest = lines.pfs_nest(pure, origin, base.progressions, **follow_up)
    rows = base.rows
    current = next(
        (row for row in rows if row.line.start < origin and _not_ended(row.line, origin)), None
    )
    next_line = next((row for row in rows if row.line.start >= origin), None)
    return replace(
        base,
        line_at_sbrt=next((rows[i] for i, p in enumerate(pure) if p is at_sbrt), None),
        current=current,
        next_line=next_line,
        time_on_line=_time_on_line(on_line, origin, current),
        time_to_next_line=_time_to_next(to_next, origin, next_line),
        pfs_nest=_pfs_nest(nest, next_line, base.progressions),
    )


def _not_ended(line: SystemicLine, day: date) -> bool:
    return line.end is None or line.end >= day


def _time_on_line(result, origin: date, current: LineRow | None) -> Endpoint | None:
    if result is None or current is None:
        return None
    line = current.line
    values = {"n": current.number, "day": _day(result.date)}
    if line.end is None and result.event:
        reason = _("Death on %(day)s while on line %(n)s.") % values
    elif line.end is None:
        reason = _("Line %(n)s ongoing at the last contact (%(day)s).") % values
    elif not result.event:
        reason = _("Line %(n)s completed as planned on %(day)s.") % values
    else:
        reason = _("Line %(n)s stopped on %(day)s: %(why)s.") % {
            **values,
            "why": line.get_stop_reason_display(),
        }
    return Endpoint(result.event, origin, result.date, result.days, reason)


def _time_to_next(result, origin: date, next_line: LineRow | None) -> Endpoint:
    values = {"day": _day(result.date)}
    if next_line is not None:
        reason = _("Line %(n)s (%(agents)s) started on %(day)s.") % {
            **values,
            "n": next_line.number,
            "agents": next_line.agent_names,
        }
    elif result.event:
        reason = _("Death on %(day)s before any next line.") % values
    else:
        reason = _("No next line by the last contact (%(day)s).") % values
    return Endpoint(result.event, origin, result.date, result.days, reason)


def _pfs_nest(result, next_line: LineRow | None, progressions) -> Endpoint | None:
    if result is None or next_line is None:
        return None
    values = {"n": next_line.number, "day": _day(result.date)}
    if result.event and result.date in progressions and result.date > next_line.line.start:
        reason = _("Progression on %(day)s on line %(n)s.") % values
    elif result.event:
        reason = _("Death on %(day)s on line %(n)s.") % values
    else:
        reason = (
            _("No progression or death since line %(n)s started, by the last contact (%(day)s).")
            % values
        )
    return Endpoint(result.event, next_line.line.start, result.date, result.days, reason)
