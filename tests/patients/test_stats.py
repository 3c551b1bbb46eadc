"""Fisher's exact test, computed exactly, against scipy.stats.fisher_exact."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from scipy.stats import fisher_exact as scipy_fisher

from patients import stats

ALTERNATIVES = ("less", "greater", "two-sided")


def _tables(max_total: int):
    for a, b, c, d in itertools.product(range(max_total + 1), repeat=4):
        if a + b + c + d <= max_total:
            yield ((a, b), (c, d))


def _check(table) -> None:
    result = stats.fisher_exact(table)
    for alternative in ALTERNATIVES:
        expected = scipy_fisher(table, alternative=alternative).pvalue
        got = float(result.p_value(alternative))
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-15), (table, alternative)


def test_every_small_table_matches_scipy_for_the_three_alternatives():
    tables = list(_tables(10))
    assert len(tables) == 1001  # every table of up to 10 patients
    for table in tables:
        _check(table)


def test_every_outcome_of_the_atra_trial_26_per_arm_matches_scipy():
    for events_atra, events_control in itertools.product(range(27), repeat=2):
        _check(((events_atra, 26 - events_atra), (events_control, 26 - events_control)))


@pytest.mark.parametrize(
    "table",
    [
        ((3, 1), (1, 3)),  # Fisher's lady tasting tea
        ((8, 2), (1, 5)),
        ((0, 10), (10, 0)),
        ((0, 0), (0, 0)),
        ((12, 5), (7, 20)),
        ((1, 40), (9, 33)),
        ((50, 60), (45, 70)),
        ((2, 98), (15, 85)),
        ((100, 3), (80, 20)),
    ],
)
def test_further_tables_match_scipy_including_the_odds_ratio(table):
    _check(table)
    (a, b), (c, d) = table
    scipy_ratio = scipy_fisher(table).statistic
    ratio = stats.fisher_exact(table).odds_ratio
    if b * c:
        assert float(ratio) == pytest.approx(scipy_ratio)
    else:
        assert ratio is None


def test_the_lady_tasting_tea_has_fishers_own_probability():
    # Fisher 1935: 4 of 4 cups right has probability 1/70; 3 of 4 or better 17/70.
    assert stats.fisher_exact(((4, 0), (0, 4))).p_greater == Fraction(1, 70)
    assert stats.fisher_exact(((3, 1), (1, 3))).p_greater == Fraction(17, 70)
    assert stats.fisher_exact(((3, 1), (1, 3))).p_two_sided == Fraction(34, 70)


def test_p_values_are_exact_fractions_and_the_distribution_sums_to_one():
    result = stats.fisher_exact(((3, 23), (13, 13)))
    assert isinstance(result.p_less, Fraction) and isinstance(result.p_two_sided, Fraction)
    assert sum(stats.hypergeometric(26, 26, 16).values()) == 1
    assert result.p_less + result.p_greater - stats.hypergeometric(26, 26, 16)[3] == 1


def test_the_atra_design_has_the_power_the_protocol_states():
    # Seed 003: 26 per arm, 50 % -> 15 %, one-sided alpha 0.07: "85% power".
    power = stats.fisher_power(
        26, Fraction(15, 100), 26, Fraction(50, 100), Fraction(7, 100), "less"
    )
    assert round(float(power), 2) == 0.85


@pytest.mark.parametrize(
    ("table", "error"),
    [
        (((1, -1), (2, 3)), ValueError),
        (((1, 2, 3), (2, 3)), ValueError),
        (((1, 2),), ValueError),
        (((1.0, 2), (2, 3)), TypeError),
        (((True, 2), (2, 3)), TypeError),
    ],
)
def test_bad_tables_are_refused(table, error):
    with pytest.raises(error):
        stats.fisher_exact(table)


def test_unknown_alternatives_are_refused():
    with pytest.raises(ValueError, match="alternative"):
        stats.fisher_power(5, Fraction(1, 2), 5, Fraction(1, 2), Fraction(1, 20), "lesser")
