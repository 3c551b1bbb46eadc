"""Fisher's exact test for a 2 x 2 table, computed exactly (standard library only, no Django).

Sources
-------
* Fisher RA, *The Design of Experiments*, Edinburgh: Oliver and Boyd, 1935 (section 2, the
  "lady tasting tea": the exact conditional test of a 2 x 2 table); Fisher RA, "On the
  interpretation of chi-square from contingency tables, and the calculation of P", J R Stat
  Soc 1922;85:87-94.
* Agresti A, *Categorical Data Analysis*, 3rd ed., Wiley 2013, section 3.5 ("Small-sample tests
  of independence"): conditional on both margins the count ``a`` of the table
  ``[[a, b], [c, d]]`` follows the hypergeometric distribution

      P(a = k) = C(a + b, k) C(c + d, a + c - k) / C(n, a + c),

  one-sided p-values are its tails and the two-sided p-value sums the probabilities of every
  table no more probable than the observed one (Agresti section 3.5.4; the definition used by
  R ``fisher.test`` and ``scipy.stats.fisher_exact``).

Conventions (those of ``scipy.stats.fisher_exact``)
---------------------------------------------------
* ``less``: H1 is an odds ratio below 1 (``a`` small): p = P(X <= a).
* ``greater``: H1 is an odds ratio above 1: p = P(X >= a).
* ``two-sided``: p = sum of P(X = k) over the k with P(X = k) <= P(X = a).  Computed on exact
  fractions, so ties are exact (scipy compares floats with a relative tolerance of 1e-7 to
  the same end).

Every probability is a :class:`fractions.Fraction` of exact integers (``math.comb``); convert
with ``float()`` only to display.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import comb
from typing import Final, Literal

__all__ = ["ALTERNATIVES", "FisherResult", "fisher_exact", "fisher_power", "hypergeometric"]

Alternative = Literal["two-sided", "less", "greater"]
ALTERNATIVES: Final[tuple[str, ...]] = ("two-sided", "less", "greater")


@dataclass(frozen=True)
class FisherResult:
    table: tuple[tuple[int, int], tuple[int, int]]
    odds_ratio: Fraction | None  # sample odds ratio a*d / (b*c); None when b*c == 0
    p_less: Fraction
    p_greater: Fraction
    p_two_sided: Fraction

    def p_value(self, alternative: Alternative = "two-sided") -> Fraction:
        return {
            "two-sided": self.p_two_sided,
            "less": self.p_less,
            "greater": self.p_greater,
        }[alternative]


def _check_table(table) -> tuple[tuple[int, int], tuple[int, int]]:
    try:
        (a, b), (c, d) = table
    except (TypeError, ValueError):
        raise ValueError("the table must be 2 x 2: [[a, b], [c, d]]") from None
    cells = (a, b, c, d)
    for cell in cells:
        if isinstance(cell, bool) or not isinstance(cell, int):
            raise TypeError(f"cells must be ints, got {type(cell).__name__}")
        if cell < 0:
            raise ValueError(f"cells must be >= 0, got {cell}")
    return (a, b), (c, d)


def hypergeometric(row1: int, row2: int, col1: int) -> dict[int, Fraction]:
    """P(a = k) for every possible k, given the margins (row totals and first column total)."""
    total = comb(row1 + row2, col1)
    low, high = max(0, col1 - row2), min(row1, col1)
    return {k: Fraction(comb(row1, k) * comb(row2, col1 - k), total) for k in range(low, high + 1)}


def fisher_exact(table) -> FisherResult:
    """Fisher's exact test of ``[[a, b], [c, d]]``: the three p-values, exact."""
    (a, b), (c, d) = _check_table(table)
    probabilities = hypergeometric(a + b, c + d, a + c)
    observed = probabilities[a]
    return FisherResult(
        table=((a, b), (c, d)),
        odds_ratio=Fraction(a * d, b * c) if b * c else None,
        p_less=sum((p for k, p in probabilities.items() if k <= a), Fraction(0)),
        p_greater=sum((p for k, p in probabilities.items() if k >= a), Fraction(0)),
        p_two_sided=sum((p for p in probabilities.values() if p <= observed), Fraction(0)),
    )


def _binomial(n: int, p: Fraction) -> list[Fraction]:
    return [comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]


def fisher_power(
    n1: int,
    p1: Fraction,
    n2: int,
    p2: Fraction,
    alpha: Fraction,
    alternative: Alternative = "less",
) -> Fraction:
    """Exact power of Fisher's test for two independent binomial samples.

    Group 1 (first row) has ``n1`` patients with event probability ``p1``, group 2 ``n2`` and
    ``p2``; the power is the probability, summed over every outcome (x1, x2), that the test's
    p-value is <= ``alpha``.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(ALTERNATIVES)}")
    first, second = _binomial(n1, Fraction(p1)), _binomial(n2, Fraction(p2))
    power = Fraction(0)
    for x1, prob1 in enumerate(first):
        for x2, prob2 in enumerate(second):
            result = fisher_exact(((x1, n1 - x1), (x2, n2 - x2)))
            if result.p_value(alternative) <= alpha:
                power += prob1 * prob2
    return power
