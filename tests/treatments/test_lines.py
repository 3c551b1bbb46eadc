"""Tests for the pure systemic-line engine ``treatments.lines``.

The histories are StORM-01-like (NCT04299646: metastatic RCC, SBRT to oligoprogression
under line 1 or 2) and STOP-2-like (NCT06918951: PFS-NEST).  Day counts were worked by
hand: 2023-02-01 -> 2023-09-14 is 28+31+30+31+30+31+31+13 = 225 days, and so on.
Decisions tested here: the next line is the first started on or after the first SBRT
fraction; a progression dated the day the next line starts is not on that line; a
same-day switch is no overlap; ``death`` after ``last_contact`` is refused.
"""

from __future__ import annotations

import random
import subprocess
import sys
from dataclasses import FrozenInstanceError, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from treatments.lines import (
    DATE_CODES,
    LineIssueCode,
    StopReason,
    SystemicLine,
    TimeToEvent,
    derive_numbers,
    line_at,
    pfs_nest,
    time_on_line_after,
    time_to_next_line,
    validate_lines,
)

MAIN = Path(__file__).resolve().parents[2]
d = date.fromisoformat

# First SBRT fraction in the StORM-01-like histories below.
SBRT = d("2023-02-01")

SUNITINIB = SystemicLine(1, d("2021-03-01"), d("2022-06-15"), "progression", ("sunitinib",))
# Same-day switch: nivolumab starts the day sunitinib stopped.
NIVOLUMAB = SystemicLine(2, d("2022-06-15"), None, None, ("nivolumab",))
# Nivolumab continued after SBRT until progression, then cabozantinib.
NIVOLUMAB_STOPPED = replace(NIVOLUMAB, end=d("2023-09-14"), stop_reason="progression")
CABOZANTINIB = SystemicLine(3, d("2023-09-20"), None, None, ("cabozantinib",))

ON_LINE_2 = (SUNITINIB, NIVOLUMAB)
SWITCHED = (SUNITINIB, NIVOLUMAB_STOPPED, CABOZANTINIB)
# Progression that led to cabozantinib, then progression on it.
PROGRESSIONS = (d("2023-09-01"), d("2024-03-05"))


def codes(lines) -> list[str]:
    return [issue.code for issue in validate_lines(lines)]


# ---------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------


def test_records_are_frozen():
    with pytest.raises(FrozenInstanceError):
        SUNITINIB.end = None  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        TimeToEvent(True, SBRT, 0, "x").days = 1  # type: ignore[misc]


def test_stop_reason_is_stored_as_its_vocabulary_member():
    assert SUNITINIB.stop_reason is StopReason.PROGRESSION
    assert SUNITINIB.stop_reason == "progression"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"stop_reason": "relapse"}, ValueError),
        ({"stop_reason": 3}, TypeError),
        ({"line_number": 0}, ValueError),
        ({"line_number": True}, TypeError),
        ({"line_number": 1.0}, TypeError),
        ({"start": datetime(2021, 3, 1, 9, 0)}, TypeError),  # noqa: DTZ001 - type check
        ({"end": "2022-06-15"}, TypeError),
        ({"agents": ["sunitinib"]}, TypeError),
        ({"agents": ("sunitinib", " ")}, ValueError),
    ],
)
def test_a_malformed_line_is_refused(changes, error):
    with pytest.raises(error):
        replace(SUNITINIB, **changes)


def test_negative_days_are_refused():
    with pytest.raises(ValueError, match="negative"):
        TimeToEvent(False, SBRT, -1, "x")


# ---------------------------------------------------------------------------
# Numbering and checks
# ---------------------------------------------------------------------------


def test_derived_numbers_follow_start_dates_and_input_order():
    lines = (CABOZANTINIB, SUNITINIB, NIVOLUMAB_STOPPED)
    assert derive_numbers(lines) == (3, 1, 2)
    assert derive_numbers(()) == ()


def test_a_clean_history_with_a_same_day_switch_has_no_issue():
    assert validate_lines(SWITCHED) == ()
    assert validate_lines(tuple(reversed(SWITCHED))) == ()


def test_an_entered_number_that_differs_from_the_start_order_is_reported():
    # Nivolumab entered as line 1 although sunitinib started first.
    lines = (SUNITINIB, replace(NIVOLUMAB, line_number=1))
    (issue,) = validate_lines(lines)
    assert issue.code == LineIssueCode.NUMBER_MISMATCH == "number_mismatch"
    assert issue.index == 1
    assert issue.message == (
        "line 2 (started 2022-06-15) is entered as line 1 but is line 2 by start date"
    )


def test_missing_entered_numbers_are_not_a_mismatch():
    lines = tuple(replace(line, line_number=None) for line in SWITCHED)
    assert validate_lines(lines) == ()
    assert derive_numbers(lines) == (1, 2, 3)


def test_numbering_counts_from_the_first_line_entered():
    # Only metastatic lines are entered: a history starting at "line 2" is renumbered.
    lines = (replace(NIVOLUMAB_STOPPED, line_number=2), replace(CABOZANTINIB, line_number=3))
    assert derive_numbers(lines) == (1, 2)
    assert codes(lines) == ["number_mismatch", "number_mismatch"]


def test_a_line_starting_one_day_before_the_previous_ended_overlaps():
    early = replace(NIVOLUMAB, start=d("2022-06-14"))
    (issue,) = validate_lines((SUNITINIB, early))
    assert issue.code == LineIssueCode.OVERLAP
    assert issue.index == 1
    assert "ended on 2022-06-15" in issue.message


def test_a_line_starting_one_day_after_the_previous_ended_is_fine():
    assert validate_lines((SUNITINIB, replace(NIVOLUMAB, start=d("2022-06-16")))) == ()


def test_an_overlap_with_an_earlier_line_than_the_previous_one_is_reported():
    long_first = replace(SUNITINIB, end=d("2023-12-31"))
    inside = SystemicLine(2, d("2022-01-01"), d("2022-02-01"), "toxicity", ("pazopanib",))
    third = SystemicLine(3, d("2022-03-01"), None, None, ("axitinib",))
    issues = validate_lines((long_first, inside, third))
    assert [(issue.code, issue.index) for issue in issues] == [("overlap", 1), ("overlap", 2)]
    assert "line 1 (started 2021-03-01)" in issues[1].message


def test_a_line_starting_while_an_earlier_one_has_no_end_is_reported():
    open_first = replace(SUNITINIB, end=None, stop_reason=None)
    (issue,) = validate_lines((open_first, NIVOLUMAB))
    assert issue.code == LineIssueCode.PREVIOUS_NOT_ENDED
    assert issue.message == (
        "line 2 (started 2022-06-15) starts while line 1 (started 2021-03-01) has no end date"
    )


def test_two_lines_starting_the_same_day_are_reported_once():
    twin = SystemicLine(2, SUNITINIB.start, None, None, ("pembrolizumab",))
    (issue,) = validate_lines((SUNITINIB, twin))
    assert issue.code == LineIssueCode.SAME_START
    assert issue.index == 1


def test_same_day_starts_are_ranked_by_entered_number():
    twin = SystemicLine(1, SUNITINIB.start, None, None, ("pembrolizumab",))
    assert derive_numbers((replace(SUNITINIB, line_number=2), twin)) == (2, 1)
    assert codes((replace(SUNITINIB, line_number=2), twin)) == ["same_start"]


def test_an_end_before_the_start_is_reported():
    backwards = replace(SUNITINIB, end=d("2021-02-28"))
    assert codes((backwards,)) == ["end_before_start"]
    assert "ends on 2021-02-28, before it starts" in validate_lines((backwards,))[0].message


def test_a_one_day_line_is_fine():
    assert validate_lines((replace(SUNITINIB, end=SUNITINIB.start),)) == ()


def test_stop_reason_and_end_must_go_together():
    assert codes((replace(SUNITINIB, stop_reason=None),)) == ["missing_stop_reason"]
    assert codes((SUNITINIB, replace(NIVOLUMAB, stop_reason="toxicity"))) == [
        "stop_reason_without_end"
    ]


def test_issue_codes_are_stable():
    assert {code.value for code in LineIssueCode} == {
        "end_before_start",
        "same_start",
        "previous_not_ended",
        "overlap",
        "number_mismatch",
        "missing_stop_reason",
        "stop_reason_without_end",
    }
    assert {"end_before_start", "same_start", "previous_not_ended", "overlap"} == DATE_CODES


# ---------------------------------------------------------------------------
# line_at
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2021-02-28", None),
        ("2021-03-01", SUNITINIB),  # start day included
        ("2022-06-14", SUNITINIB),
        ("2022-06-15", NIVOLUMAB),  # same-day switch: the new line
        ("2022-06-16", NIVOLUMAB),
        ("2030-01-01", NIVOLUMAB),  # no end: still ongoing
    ],
)
def test_line_at(day, expected):
    assert line_at(ON_LINE_2, d(day)) == expected


def test_no_line_is_ongoing_the_day_after_the_end():
    assert line_at((SUNITINIB,), d("2022-06-15")) == SUNITINIB  # end day included
    assert line_at((SUNITINIB,), d("2022-06-16")) is None


def test_line_at_refuses_overlapping_lines():
    early = replace(NIVOLUMAB, start=d("2022-06-14"))
    with pytest.raises(ValueError, match="2 lines are ongoing on 2022-06-14"):
        line_at((SUNITINIB, early), d("2022-06-14"))
    with pytest.raises(ValueError, match="ongoing"):
        line_at((SUNITINIB, early), d("2022-06-15"))  # not a switch: both ongoing before


# ---------------------------------------------------------------------------
# Time on the current line (StORM-01)
# ---------------------------------------------------------------------------


def test_time_on_line_is_censored_at_last_contact_while_the_line_goes_on():
    result = time_on_line_after(ON_LINE_2, SBRT, last_contact=d("2024-01-10"))
    assert result == TimeToEvent(
        False, d("2024-01-10"), 343, "line 2 (started 2022-06-15) ongoing at last contact"
    )


def test_time_on_line_ends_with_progression():
    result = time_on_line_after(SWITCHED, SBRT, last_contact=d("2024-06-01"))
    assert result is not None
    assert (result.event, result.date, result.days) == (True, d("2023-09-14"), 225)
    assert "progression" in result.reason


@pytest.mark.parametrize("reason", ["toxicity", "patient_choice", "other"])
def test_any_stop_but_completion_is_an_event(reason):
    stopped = replace(NIVOLUMAB_STOPPED, stop_reason=reason)
    result = time_on_line_after((SUNITINIB, stopped), SBRT, last_contact=d("2024-06-01"))
    assert result is not None
    assert (result.event, result.days) == (True, 225)


def test_a_completed_line_is_censored_at_its_end_unless_completion_counts():
    completed = (SUNITINIB, replace(NIVOLUMAB_STOPPED, stop_reason="completed"))
    censored = time_on_line_after(completed, SBRT, last_contact=d("2024-06-01"))
    assert censored is not None
    assert (censored.event, censored.date, censored.days) == (False, d("2023-09-14"), 225)
    assert "completed" in censored.reason
    counted = time_on_line_after(
        completed, SBRT, last_contact=d("2024-06-01"), completed_is_event=True
    )
    assert counted is not None
    assert (counted.event, counted.days) == (True, 225)


def test_death_on_an_unended_line_is_an_event():
    result = time_on_line_after(
        ON_LINE_2, SBRT, last_contact=d("2023-08-01"), death=d("2023-08-01")
    )
    assert result is not None
    assert (result.event, result.date, result.days) == (True, d("2023-08-01"), 181)
    assert result.reason.startswith("death on 2023-08-01")


def test_no_time_on_line_without_a_line_ongoing_at_sbrt():
    # STOP-2 admits patients off systemic therapy (oligorecurrence).
    assert time_on_line_after((SUNITINIB,), SBRT, last_contact=d("2024-01-10")) is None
    assert time_on_line_after((), SBRT, last_contact=d("2024-01-10")) is None


def test_a_line_ending_on_the_first_fraction_is_the_current_line():
    ends_at_sbrt = (SUNITINIB, replace(NIVOLUMAB_STOPPED, end=SBRT))
    result = time_on_line_after(ends_at_sbrt, SBRT, last_contact=d("2024-01-10"))
    assert result is not None
    assert (result.event, result.days) == (True, 0)
    one_day_before = (SUNITINIB, replace(NIVOLUMAB_STOPPED, end=SBRT - timedelta(days=1)))
    assert time_on_line_after(one_day_before, SBRT, last_contact=d("2024-01-10")) is None


def test_a_line_started_on_the_first_fraction_is_not_the_current_line():
    starts_at_sbrt = (SUNITINIB, replace(NIVOLUMAB, start=SBRT))
    assert time_on_line_after(starts_at_sbrt, SBRT, last_contact=d("2024-01-10")) is None


def test_time_on_line_needs_the_stop_reason_of_an_ended_line():
    lines = (SUNITINIB, replace(NIVOLUMAB_STOPPED, stop_reason=None))
    with pytest.raises(ValueError, match="without a stop reason"):
        time_on_line_after(lines, SBRT, last_contact=d("2024-06-01"))


# ---------------------------------------------------------------------------
# Time to next line (StORM-01 primary aim; STOP-2 secondary objective)
# ---------------------------------------------------------------------------


def test_time_to_next_line_is_an_event_at_the_next_start():
    result = time_to_next_line(SWITCHED, SBRT, last_contact=d("2024-06-01"))
    assert result == TimeToEvent(
        True, d("2023-09-20"), 231, "line 3 (started 2023-09-20) is the next line"
    )


def test_no_next_line_yet_is_censored_at_last_contact():
    result = time_to_next_line(ON_LINE_2, SBRT, last_contact=d("2024-01-10"))
    assert result == TimeToEvent(
        False, d("2024-01-10"), 343, "no next line by last contact on 2024-01-10"
    )


def test_lost_to_follow_up_is_censored_at_the_last_contact():
    # Last seen three months after SBRT, still on nivolumab.
    result = time_to_next_line(ON_LINE_2, SBRT, last_contact=d("2023-05-01"))
    assert (result.event, result.date, result.days) == (False, d("2023-05-01"), 89)


def test_death_before_a_next_line_is_an_event_by_default():
    result = time_to_next_line(ON_LINE_2, SBRT, last_contact=d("2023-08-01"), death=d("2023-08-01"))
    assert (result.event, result.date, result.days) == (True, d("2023-08-01"), 181)
    assert result.reason == "death on 2023-08-01 before any next line"


def test_death_before_a_next_line_can_be_censored_at_death():
    result = time_to_next_line(
        ON_LINE_2,
        SBRT,
        last_contact=d("2023-09-30"),  # record reviewed after the death
        death=d("2023-08-01"),
        death_is_event=False,
    )
    assert (result.event, result.date, result.days) == (False, d("2023-08-01"), 181)
    assert "censored" in result.reason


def test_death_after_a_next_line_does_not_change_time_to_next_line():
    result = time_to_next_line(SWITCHED, SBRT, last_contact=d("2024-06-01"), death=d("2024-06-01"))
    assert (result.event, result.date) == (True, CABOZANTINIB.start)


@pytest.mark.parametrize(("offset", "days"), [(0, 0), (1, 1)])
def test_a_next_line_on_or_one_day_after_the_first_fraction(offset, days):
    start = SBRT + timedelta(days=offset)
    lines = (SUNITINIB, replace(NIVOLUMAB_STOPPED, end=start), replace(CABOZANTINIB, start=start))
    result = time_to_next_line(lines, SBRT, last_contact=d("2024-06-01"))
    assert (result.event, result.date, result.days) == (True, start, days)


def test_lines_before_the_first_fraction_are_not_next_lines():
    result = time_to_next_line((SUNITINIB,), SBRT, last_contact=d("2024-06-01"))
    assert result.event is False


def test_last_contact_on_the_first_fraction_gives_zero_days():
    result = time_to_next_line(ON_LINE_2, SBRT, last_contact=SBRT)
    assert (result.event, result.days) == (False, 0)


# ---------------------------------------------------------------------------
# PFS-NEST (STOP-2 primary objective)
# ---------------------------------------------------------------------------


def test_pfs_nest_runs_from_the_next_line_start_to_progression_on_it():
    result = pfs_nest(SWITCHED, SBRT, PROGRESSIONS, last_contact=d("2024-06-01"))
    assert result == TimeToEvent(
        True,
        d("2024-03-05"),
        167,
        "progression on 2024-03-05 after the start of line 3 (started 2023-09-20)",
    )


def test_a_progression_before_the_next_line_start_does_not_count():
    result = pfs_nest(SWITCHED, SBRT, PROGRESSIONS[:1], last_contact=d("2024-06-01"))
    assert result is not None
    assert (result.event, result.date, result.days) == (False, d("2024-06-01"), 255)


@pytest.mark.parametrize(("offset", "counted"), [(0, False), (1, True)])
def test_a_progression_on_the_next_line_start_day_is_not_on_that_line(offset, counted):
    progression = CABOZANTINIB.start + timedelta(days=offset)
    result = pfs_nest(SWITCHED, SBRT, (PROGRESSIONS[0], progression), last_contact=d("2024-06-01"))
    assert result is not None
    assert result.event is counted
    if counted:
        assert (result.date, result.days) == (progression, 1)


def test_pfs_nest_is_not_evaluable_without_a_next_line():
    assert pfs_nest(ON_LINE_2, SBRT, PROGRESSIONS[:1], last_contact=d("2024-01-10")) is None
    died = pfs_nest(ON_LINE_2, SBRT, (), last_contact=d("2023-08-01"), death=d("2023-08-01"))
    assert died is None


def test_death_on_the_next_line_without_progression_is_an_event():
    result = pfs_nest(
        SWITCHED, SBRT, PROGRESSIONS[:1], last_contact=d("2024-01-15"), death=d("2024-01-15")
    )
    assert result is not None
    assert (result.event, result.date) == (True, d("2024-01-15"))
    assert result.reason.startswith("death on 2024-01-15")


def test_the_earlier_of_progression_and_death_counts():
    progression_first = pfs_nest(
        SWITCHED, SBRT, PROGRESSIONS, last_contact=d("2024-04-01"), death=d("2024-04-01")
    )
    assert progression_first is not None
    assert progression_first.date == d("2024-03-05")
    same_day = pfs_nest(
        SWITCHED, SBRT, PROGRESSIONS, last_contact=d("2024-03-05"), death=d("2024-03-05")
    )
    assert same_day is not None
    assert (same_day.event, same_day.date) == (True, d("2024-03-05"))
    assert same_day.reason.startswith("progression")


def test_a_next_line_stopped_for_progression_needs_a_progression_within_it():
    stopped = replace(CABOZANTINIB, end=d("2024-03-10"), stop_reason="progression")
    lines = (SUNITINIB, NIVOLUMAB_STOPPED, stopped)
    with pytest.raises(ValueError, match="no progression is recorded"):
        pfs_nest(lines, SBRT, PROGRESSIONS[:1], last_contact=d("2024-06-01"))
    result = pfs_nest(lines, SBRT, PROGRESSIONS, last_contact=d("2024-06-01"))
    assert result is not None
    assert result.date == d("2024-03-05")


def test_endpoints_accept_any_input_order():
    shuffled = (CABOZANTINIB, SUNITINIB, NIVOLUMAB_STOPPED)
    contact = d("2024-06-01")
    for function in (time_on_line_after, time_to_next_line):
        assert function(shuffled, SBRT, last_contact=contact) == function(
            SWITCHED, SBRT, last_contact=contact
        )
    assert pfs_nest(shuffled, SBRT, PROGRESSIONS, last_contact=contact) == pfs_nest(
        SWITCHED, SBRT, PROGRESSIONS, last_contact=contact
    )


def test_numbering_issues_do_not_block_endpoints():
    renumbered = tuple(replace(line, line_number=9) for line in SWITCHED)
    result = time_to_next_line(renumbered, SBRT, last_contact=d("2024-06-01"))
    assert result.days == 231


# ---------------------------------------------------------------------------
# Inconsistent inputs
# ---------------------------------------------------------------------------


def all_endpoints(lines, origin=SBRT, progressions=(), **kwargs):
    time_on_line_after(lines, origin, **kwargs)
    time_to_next_line(lines, origin, **kwargs)
    pfs_nest(lines, origin, progressions, **kwargs)


@pytest.mark.parametrize(
    ("lines", "kwargs", "message"),
    [
        (ON_LINE_2, {"last_contact": d("2023-01-31")}, "before the origin"),
        (ON_LINE_2, {"last_contact": d("2024-01-10"), "death": d("2023-01-31")}, "before the"),
        (ON_LINE_2, {"last_contact": d("2023-08-01"), "death": d("2023-08-02")}, "after the last"),
        (SWITCHED, {"last_contact": d("2023-09-19")}, "start 2023-09-20 after the last contact"),
        (SWITCHED, {"last_contact": d("2023-09-13")}, "end 2023-09-14 after the last contact"),
        (
            SWITCHED,
            {"last_contact": d("2024-01-10"), "death": d("2023-09-19")},
            "after the death",
        ),
        (
            (SUNITINIB, replace(NIVOLUMAB, start=d("2022-06-14"))),
            {"last_contact": d("2024-01-10")},
            "must be fixed first: line 2 .* starts before line 1",
        ),
        (
            (replace(SUNITINIB, end=None, stop_reason=None), NIVOLUMAB),
            {"last_contact": d("2024-01-10")},
            "has no end date",
        ),
    ],
)
def test_inconsistent_follow_up_is_refused(lines, kwargs, message):
    for function in (time_on_line_after, time_to_next_line):
        with pytest.raises(ValueError, match=message):
            function(lines, SBRT, **kwargs)
    with pytest.raises(ValueError, match=message):
        pfs_nest(lines, SBRT, (), **kwargs)


def test_a_progression_after_the_end_of_follow_up_is_refused():
    with pytest.raises(ValueError, match="progression on 2024-03-05 is after the last contact"):
        pfs_nest(SWITCHED, SBRT, PROGRESSIONS, last_contact=d("2024-03-04"))
    with pytest.raises(ValueError, match="after the death"):
        pfs_nest(SWITCHED, SBRT, PROGRESSIONS, last_contact=d("2024-06-01"), death=d("2024-03-04"))


def test_death_on_the_first_fraction_is_accepted():
    result = time_to_next_line(ON_LINE_2, SBRT, last_contact=SBRT, death=SBRT)
    assert (result.event, result.days) == (True, 0)


def test_datetimes_and_wrong_types_are_refused():
    now = datetime(2023, 2, 1, 8, 30)  # noqa: DTZ001 - the type is what is tested
    with pytest.raises(TypeError, match="datetime.date"):
        time_to_next_line(ON_LINE_2, now, last_contact=d("2024-01-10"))
    with pytest.raises(TypeError, match="datetime.date"):
        line_at(ON_LINE_2, now)
    with pytest.raises(TypeError, match="progression"):
        pfs_nest(SWITCHED, SBRT, ["2024-03-05"], last_contact=d("2024-06-01"))
    with pytest.raises(TypeError, match="SystemicLine"):
        validate_lines([SUNITINIB, "line 2"])
    with pytest.raises(TypeError, match="one SystemicLine"):
        derive_numbers(SUNITINIB)


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

BASE = date(2020, 1, 1)


def _day(draw, low: date, span: int) -> date:
    return low + timedelta(days=draw(st.integers(0, span)))


@st.composite
def histories(draw):
    """A valid history, an origin, progressions, last contact and possibly a death."""
    lines, day = [], _day(draw, BASE, 200)
    count = draw(st.integers(0, 4))
    for number in range(1, count + 1):
        if number == count and draw(st.booleans()):
            lines.append(SystemicLine(number, day, None, None, ("drug",)))
            break
        end = day + timedelta(days=draw(st.integers(1, 400)))
        reason = draw(st.sampled_from(list(StopReason)))
        lines.append(SystemicLine(number, day, end, reason, ("drug",)))
        day = _day(draw, end, 60)  # 0 days: same-day switch
    origin = _day(draw, BASE + timedelta(days=100), 1500)
    recorded = [line.end for line in lines if line.stop_reason == StopReason.PROGRESSION]
    progressions = [_day(draw, BASE, 2000) for _ in range(draw(st.integers(0, 3)))]
    progressions += recorded
    latest = max([origin, *progressions, *(line.start for line in lines)])
    latest = max([latest, *(line.end for line in lines if line.end)])
    last_contact = _day(draw, latest, 400)
    death = _day(draw, latest, (last_contact - latest).days) if draw(st.booleans()) else None
    return tuple(lines), origin, tuple(progressions), last_contact, death


def endpoint_results(history):
    lines, origin, progressions, last_contact, death = history
    kwargs = {"last_contact": last_contact, "death": death}
    return [
        (origin, time_on_line_after(lines, origin, **kwargs)),
        (origin, time_to_next_line(lines, origin, **kwargs)),
        (None, pfs_nest(lines, origin, progressions, **kwargs)),
    ]


@given(histories())
def test_times_are_never_negative_and_never_run_past_follow_up(history):
    lines, origin, _, last_contact, death = history
    for start, result in endpoint_results(history):
        if result is None:
            continue
        assert result.days >= 0
        assert result.date <= last_contact
        if not result.event:
            assert result.date <= (death or last_contact)
        if start is not None:
            assert result.days == (result.date - start).days


@given(histories())
def test_pfs_nest_exists_exactly_when_a_next_line_started(history):
    lines, origin, progressions, last_contact, death = history
    next_starts = [line.start for line in lines if line.start >= origin]
    result = pfs_nest(lines, origin, progressions, last_contact=last_contact, death=death)
    ttnt = time_to_next_line(lines, origin, last_contact=last_contact, death=death)
    assert (result is None) == (not next_starts)
    if next_starts:
        assert ttnt.event and ttnt.date == min(next_starts)
        assert result is not None
        assert result.date >= min(next_starts)
        assert result.days == (result.date - min(next_starts)).days


@given(histories(), st.randoms(use_true_random=False))
def test_valid_histories_check_clean_and_number_in_start_order(history, rng: random.Random):
    lines = list(history[0])
    assert validate_lines(lines) == ()
    rng.shuffle(lines)
    numbers = derive_numbers(lines)
    assert sorted(numbers) == list(range(1, len(lines) + 1))
    assert all(line.line_number == number for line, number in zip(lines, numbers, strict=True))


# ---------------------------------------------------------------------------
# Purity
# ---------------------------------------------------------------------------


def test_lines_engine_imports_no_django():
    code = (
        "import sys, treatments.lines; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=MAIN, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
