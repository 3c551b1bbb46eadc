"""Biologically effective dose (BED) and EQD2 of a fractionated prescription.

Pure Python (standard library only, no Django): the Django layer builds a
:class:`Prescription` from the eCRF and displays what these functions return.

Rule: ``domain/RULES.md``, "Radiobiology (linear-quadratic model, no time factor)":
"BED = n x d x (1 + d / (alpha/beta)); EQD2 = BED / (1 + 2 / (alpha/beta)). Report to
0.01 Gy, rounding half up." alpha/beta is 10 Gy for tumour and acute effects and 3 Gy
for late effects, configurable per study or lesion; n < 1, d <= 0 and alpha/beta <= 0
are rejected.

Sources: Fowler JF. The linear-quadratic formula and progress in fractionated
radiotherapy. Br J Radiol 1989;62:679-694 (BED).  Joiner MC, van der Kogel AJ (eds).
Basic Clinical Radiobiology, chapter on fractionation and the LQ model (EQD2, the
isoeffective dose in 2 Gy fractions, after Withers HR, Thames HD, Peters LJ. A new
isoeffect curve for change in dose per fraction. Radiother Oncol 1983;1:187-191).
No time factor: repopulation during the short SBRT courses of the seed trials
(STEREOSARC: 3 or 5 fractions within 3 weeks; ATRA: weekdays over at most 2 weeks)
is ignored.  The LQ model is debated above about 10 Gy per fraction; the figures are
the conventional protocol values, not a claim about biology.

API
---
* :class:`Prescription` -- ``total_dose_gy`` (Decimal) and ``fractions`` (int).
  :attr:`Prescription.dose_per_fraction` is ``total / fractions`` as a Decimal: exact
  when the quotient terminates (35/5 = 7, 27/4 = 6.75), otherwise rounded to 34
  significant digits, half even (20/3 = 6.666...667).  It is for display: BED and
  EQD2 never use that rounded value (see "Arithmetic").
* :func:`bed` and :func:`eqd2` -- ``(prescription, alpha_beta) -> Decimal`` in Gy,
  rounded to 0.01 Gy half up.  ``alpha_beta`` has no default on purpose: a silent
  tumour value applied to an organ at risk would understate the late-effect dose.
  :data:`ALPHA_BETA_TUMOUR` (10 Gy) and :data:`ALPHA_BETA_LATE` (3 Gy) name the
  defaults of the rule.
* :func:`summary` -- BED and EQD2 for several alpha/beta values at once (default
  10 and 3 Gy) as an :class:`LQSummary` of :class:`LQResult`.
* :func:`check_dose_per_fraction` -- data-entry check of total dose, number of
  fractions and the dose per fraction entered beside them; returns the
  :class:`Prescription`.

Inputs: doses and alpha/beta are :class:`~decimal.Decimal` or ``int``.  A ``float``
(or ``str``, ``bool``) is a ``TypeError``: a binary float cannot hold most doses
exactly (``0.1 + 0.2 != 0.3``), so the caller converts from the form's text or
DecimalField.  A number of fractions is an ``int`` or a whole Decimal (``Decimal(5)``
becomes ``5``); ``Decimal("2.5")`` fractions is a ``ValueError``.  Non-finite values,
n < 1, doses <= 0 and alpha/beta <= 0 are ``ValueError`` with a message naming the
field and the value.

Arithmetic: every result is computed exactly in rational numbers
(:class:`fractions.Fraction`, built exactly from the Decimals) and rounded once, half
up, at 0.01 Gy.  Decimal alone cannot hold d = 20/3 Gy or 2/(alpha/beta) = 2/3, and
rounding those intermediates can move a result that sits exactly on a half-way point
(6.5 Gy in 2 fractions, alpha/beta 3 Gy: EQD2 = 8.125 Gy -> 8.13 Gy).  EQD2 is derived
from the exact BED, never from the rounded one.  The module does not read or change
the thread's decimal context.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction
from typing import Final

__all__ = [
    "ALPHA_BETA_LATE",
    "ALPHA_BETA_TUMOUR",
    "CONSISTENCY_TOLERANCE_GY",
    "DEFAULT_ALPHA_BETAS",
    "MAX_DOSE_PER_FRACTION_GY",
    "LQResult",
    "LQSummary",
    "Prescription",
    "bed",
    "check_dose_per_fraction",
    "eqd2",
    "summary",
]

#: alpha/beta for tumour and acute effects (Gy).
ALPHA_BETA_TUMOUR: Final = Decimal(10)
#: alpha/beta for late effects (Gy).
ALPHA_BETA_LATE: Final = Decimal(3)
DEFAULT_ALPHA_BETAS: Final = (ALPHA_BETA_TUMOUR, ALPHA_BETA_LATE)
#: Data-entry plausibility limit for one fraction (treatments issue: bad input).
MAX_DOSE_PER_FRACTION_GY: Final = Decimal(30)
#: Largest accepted |total - n x d| between the entered total and dose per fraction.
CONSISTENCY_TOLERANCE_GY: Final = Decimal("0.01")

# Display only (dose per fraction, error messages): decimal128 precision, local context.
_DISPLAY: Final = Context(prec=34, rounding=ROUND_HALF_EVEN)


# ---------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------


def _number(name: str, value: object) -> Decimal:
    """``value`` as a finite Decimal; ``TypeError`` unless Decimal or int."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        hint = " (convert from text: Decimal('8.5'))" if isinstance(value, float) else ""
        raise TypeError(f"{name} must be a Decimal or an int, got {type(value).__name__}{hint}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"{name} must be a finite number, got {value}")
    return number


def _positive(name: str, value: object, unit: str = "Gy") -> Decimal:
    number = _number(name, value)
    if number <= 0:
        raise ValueError(f"{name} must be greater than 0 {unit}, got {value} {unit}")
    return number


def _whole_fractions(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"fractions must be an int, got {type(value).__name__}")
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise ValueError(f"fractions must be a whole number, got {value}")
        value = int(value)
    if value < 1:
        raise ValueError(f"fractions must be at least 1, got {value}")
    return value


def _alpha_beta(value: object) -> Fraction:
    return Fraction(_positive("alpha_beta", value))


# ---------------------------------------------------------------------------
# Prescription and exact arithmetic
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Prescription:
    """``total_dose_gy`` in ``fractions`` equal fractions (ints are stored as Decimal)."""

    total_dose_gy: Decimal
    fractions: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "total_dose_gy", _positive("total_dose_gy", self.total_dose_gy))
        object.__setattr__(self, "fractions", _whole_fractions(self.fractions))

    @property
    def dose_per_fraction(self) -> Decimal:
        """Exact when the quotient terminates, else 34 significant digits (display only)."""
        return _DISPLAY.divide(self.total_dose_gy, Decimal(self.fractions))


def _exact_dose_per_fraction(prescription: Prescription) -> Fraction:
    return Fraction(prescription.total_dose_gy) / prescription.fractions


def _exact_bed(prescription: Prescription, alpha_beta: Fraction) -> Fraction:
    """n x d x (1 + d / (alpha/beta)) = D x (1 + d / (alpha/beta)) (Fowler 1989)."""
    total = Fraction(prescription.total_dose_gy)
    return total * (1 + _exact_dose_per_fraction(prescription) / alpha_beta)


def _exact_eqd2(prescription: Prescription, alpha_beta: Fraction) -> Fraction:
    """BED / (1 + 2 / (alpha/beta)) (Withers 1983)."""
    return _exact_bed(prescription, alpha_beta) / (1 + 2 / alpha_beta)


def _round_gy(value: Fraction) -> Decimal:
    """A value >= 0 to 0.01 Gy, half up, decided exactly (no binary or decimal rounding)."""
    hundredths, remainder = divmod(value.numerator * 100, value.denominator)
    if 2 * remainder >= value.denominator:
        hundredths += 1
    return Decimal(f"{hundredths}e-2")


def _check_prescription(value: object) -> Prescription:
    if not isinstance(value, Prescription):
        raise TypeError(f"prescription must be a Prescription, got {type(value).__name__}")
    return value


# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------


def bed(prescription: Prescription, alpha_beta: Decimal | int) -> Decimal:
    """Biologically effective dose in Gy, to 0.01 Gy half up.

    RULES.md Radiobiology: "BED = n x d x (1 + d / (alpha/beta))" (Fowler 1989).
    E.g. 8 Gy x 1 with alpha/beta 10 Gy: 8 x 1.8 = 14.40 Gy.
    """
    return _round_gy(_exact_bed(_check_prescription(prescription), _alpha_beta(alpha_beta)))


def eqd2(prescription: Prescription, alpha_beta: Decimal | int) -> Decimal:
    """Equivalent dose in 2 Gy fractions in Gy, to 0.01 Gy half up, from the exact BED.

    RULES.md Radiobiology: "EQD2 = BED / (1 + 2 / (alpha/beta))" (Joiner & van der
    Kogel; Withers 1983).  E.g. 8 Gy x 1 with alpha/beta 10 Gy: 14.4 / 1.2 = 12.00 Gy.
    """
    return _round_gy(_exact_eqd2(_check_prescription(prescription), _alpha_beta(alpha_beta)))


@dataclass(frozen=True)
class LQResult:
    alpha_beta_gy: Decimal
    bed_gy: Decimal  # 0.01 Gy, half up
    eqd2_gy: Decimal  # 0.01 Gy, half up, from the exact BED


@dataclass(frozen=True)
class LQSummary:
    prescription: Prescription
    results: tuple[LQResult, ...]  # in the order the alpha/beta values were given

    def for_alpha_beta(self, alpha_beta: Decimal | int) -> LQResult:
        """The result for ``alpha_beta`` (compared by value); ``KeyError`` if absent."""
        for result in self.results:
            if result.alpha_beta_gy == alpha_beta:
                return result
        raise KeyError(f"no result for alpha/beta {alpha_beta} Gy")


def summary(
    prescription: Prescription, alpha_betas: Iterable[Decimal | int] = DEFAULT_ALPHA_BETAS
) -> LQSummary:
    """BED and EQD2 for each alpha/beta (default 10 Gy tumour, 3 Gy late).

    RULES.md Radiobiology: "alpha/beta 10 Gy for tumour and acute effects, 3 Gy for late
    effects, configurable per study or lesion."  ``ValueError`` for no value or a
    value given twice.
    """
    _check_prescription(prescription)
    values = tuple(_positive("alpha_beta", value) for value in alpha_betas)
    if not values:
        raise ValueError("alpha_betas must hold at least one value")
    if len(set(values)) != len(values):
        raise ValueError(f"alpha_betas must not repeat a value, got {', '.join(map(str, values))}")
    results = tuple(
        LQResult(value, bed(prescription, value), eqd2(prescription, value)) for value in values
    )
    return LQSummary(prescription, results)


def check_dose_per_fraction(
    total_dose_gy: Decimal | int,
    fractions: Decimal | int,
    dose_per_fraction_gy: Decimal | int,
    *,
    max_dose_per_fraction_gy: Decimal | int = MAX_DOSE_PER_FRACTION_GY,
    tolerance_gy: Decimal | int = CONSISTENCY_TOLERANCE_GY,
) -> Prescription:
    """The :class:`Prescription` if the three entered values agree, else ``ValueError``.

    Refused: a dose per fraction above ``max_dose_per_fraction_gy`` (30 Gy, the
    treatments issue's bad-input rule), and |total - n x d| > ``tolerance_gy``
    (0.01 Gy) -- unless d is total / n rounded half up to 0.01 Gy, because a form
    holding 0.01 Gy cannot store 40 Gy / 6 more closely than 6.67 Gy (6 x 6.67 = 40.02).
    """
    prescription = Prescription(total_dose_gy, fractions)
    entered = _positive("dose_per_fraction_gy", dose_per_fraction_gy)
    maximum = _positive("max_dose_per_fraction_gy", max_dose_per_fraction_gy)
    tolerance = _number("tolerance_gy", tolerance_gy)
    if tolerance < 0:
        raise ValueError(f"tolerance_gy must not be negative, got {tolerance_gy} Gy")
    exact = _exact_dose_per_fraction(prescription)
    if entered > maximum or exact > maximum:
        shown = entered if entered > maximum else prescription.dose_per_fraction
        raise ValueError(f"dose per fraction {shown} Gy is above the maximum of {maximum} Gy")
    n, total = prescription.fractions, prescription.total_dose_gy
    gap = abs(Fraction(total) - n * Fraction(entered))
    if gap > Fraction(tolerance) and entered != _round_gy(exact):
        delivered = _DISPLAY.multiply(entered, Decimal(n))
        raise ValueError(
            f"{n} fractions x {entered} Gy = {delivered} Gy, but the total dose is {total} Gy "
            f"(difference {_DISPLAY.subtract(delivered, total).copy_abs()} Gy > {tolerance} Gy)"
        )
    return prescription
