"""Body surface area (BSA) and doses prescribed per square metre.

Pure Python (standard library only, no Django): the study's dosing choices (formula,
dose rounding, optional BSA cap, rounded or unrounded BSA) are passed in explicitly,
so the Django layer stores them per study and shows them next to every dose.

Rule: ``domain/RULES.md``, "Body surface area and dosing": "Mosteller: BSA =
sqrt(height_cm x weight_kg / 3600). DuBois: 0.007184 x weight_kg^0.425 x
height_cm^0.725."  "The ATRA trial's dose is 150 mg/m2/day on days 1-3 of each 3-week
cycle (seed 003): daily dose = 150 x BSA.  Show which BSA formula and rounding the
study uses (configurable per study); reject non-positive or implausible heights and
weights."  Seed 003 states neither the formula nor the dose rounding: they are the
study's configuration, so this module has no ATRA default (the tests show the ATRA
dose).

Sources: Mosteller RD. Simplified calculation of body-surface area. N Engl J Med
1987;317:1098.  Du Bois D, Du Bois EF. A formula to estimate the approximate surface
area if height and weight be known. Arch Intern Med 1916;17:863-871.

API
---
* :class:`Formula` -- ``MOSTELLER`` or ``DUBOIS``.
* :func:`bsa_unrounded` -- BSA in m2 to 34 significant digits.
* :func:`bsa` -- BSA in m2 reported to 0.01 m2, rounding half up.
* :func:`dose_per_m2` -- a :class:`BsaDose`: reported BSA, the BSA used for dosing,
  the dose before and after rounding to a multiple of ``rounding_mg`` (half up) and
  an ``explanation`` such as "Mosteller: sqrt(170 cm x 70 kg / 3600) = 1.82 m2;
  150 mg/m2 x 1.82 m2 = 273 mg -> 270 mg (nearest 10 mg)".  By default the dose is
  computed from the *reported* (rounded) BSA, as the explanation shows it;
  ``dose_from_rounded_bsa=False`` uses the unrounded BSA.  ``cap_bsa_m2`` (default
  None: no cap) limits the BSA used for dosing, e.g. 2.0 m2 in many protocols.

Inputs are :class:`~decimal.Decimal` or ``int``; a ``float``, ``str`` or ``bool`` is a
``TypeError`` (convert from the form's text).  Height must be 100-250 cm and weight
25-300 kg, bounds included (adult plausibility limits); a non-positive or out-of-range
value is a ``ValueError``, as is a non-positive dose, rounding step or cap.

Arithmetic: a local decimal context with 34 significant digits (never the thread's
context).  Mosteller uses :meth:`Decimal.sqrt`, correctly rounded and exact when the
root is representable, so a BSA exactly on a half-way point (182.5 cm, 65.7 kg:
1.825 m2) rounds up to 1.83 m2.  DuBois uses decimal powers (ln/exp), exact to about
34 digits; its results are irrational, never exactly half-way.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal
from typing import Final

__all__ = [
    "BSA_STEP_M2",
    "HEIGHT_RANGE_CM",
    "WEIGHT_RANGE_KG",
    "BsaDose",
    "Formula",
    "bsa",
    "bsa_unrounded",
    "dose_per_m2",
]

_CONTEXT: Final = Context(prec=34, rounding=ROUND_HALF_EVEN)

#: Inclusive plausibility limits (adults).
HEIGHT_RANGE_CM: Final = (Decimal(100), Decimal(250))
WEIGHT_RANGE_KG: Final = (Decimal(25), Decimal(300))
#: Reported BSA precision (rounding half up).
BSA_STEP_M2: Final = Decimal("0.01")


class Formula(enum.Enum):
    """BSA formula; ``label`` and ``reference`` are shown with the dose."""

    MOSTELLER = "mosteller"
    DUBOIS = "dubois"

    @property
    def label(self) -> str:
        return {"mosteller": "Mosteller", "dubois": "DuBois"}[self.value]

    @property
    def reference(self) -> str:
        return {
            "mosteller": "Mosteller RD, N Engl J Med 1987;317:1098",
            "dubois": "Du Bois D, Du Bois EF, Arch Intern Med 1916;17:863-871",
        }[self.value]


# ---------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------


def _number(name: str, value: object, unit: str) -> Decimal:
    """``value`` as a finite Decimal > 0; ``TypeError`` unless Decimal or int."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        hint = " (convert from text: Decimal('70.5'))" if isinstance(value, float) else ""
        raise TypeError(f"{name} must be a Decimal or an int, got {type(value).__name__}{hint}")
    number = Decimal(value)
    if not number.is_finite() or number <= 0:
        raise ValueError(f"{name} must be a positive number, got {value} {unit}")
    return number


def _in_range(name: str, value: object, bounds: tuple[Decimal, Decimal], unit: str) -> Decimal:
    number = _number(name, value, unit)
    low, high = bounds
    if not low <= number <= high:
        raise ValueError(f"{name} {value} {unit} is implausible (accepted {low}-{high} {unit})")
    return number


def _formula(value: object) -> Formula:
    if not isinstance(value, Formula):
        raise TypeError(f"formula must be a Formula, got {value!r}")
    return value


# ---------------------------------------------------------------------------
# BSA
# ---------------------------------------------------------------------------


def _half_up(value: Decimal, exponent: Decimal) -> Decimal:
    return value.quantize(exponent, ROUND_HALF_UP, _CONTEXT)


def _mosteller(height: Decimal, weight: Decimal) -> Decimal:
    """sqrt(height_cm x weight_kg / 3600) (Mosteller 1987)."""
    return _CONTEXT.sqrt(_CONTEXT.divide(_CONTEXT.multiply(height, weight), Decimal(3600)))


def _dubois(height: Decimal, weight: Decimal) -> Decimal:
    """0.007184 x weight_kg^0.425 x height_cm^0.725 (Du Bois & Du Bois 1916)."""
    weight_term = _CONTEXT.power(weight, Decimal("0.425"))
    height_term = _CONTEXT.power(height, Decimal("0.725"))
    return _CONTEXT.multiply(_CONTEXT.multiply(Decimal("0.007184"), weight_term), height_term)


def bsa_unrounded(height_cm: Decimal | int, weight_kg: Decimal | int, formula: Formula) -> Decimal:
    """BSA in m2 to 34 significant digits (RULES.md, Body surface area and dosing)."""
    height = _in_range("height_cm", height_cm, HEIGHT_RANGE_CM, "cm")
    weight = _in_range("weight_kg", weight_kg, WEIGHT_RANGE_KG, "kg")
    if _formula(formula) is Formula.MOSTELLER:
        return _mosteller(height, weight)
    return _dubois(height, weight)


def bsa(height_cm: Decimal | int, weight_kg: Decimal | int, formula: Formula) -> Decimal:
    """BSA in m2 reported to 0.01 m2, rounding half up (170 cm, 70 kg: Mosteller 1.82)."""
    return _half_up(bsa_unrounded(height_cm, weight_kg, formula), BSA_STEP_M2)


# ---------------------------------------------------------------------------
# Dose
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BsaDose:
    formula: Formula
    height_cm: Decimal
    weight_kg: Decimal
    bsa_m2: Decimal  # reported: 0.01 m2, half up, before any cap
    bsa_unrounded_m2: Decimal  # 34 significant digits
    dosing_bsa_m2: Decimal  # the BSA multiplied: reported or unrounded, then capped
    capped: bool  # True when cap_bsa_m2 lowered the BSA used for dosing
    dose_mg_per_m2: Decimal
    exact_dose_mg: Decimal  # dose_mg_per_m2 x dosing_bsa_m2, before rounding
    rounding_mg: Decimal
    dose_mg: Decimal  # exact_dose_mg to the nearest multiple of rounding_mg, half up
    explanation: str


def _round_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Nearest multiple of ``step``, half up (274.5 mg, step 1 mg -> 275 mg)."""
    steps = _CONTEXT.divide(value, step).quantize(Decimal(1), ROUND_HALF_UP, _CONTEXT)
    return _CONTEXT.multiply(steps, step)


def _plain(value: Decimal) -> str:
    """Fixed-point text without trailing zeros: 273.00 -> "273", 274.50 -> "274.5"."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _explain(result: BsaDose, cap: Decimal | None, from_rounded: bool) -> str:
    h, w = _plain(result.height_cm), _plain(result.weight_kg)
    if result.formula is Formula.MOSTELLER:
        text = f"Mosteller: sqrt({h} cm x {w} kg / 3600) = {result.bsa_m2} m2"
    else:
        text = f"DuBois: 0.007184 x ({w} kg)^0.425 x ({h} cm)^0.725 = {result.bsa_m2} m2"
    used, exact = f"{result.dosing_bsa_m2} m2", _plain(result.exact_dose_mg)
    if not from_rounded:
        unrounded = _half_up(result.bsa_unrounded_m2, Decimal("0.0001"))
        text += f" (unrounded ~{unrounded} m2 used for dosing)"
        used = f"~{unrounded} m2"
        exact = "~" + _plain(_half_up(result.exact_dose_mg, Decimal("0.01")))
    if result.capped:
        text += f", capped at {cap} m2"
        used, exact = f"{cap} m2", _plain(result.exact_dose_mg)
    return (
        f"{text}; {_plain(result.dose_mg_per_m2)} mg/m2 x {used} = {exact} mg"
        f" -> {_plain(result.dose_mg)} mg (nearest {_plain(result.rounding_mg)} mg)"
    )


def dose_per_m2(
    dose_mg_per_m2: Decimal | int,
    height_cm: Decimal | int,
    weight_kg: Decimal | int,
    formula: Formula,
    rounding_mg: Decimal | int,
    *,
    cap_bsa_m2: Decimal | int | None = None,
    dose_from_rounded_bsa: bool = True,
) -> BsaDose:
    """Dose in mg for a prescription in mg/m2 (RULES.md, Body surface area and dosing).

    ATRA (seed 003, "ATRA 150 mg/m^2/day for 3 days every 3 weeks"): daily dose =
    ``dose_per_m2(150, height, weight, <study formula>, <study rounding>)``.
    """
    per_m2 = _number("dose_mg_per_m2", dose_mg_per_m2, "mg/m2")
    step = _number("rounding_mg", rounding_mg, "mg")
    cap = None if cap_bsa_m2 is None else _number("cap_bsa_m2", cap_bsa_m2, "m2")
    if not isinstance(dose_from_rounded_bsa, bool):
        raise TypeError("dose_from_rounded_bsa must be a bool")
    unrounded = bsa_unrounded(height_cm, weight_kg, formula)
    reported = _half_up(unrounded, BSA_STEP_M2)
    basis = reported if dose_from_rounded_bsa else unrounded
    capped = cap is not None and basis > cap
    dosing = cap if capped and cap is not None else basis
    exact = _CONTEXT.multiply(per_m2, dosing)
    result = BsaDose(
        formula=formula,
        height_cm=Decimal(height_cm),
        weight_kg=Decimal(weight_kg),
        bsa_m2=reported,
        bsa_unrounded_m2=unrounded,
        dosing_bsa_m2=dosing,
        capped=capped,
        dose_mg_per_m2=per_m2,
        exact_dose_mg=exact,
        rounding_mg=step,
        dose_mg=_round_to_step(exact, step),
        explanation="",
    )
    return replace(result, explanation=_explain(result, cap, dose_from_rounded_bsa))
