"""Kaplan-Meier survival estimates with Greenwood confidence intervals (scipy; no Django).

The estimate itself is ``scipy.stats.ecdf`` on ``scipy.stats.CensoredData`` (right censoring):
this module only turns scipy's arrays into frozen dataclasses of plain floats, adds the numbers
at risk, and reads off the survival at a time and the median.

Definitions
-----------
* Kaplan EL, Meier P. "Nonparametric estimation from incomplete observations", J Am Stat Assoc
  1958;53:457-481: S(t) = prod over event times t_i <= t of (1 - d_i / n_i), where n_i is the
  number at risk just before t_i (every patient whose time is >= t_i: a patient censored on the
  day of an event is still at risk for it) and d_i the number of events at t_i.
* Greenwood M. "The natural duration of cancer", Reports on Public Health and Medical Subjects
  33, HMSO 1926: Var S(t) = S(t)^2 * sum d_i / (n_i (n_i - d_i)).
* Confidence interval, ``"log-log"`` (the default; Kalbfleisch JD, Prentice RL, *The
  Statistical Analysis of Failure Time Data*, Wiley 1980): exp(-exp(log(-log S) +/- z * sigma
  / |log S|)) with sigma^2 = sum d_i / (n_i (n_i - d_i)); it stays within [0, 1].
  ``"linear"``: S +/- z * sqrt(Var S), clipped to [0, 1].  Both as scipy computes them
  (``ECDFResult.sf.confidence_interval(method=...)``).  Where the formula is undefined (S = 1
  before the first event, S = 0 after the last, or n_i = d_i for the linear form) the limits are
  ``None``.
* Median survival (Klein JP, Moeschberger ML, *Survival Analysis*, 2nd ed., Springer 2003,
  section 4.5): the smallest time at which S(t) <= 0.5; ``None`` ("not reached") if S never
  falls that low.  Its confidence interval is read the same way off the two limits of the
  pointwise band (as R's ``survfit`` does): the lower limit is the first time the lower band
  is <= 0.5, the upper limit the first time the upper band is <= 0.5 (``None``: not reached).

Worked example (tests/studies/test_km.py): the 6-MP arm of Freireich et al. (Blood 1963), as
tabulated by Kleinbaum & Klein, *Survival Analysis: A Self-Learning Text*: remission times 6, 6,
6, 6+, 7, 9+, 10, 10+, 11+, 13, 16, 17+, 19+, 20+, 22, 23, 25+, 32+, 32+, 34+, 35+ weeks give
S = 0.857, 0.807, 0.753, 0.690, 0.627, 0.538, 0.448 at 6, 7, 10, 13, 16, 22, 23 and a median
of 23 weeks.
"""

from __future__ import annotations

import math
import warnings
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from scipy import stats

__all__ = ["METHODS", "Curve", "Estimate", "Step", "kaplan_meier"]

Method = Literal["log-log", "linear"]
METHODS: Final[tuple[str, ...]] = ("log-log", "linear")


@dataclass(frozen=True)
class Step:
    """One distinct observed time: who was at risk, what happened, and S(t) just after it."""

    time: float
    at_risk: int
    events: int
    censored: int
    survival: float
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Estimate:
    """S(t) with its confidence limits and the number still at risk at ``time``.

    ``survival`` is ``None`` past the longest follow-up when the curve has not reached 0 there:
    nobody was observed that long, so S(t) is not estimated (no extrapolation).
    """

    time: float
    survival: float | None
    low: float | None
    high: float | None
    at_risk: int


@dataclass(frozen=True)
class Curve:
    n: int
    events: int
    confidence: float
    steps: tuple[Step, ...]  # ordered by time; S is a right-continuous step function of them

    def at(self, time: float) -> Estimate:
        """S(time): the last step at or before ``time`` (1 before any), at risk = times >= it.

        Past the last observed time S is not estimated (``None``) unless it already reached 0.
        """
        grid = [step.time for step in self.steps]
        index = bisect_right(grid, time)
        last = self.steps[-1] if self.steps else None
        if last is not None and time > last.time and last.survival > 0:
            return Estimate(time, None, None, None, 0)  # beyond the longest follow-up
        if index == 0:
            survival, low, high = 1.0, None, None
        else:
            step = self.steps[index - 1]
            survival, low, high = step.survival, step.low, step.high
        first_not_before = bisect_left(grid, time)
        at_risk = self.steps[first_not_before].at_risk if first_not_before < len(grid) else 0
        return Estimate(time, survival, low, high, at_risk)

    def _first_at_or_below(self, values: Sequence[float | None], level: float) -> float | None:
        for step, value in zip(self.steps, values, strict=True):
            if value is not None and value <= level:
                return step.time
        return None

    @property
    def median(self) -> float | None:
        """Smallest time with S(t) <= 0.5; ``None`` when not reached."""
        return self._first_at_or_below([s.survival for s in self.steps], 0.5)

    @property
    def median_ci(self) -> tuple[float | None, float | None]:
        """(lower, upper) limits of the median from the pointwise band; ``None``: not reached."""
        lower = self._first_at_or_below([s.low for s in self.steps], 0.5)
        upper = self._first_at_or_below([s.high for s in self.steps], 0.5)
        return lower, upper

    @property
    def censor_times(self) -> tuple[float, ...]:
        """Distinct times at which at least one patient was censored (for tick marks)."""
        return tuple(step.time for step in self.steps if step.censored)

    @property
    def last_time(self) -> float:
        return self.steps[-1].time if self.steps else 0.0


def _limit(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _check(times: Sequence[float], events: Sequence[bool], confidence: float, method: str):
    if len(times) != len(events):
        raise ValueError(f"{len(times)} times but {len(events)} event flags")
    if any(math.isnan(t) or t < 0 for t in times):
        raise ValueError("times must be numbers >= 0")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def kaplan_meier(
    times: Sequence[float],
    events: Sequence[bool],
    *,
    confidence: float = 0.95,
    method: Method = "log-log",
) -> Curve:
    """The Kaplan-Meier curve of right-censored ``times`` (``events[i]`` False: censored)."""
    times = [float(t) for t in times]
    events = [bool(e) for e in events]
    _check(times, events, confidence, method)
    if not times:
        return Curve(0, 0, confidence, ())
    data = stats.CensoredData(
        uncensored=[t for t, e in zip(times, events, strict=True) if e],
        right=[t for t, e in zip(times, events, strict=True) if not e],
    )
    sf = stats.ecdf(data).sf
    grid = np.asarray(sf.quantiles, dtype=float)
    with warnings.catch_warnings():
        # scipy warns where the interval is undefined (S = 0 or 1); those limits become None.
        warnings.simplefilter("ignore", RuntimeWarning)
        band = sf.confidence_interval(confidence, method=method)
        lows, highs = band.low.evaluate(grid), band.high.evaluate(grid)
    died = Counter(t for t, e in zip(times, events, strict=True) if e)
    lost = Counter(t for t, e in zip(times, events, strict=True) if not e)
    ordered = sorted(times)
    steps = tuple(
        Step(
            time=float(t),
            at_risk=len(ordered) - bisect_left(ordered, float(t)),
            events=died.get(float(t), 0),
            censored=lost.get(float(t), 0),
            survival=float(s),
            low=_limit(low),
            high=_limit(high),
        )
        for t, s, low, high in zip(grid, sf.probabilities, lows, highs, strict=True)
    )
    return Curve(len(times), sum(events), confidence, steps)
