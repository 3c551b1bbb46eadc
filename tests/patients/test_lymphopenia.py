"""The ATRA trial's lymphopenia endpoint on constructed patients (pure rules, no database)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D
from fractions import Fraction

import pytest
from scipy.stats import fisher_exact as scipy_fisher

from patients.lymphopenia import Count, PatientData, Reason, Window, evaluate, summarise

END = date(2026, 1, 5)  # last delivered fraction
TODAY = date(2026, 6, 1)  # every window closed
WINDOW = Window(42, 7)


def _day(n: int) -> date:
    return END + timedelta(days=n)


def _count(day: int, value: str, grade: int | None) -> Count:
    return Count(_day(day), D(value), grade)


def _patient(*counts: Count, arm="SBRT", randomised=True, end=END, key="P") -> PatientData:
    return PatientData(key=key, arm=arm, randomised=randomised, sbrt_end=end, counts=counts)


def test_the_count_in_the_window_decides_grade_2_or_more():
    result = evaluate(_patient(_count(42, "0.6", 2)), WINDOW, TODAY)
    assert result.evaluable and result.event is True and result.reason is None
    assert (result.target, result.window_start, result.window_end) == (_day(42), _day(35), _day(49))
    assert evaluate(_patient(_count(40, "0.85", 1)), WINDOW, TODAY).event is False


def test_the_window_bounds_are_inclusive_and_outside_is_not_evaluable():
    assert evaluate(_patient(_count(35, "0.4", 3)), WINDOW, TODAY).event is True
    assert evaluate(_patient(_count(49, "0.4", 3)), WINDOW, TODAY).event is True
    outside = evaluate(_patient(_count(34, "0.4", 3), _count(50, "0.4", 3)), WINDOW, TODAY)
    assert not outside.evaluable and outside.event is None
    assert outside.reason is Reason.NO_SAMPLE


def test_the_count_closest_to_the_target_day_is_used():
    result = evaluate(
        _patient(_count(36, "0.3", 3), _count(44, "1.2", 0), _count(10, "0.1", 4)), WINDOW, TODAY
    )
    assert result.count.sampled_on == _day(44) and result.event is False


def test_on_a_tie_the_later_count_is_used():
    later_first = _patient(_count(45, "1.1", 0), _count(39, "0.4", 3))
    earlier_first = _patient(_count(39, "0.4", 3), _count(45, "1.1", 0))
    for patient in (later_first, earlier_first):
        result = evaluate(patient, WINDOW, TODAY)
        assert result.count.sampled_on == _day(45) and result.event is False


def test_no_sbrt_is_not_evaluable():
    result = evaluate(_patient(_count(42, "0.4", 3), end=None), WINDOW, TODAY)
    assert result.reason is Reason.NO_SBRT and result.target is None and not result.evaluable


def test_an_open_window_is_pending_without_a_count_and_provisional_with_one():
    today = _day(45)
    pending = evaluate(_patient(), WINDOW, today)
    assert pending.reason is Reason.PENDING and not pending.evaluable
    provisional = evaluate(_patient(_count(43, "0.7", 2)), WINDOW, today)
    assert provisional.evaluable and provisional.provisional
    assert not evaluate(_patient(_count(43, "0.7", 2)), WINDOW, _day(50)).provisional


def test_an_ungraded_count_above_the_grade_2_bound_is_no_event():
    # Normal range missing: 0.8 x 10^9/L or more is grade 0 or 1, either way below grade 2.
    assert evaluate(_patient(_count(42, "0.8", None)), WINDOW, TODAY).event is False
    assert evaluate(_patient(_count(42, "0.79", None)), WINDOW, TODAY).event is True


def test_another_window_setting_is_honoured():
    patient = _patient(_count(30, "0.5", 2))
    assert not evaluate(patient, WINDOW, TODAY).evaluable
    assert evaluate(patient, Window(28, 3), TODAY).event is True


def test_summary_by_arm_with_fishers_test_one_sided_for_fewer_events_with_atra():
    atra = [_patient(_count(42, "0.5", 2), arm="SBRT_ATRA", key="A1")] + [
        _patient(_count(42, "1.0", 0), arm="SBRT_ATRA", key=f"A{i}") for i in range(2, 6)
    ]
    control = [_patient(_count(41, "0.3", 3), key=f"C{i}") for i in range(1, 5)] + [
        _patient(_count(42, "1.5", 0), key="C5"),
        _patient(key="C6", end=None),  # no SBRT
        _patient(_count(20, "0.3", 3), key="C7"),  # outside the window
    ]
    run_in = [_patient(_count(42, "0.1", 4), arm="SBRT_ATRA", randomised=False, key="R1")]
    unallocated = [_patient(_count(42, "0.1", 4), arm=None, key="U1")]
    summary = summarise(
        atra + control + run_in + unallocated,
        WINDOW,
        TODAY,
        arms=["SBRT", "SBRT_ATRA"],
        experimental="SBRT_ATRA",
    )
    by_arm = {a.arm: a for a in summary.arms}
    assert (by_arm["SBRT_ATRA"].evaluable, by_arm["SBRT_ATRA"].events) == (5, 1)
    assert (by_arm["SBRT"].patients, by_arm["SBRT"].evaluable, by_arm["SBRT"].events) == (7, 5, 4)
    assert by_arm["SBRT_ATRA"].rate == Fraction(1, 5) and by_arm["SBRT"].rate == Fraction(4, 5)
    assert [e.reason for e in by_arm["SBRT"].not_evaluable] == [Reason.NO_SBRT, Reason.NO_SAMPLE]
    assert [e.patient.key for e in summary.run_in] == ["R1"]  # listed, not compared
    assert summary.unallocated == 1
    comparison = summary.comparison
    assert comparison.table == ((1, 4), (4, 1))
    assert comparison.p_one_sided == Fraction(13, 126)  # (1 + 25) / 252, exact
    assert float(comparison.p_one_sided) == pytest.approx(
        scipy_fisher([[1, 4], [4, 1]], "less").pvalue
    )
    assert float(comparison.p_two_sided) == pytest.approx(scipy_fisher([[1, 4], [4, 1]]).pvalue)


def test_without_an_experimental_arm_only_the_two_sided_test_and_none_beyond_two_arms():
    patients = [_patient(_count(42, "0.5", 2), arm="A"), _patient(_count(42, "1.5", 0), arm="B")]
    undirected = summarise(patients, WINDOW, TODAY, arms=["A", "B"]).comparison
    assert not undirected.directional and undirected.p_one_sided is None
    assert undirected.table == ((1, 0), (0, 1)) and undirected.p_two_sided == 1
    assert (
        summarise(patients, WINDOW, TODAY, arms=["A", "B", "C"], experimental="A").comparison
        is None
    )
    empty = summarise([], WINDOW, TODAY, arms=["SBRT", "SBRT_ATRA"], experimental="SBRT_ATRA")
    assert empty.comparison.directional
    assert empty.comparison.table == ((0, 0), (0, 0)) and empty.comparison.p_one_sided == 1
    assert all(a.rate is None for a in empty.arms)
