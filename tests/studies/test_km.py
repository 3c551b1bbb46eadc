"""Kaplan-Meier estimates (studies/dashboards/km.py) against a textbook example worked by hand,
Greenwood's variance, the median and censoring; and the module's purity."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studies.dashboards.km import kaplan_meier

MAIN = Path(__file__).resolve().parents[2]
Z95 = 1.959963984540054

# Freireich et al. (Blood 1963), 6-MP arm: weeks in remission, "+" = censored; tabulated in
# Kleinbaum & Klein, Survival Analysis: A Self-Learning Text, chapter 2 (remission data).
MP6 = "6 6 6 6+ 7 9+ 10 10+ 11+ 13 16 17+ 19+ 20+ 22 23 25+ 32+ 32+ 34+ 35+"
TIMES = [float(v.rstrip("+")) for v in MP6.split()]
EVENTS = [not v.endswith("+") for v in MP6.split()]

# The hand computation: (time, at risk n_i, events d_i, S(t) = prod (1 - d/n)).
HAND = [
    (6, 21, 3, 18 / 21),
    (7, 17, 1, 18 / 21 * 16 / 17),
    (10, 15, 1, 18 / 21 * 16 / 17 * 14 / 15),
    (13, 12, 1, 18 / 21 * 16 / 17 * 14 / 15 * 11 / 12),
    (16, 11, 1, 18 / 21 * 16 / 17 * 14 / 15 * 11 / 12 * 10 / 11),
    (22, 7, 1, 18 / 21 * 16 / 17 * 14 / 15 * 11 / 12 * 10 / 11 * 6 / 7),
    (23, 6, 1, 18 / 21 * 16 / 17 * 14 / 15 * 11 / 12 * 10 / 11 * 6 / 7 * 5 / 6),
]
# The same values rounded as the textbook prints them.
PRINTED = {6: 0.857, 7: 0.807, 10: 0.753, 13: 0.690, 16: 0.627, 22: 0.538, 23: 0.448}


def _greenwood_sum(upto: float) -> float:
    return sum(d / (n * (n - d)) for t, n, d, _s in HAND if t <= upto)


def _event_steps(curve):
    return [step for step in curve.steps if step.events]


def test_the_6mp_curve_matches_the_hand_computation_and_the_textbook():
    curve = kaplan_meier(TIMES, EVENTS)
    assert curve.n == 21 and curve.events == 9
    steps = _event_steps(curve)
    assert [(s.time, s.at_risk, s.events) for s in steps] == [(t, n, d) for t, n, d, _ in HAND]
    for step, (_t, _n, _d, survival) in zip(steps, HAND, strict=True):
        assert step.survival == pytest.approx(survival, abs=1e-12)
        assert round(step.survival, 3) == PRINTED[int(step.time)]


def test_a_patient_censored_on_the_day_of_an_event_is_still_at_risk_for_it():
    curve = kaplan_meier(TIMES, EVENTS)
    first = curve.steps[0]
    assert (first.time, first.at_risk, first.events, first.censored) == (6, 21, 3, 1)
    assert first.survival == pytest.approx(18 / 21)  # not 17/20: the censored one counts


def test_censorings_do_not_lower_the_curve_and_are_listed_for_ticks():
    curve = kaplan_meier(TIMES, EVENTS)
    assert curve.censor_times == (6, 9, 10, 11, 17, 19, 20, 25, 32, 34, 35)
    assert curve.at(9).survival == curve.at(7).survival  # 9+ is a censoring
    assert curve.at(34.5).survival == pytest.approx(HAND[-1][3])


def test_the_linear_interval_is_greenwoods_variance_clipped_to_0_1():
    curve = kaplan_meier(TIMES, EVENTS, method="linear")
    for t, _n, _d, survival in HAND:
        se = survival * math.sqrt(_greenwood_sum(t))
        estimate = curve.at(t)
        assert estimate.low == pytest.approx(max(0.0, survival - Z95 * se), abs=1e-9)
        assert estimate.high == pytest.approx(min(1.0, survival + Z95 * se), abs=1e-9)
    # Greenwood's standard errors as printed for this example: 0.076 at 6 weeks, 0.135 at 23.
    assert HAND[0][3] * math.sqrt(_greenwood_sum(6)) == pytest.approx(0.076, abs=5e-4)
    assert HAND[-1][3] * math.sqrt(_greenwood_sum(23)) == pytest.approx(0.135, abs=5e-4)


def test_the_log_log_interval_is_the_kalbfleisch_prentice_transform_of_greenwood():
    curve = kaplan_meier(TIMES, EVENTS)  # default: log-log
    for t, _n, _d, survival in HAND:
        sigma = math.sqrt(_greenwood_sum(t)) / abs(math.log(survival))
        theta = math.log(-math.log(survival))
        limits = sorted(math.exp(-math.exp(theta + sign * Z95 * sigma)) for sign in (-1, 1))
        estimate = curve.at(t)
        assert (estimate.low, estimate.high) == pytest.approx(tuple(limits), abs=1e-9)
        assert estimate.low < estimate.survival < estimate.high


def test_the_median_is_the_first_time_the_curve_reaches_one_half_or_below():
    curve = kaplan_meier(TIMES, EVENTS)
    assert curve.median == 23  # S(22) = 0.538, S(23) = 0.448
    # Lower limit: the lower band first <= 0.5 at 13 (0.432); the upper band never does.
    assert curve.median_ci == (13, None)
    exactly_half = kaplan_meier([1, 2, 3, 4], [True] * 4)  # S(2) = 0.5 exactly
    assert exactly_half.median == 2


def test_the_median_is_not_reached_while_survival_stays_above_one_half():
    curve = kaplan_meier([5, 8, 12, 20], [True, False, False, False])
    assert curve.at(20).survival == pytest.approx(0.75)
    assert curve.median is None


def test_an_all_censored_group_stays_at_one_with_no_interval():
    curve = kaplan_meier([30, 60, 90], [False, False, False])
    assert curve.events == 0 and curve.median is None
    estimate = curve.at(45)
    assert estimate.survival == 1.0 and estimate.low is None and estimate.high is None
    assert estimate.at_risk == 2


def test_the_number_at_risk_counts_everyone_still_followed_at_that_time():
    curve = kaplan_meier(TIMES, EVENTS)
    assert curve.at(0).at_risk == 21
    assert curve.at(6).at_risk == 21
    assert curve.at(6.5).at_risk == 17
    assert curve.at(12).at_risk == 12
    assert curve.at(35).at_risk == 1


def test_survival_is_not_extrapolated_past_the_longest_follow_up():
    curve = kaplan_meier(TIMES, EVENTS)
    beyond = curve.at(36)
    assert beyond.survival is None and beyond.at_risk == 0
    ended = kaplan_meier([1, 2], [True, True])  # everyone had the event: S = 0 stays known
    assert ended.at(10).survival == 0.0


def test_before_the_first_event_survival_is_one():
    curve = kaplan_meier(TIMES, EVENTS)
    assert curve.at(5.9).survival == 1.0


def test_no_patient_gives_an_empty_curve():
    curve = kaplan_meier([], [])
    assert curve.n == 0 and curve.steps == () and curve.median is None


@pytest.mark.parametrize(
    ("times", "events", "kwargs"),
    [
        ([1, 2], [True], {}),
        ([-1], [True], {}),
        ([1], [True], {"confidence": 1.0}),
        ([1], [True], {"method": "arcsine"}),
    ],
)
def test_bad_input_is_refused(times, events, kwargs):
    with pytest.raises(ValueError):
        kaplan_meier(times, events, **kwargs)


@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=400), st.booleans()),
        min_size=1,
        max_size=40,
    )
)
def test_survival_never_rises_and_its_interval_holds_it(observations):
    curve = kaplan_meier([t for t, _e in observations], [e for _t, e in observations])
    previous = 1.0
    for step in curve.steps:
        assert 0.0 <= step.survival <= previous + 1e-12
        previous = step.survival
        if step.low is not None and step.high is not None:
            assert step.low - 1e-9 <= step.survival <= step.high + 1e-9
    assert curve.n == len(observations)
    assert curve.events == sum(e for _t, e in observations)


def test_the_km_and_svg_modules_import_no_django():
    code = (
        "import sys, studies.dashboards.km, studies.dashboards.svg; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)"
    )
    completed = subprocess.run(  # noqa: S603 - fixed arguments
        [sys.executable, "-c", code], cwd=MAIN, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
