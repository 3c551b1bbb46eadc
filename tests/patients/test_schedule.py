"""Visit schedules computed on constructed patients (pure, no database): issue #7."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from patients import schedule
from patients.schedule import Anchors, Definition

D0 = date(2026, 1, 5)  # the anchor day in most tests


def days(n: int) -> date:
    return D0 + timedelta(days=n)


def dues(occurrences) -> list[int]:
    return [(occ.due_on - D0).days for occ in occurrences]


CT = Definition(
    key="ct",
    anchor="sbrt_end",
    offset_days=61,
    window_before_days=7,
    window_after_days=7,
    repeat_every_days=61,
    repeat_until_days=730,
    until_progression=True,
)
POST_PD = Definition(
    key="post-pd",
    anchor="progression",
    offset_days=84,
    window_before_days=14,
    window_after_days=14,
    repeat_every_days=84,
    repeat_until_days=730,
)


def test_a_single_visit_has_its_due_date_and_window():
    clinic = Definition("clinic", "sbrt_end", 30, window_before_days=7, window_after_days=3)
    [occ] = schedule.occurrences(clinic, Anchors(sbrt_end=D0))
    assert (occ.occurrence, occ.due_on, occ.window_start, occ.window_end) == (
        1,
        days(30),
        days(23),
        days(33),
    )
    assert occ.applicable


def test_an_anchor_not_reached_gives_no_visit():
    clinic = Definition("clinic", "sbrt_end", 30)
    assert schedule.occurrences(clinic, Anchors(enrolment=D0, sbrt_start=D0)) == []
    assert schedule.occurrences(POST_PD, Anchors(enrolment=D0, sbrt_end=D0)) == []


def test_each_anchor_event_is_used():
    anchors = Anchors(
        enrolment=days(0), randomisation=days(1), sbrt_start=days(2), sbrt_end=days(3)
    )
    for anchor, expected in (
        ("enrolment", 10),
        ("randomisation", 11),
        ("sbrt_start", 12),
        ("sbrt_end", 13),
    ):
        assert dues(schedule.occurrences(Definition("v", anchor, 10), anchors)) == [expected]


def test_a_repeat_runs_from_the_first_occurrence_up_to_its_maximum_duration():
    occs = schedule.occurrences(CT, Anchors(sbrt_end=D0))
    assert dues(occs) == [61 * k for k in range(1, 12)]  # 671 <= 730 < 732
    assert [occ.occurrence for occ in occs] == list(range(1, 12))
    assert all(occ.window_end - occ.window_start == timedelta(days=14) for occ in occs)


def test_the_maximum_duration_is_inclusive():
    every_8_weeks = Definition("i", "randomisation", 56, 7, 7, 56, 168)
    assert dues(schedule.occurrences(every_8_weeks, Anchors(randomisation=D0))) == [56, 112, 168]
    shorter = Definition("i", "randomisation", 56, 7, 7, 56, 167)
    assert dues(schedule.occurrences(shorter, Anchors(randomisation=D0))) == [56, 112]


def test_a_repeat_until_progression_stops_before_the_progression_date():
    assert dues(schedule.occurrences(CT, Anchors(sbrt_end=D0, progression=days(130)))) == [61, 122]
    # a visit due on the day of progression is not planned any more
    assert dues(schedule.occurrences(CT, Anchors(sbrt_end=D0, progression=days(122)))) == [61]
    assert dues(schedule.occurrences(CT, Anchors(sbrt_end=D0, progression=days(123)))) == [61, 122]


def test_without_progression_flag_a_repeat_ignores_progression():
    capped = Definition("lab", "sbrt_start", 7, 1, 1, 7, 14)
    assert dues(schedule.occurrences(capped, Anchors(sbrt_start=D0, progression=days(8)))) == [
        7,
        14,
    ]


def test_imaging_every_8_weeks_then_every_12_weeks_after_progression():
    anchors = Anchors(sbrt_end=D0, progression=days(130))
    planned = schedule.plan([CT, POST_PD], anchors)
    assert [(occ.key, (occ.due_on - D0).days) for occ in planned] == [
        ("ct", 61),
        ("ct", 122),
        *[("post-pd", 130 + 84 * k) for k in range(1, 9)],  # 84 * 8 = 672 <= 730
    ]
    assert all(a.due_on <= b.due_on for a, b in zip(planned, planned[1:], strict=False))


def test_an_open_ended_repeat_until_progression_is_planned_for_five_years():
    open_ended = Definition("ct", "enrolment", 84, 7, 7, 84, None, until_progression=True)
    occs = schedule.occurrences(open_ended, Anchors(enrolment=D0))
    assert occs[-1].due_on <= days(schedule.OPEN_ENDED_DAYS) < occs[-1].due_on + timedelta(84)
    stopped = schedule.occurrences(open_ended, Anchors(enrolment=D0, progression=days(200)))
    assert dues(stopped) == [84, 168]


def test_a_single_visit_with_the_progression_flag_is_dropped_after_progression():
    pfs = Definition("pfs6", "randomisation", 182, 14, 14, until_progression=True)
    assert dues(schedule.occurrences(pfs, Anchors(randomisation=D0, progression=days(100)))) == []
    plain = Definition("pfs6", "randomisation", 182, 14, 14)
    assert dues(schedule.occurrences(plain, Anchors(randomisation=D0, progression=days(100)))) == [
        182
    ]


def test_visits_due_after_going_off_study_are_not_applicable():
    occs = schedule.occurrences(CT, Anchors(sbrt_end=D0, off_study=days(122)))
    assert len(occs) == 11  # still listed, as not applicable
    assert [occ.applicable for occ in occs[:3]] == [True, True, False]  # due on the day: applies
    assert not any(occ.applicable for occ in occs[2:])


@pytest.mark.parametrize(
    ("field", "value"),
    [("window_before_days", -1), ("window_after_days", -3), ("repeat_every_days", 0)],
)
def test_an_invalid_definition_is_refused(field, value):
    values = {
        "key": "bad",
        "anchor": "enrolment",
        "offset_days": 10,
        "repeat_until_days": 100,
        field: value,
    }
    with pytest.raises(ValueError):
        schedule.occurrences(Definition(**values), Anchors(enrolment=D0))


def test_an_unknown_anchor_is_refused():
    with pytest.raises(ValueError, match="unknown anchor"):
        schedule.occurrences(Definition("x", "death", 10), Anchors(enrolment=D0))


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (days(22), "upcoming"),
        (days(23), "due"),  # the window opens
        (days(30), "due"),
        (days(37), "due"),  # the window's last day
        (days(38), "overdue"),
    ],
)
def test_status_at_the_window_boundaries(today, expected):
    assert schedule.status("planned", days(23), days(37), today) == expected


@pytest.mark.parametrize("state", ["done", "missed", "na"])
def test_a_recorded_state_is_the_status_whatever_the_date(state):
    assert schedule.status(state, days(23), days(37), days(100)) == state
    assert schedule.status(state, days(23), days(37), days(0)) == state


def test_matching_takes_the_record_closest_to_the_due_date_once():
    windows = [(days(54), days(61), days(68)), (days(115), days(122), days(129))]
    assert schedule.match(windows, [days(55), days(60), days(200)]) == [days(60), None]
    assert schedule.match(windows, [days(53), days(130)]) == [None, None]  # just outside
    # overlapping windows: one scan fulfils one occurrence only
    overlapping = [(days(0), days(5), days(20)), (days(10), days(15), days(30))]
    assert schedule.match(overlapping, [days(14)]) == [days(14), None]
    assert schedule.match(overlapping, [days(4), days(14)]) == [days(4), days(14)]
