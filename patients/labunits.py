"""Laboratory units: the units each analyte may be entered in, exact conversion, plausibility.

Pure Python (standard library and :mod:`patients.ctcae`, no Django).  The Django layer calls
:func:`convert` and :func:`check_plausible` and turns :class:`UnitError` and
:class:`ImplausibleValue` into translated messages from their attributes.

Units
-----
Unit strings are matched exactly (case-sensitive, surrounding blanks ignored): ``G/L`` is a
cell count (giga per litre) whereas ``g/L`` is grams of haemoglobin per litre.

* **Cell counts** (lymphocytes, neutrophils, platelets, leukocytes) -- standard unit
  ``10^9/L``.  The accepted spellings are those of :data:`patients.ctcae.COUNT_UNITS` (so every
  count stored here can be graded there): /mm3 = /uL = cells/uL (1 mm3 = 1 uL), 10^3/uL =
  10^9/L = G/L (1000 /mm3).  Factor to 10^9/L = (cells/mm3 per unit) / 1000, exact.
* **Haemoglobin** -- standard unit ``g/dL``; g/L (x 0.1) and mmol/L, the units of
  :data:`patients.ctcae.HAEMOGLOBIN_UNITS`.  1 g/dL = 0.6206 mmol/L on the *monomer* basis
  (one globin chain with its haem, about 16,114.5 g/mol: Kratz A, Ferraro M, Sluss PM,
  Lewandrowski KB, "Laboratory reference values", N Engl J Med 2004;351:1548-1563), the basis
  of the CTCAE v5.0 Anemia columns (10.0 g/dL ~ 6.2 mmol/L, 8.0 g/dL ~ 4.9 mmol/L) and of
  ``patients/ctcae.py``.  Tables counting the tetramer (0.155 mmol/L per g/dL) are not
  supported.  mmol/L -> g/dL divides by 0.6206: the exact quotient is kept as a fraction and
  rounded only when stored (:attr:`Converted.exact` says so).  The CTCAE grade is never computed
  from a converted haemoglobin value: it uses the column of the entered unit.
* **Creatinine** -- standard ``umol/L`` (also spelt with the micro sign).  1 mg/dL = 88.4
  umol/L, 1 mg/L = 8.84 umol/L (molar mass of creatinine 113.12 g/mol: 10 000 / 113.12 =
  88.40).  Source: Young DS, "Implementation of SI units for clinical laboratory data", Ann
  Intern Med 1987;106:114-129 (conversion factor 88.4); French laboratories often report mg/L.
* **Bilirubin** -- standard ``umol/L``.  1 mg/dL = 17.1 umol/L, 1 mg/L = 1.71 umol/L (molar
  mass 584.66 g/mol: 10 000 / 584.66 = 17.10; Young 1987, factor 17.1).
* **AST, ALT** -- standard ``U/L``; IU/L and the French UI/L are the same unit; 1 ukat/L = 60
  U/L exactly (1 U = 1 umol/min = 1/60 ukat; IFCC/IUPAC definition of the katal, Dybkaer R,
  "Unit 'katal' for catalytic activity", Pure Appl Chem 2001;73:927-931).
* **Creatinine clearance** -- standard ``mL/min`` (Cockcroft-Gault or measured); 1 mL/s = 60
  mL/min.  An eGFR in mL/min/1.73 m2 is another quantity (it needs the body surface area) and
  is refused.

Plausibility
------------
:data:`PLAUSIBLE` gives, per analyte and in the standard unit, the closed interval of values
accepted at data entry.  These are edit checks chosen by OligoCRF, not reference ranges: wide
enough for the most extreme values reported in patients (e.g. aminotransferases above 10 000
U/L in ischaemic hepatitis, platelets near 2 000 x 10^9/L in essential thrombocythaemia,
creatinine near 2 000 umol/L before dialysis) and narrow enough to catch a unit mix-up
(lymphocytes "1500" typed with the unit 10^9/L instead of /mm3 is 1500 x 10^9/L: refused).
Negative and non-finite values are always refused.

All arithmetic is exact (:class:`fractions.Fraction` from :class:`decimal.Decimal`); rounding
happens once, to :data:`STORED_PLACES` decimal places, half to even.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Final

from patients.ctcae import COUNT_UNITS, HAEMOGLOBIN_UNITS

__all__ = [
    "ANALYTES",
    "PLAUSIBLE",
    "STORED_PLACES",
    "Converted",
    "ImplausibleValue",
    "UnitError",
    "check_plausible",
    "convert",
    "is_count",
    "standard_unit",
    "to_standard",
    "units_for",
]

#: Decimal places of a stored converted value (LabResult.value_standard).
STORED_PLACES: Final = 4

_MICRO, _MU = "\u00b5", "\u03bc"
_THOUSAND = Fraction(1000)


def _counts() -> dict[str, Fraction]:
    """Count unit -> 10^9/L per unit, from ctcae.COUNT_UNITS (cells/mm3 per unit)."""
    return {unit: Fraction(per_mm3) / _THOUSAND for unit, per_mm3 in COUNT_UNITS.items()}


def _haemoglobin() -> dict[str, Fraction]:
    """Haemoglobin unit -> g/dL per unit, from ctcae.HAEMOGLOBIN_UNITS (mmol/L per unit)."""
    per_g_dl = Fraction(HAEMOGLOBIN_UNITS["g/dL"])
    return {unit: Fraction(mmol) / per_g_dl for unit, mmol in HAEMOGLOBIN_UNITS.items()}


def _umol(mg_dl_factor: str) -> dict[str, Fraction]:
    """umol/L per unit for a substance with the given umol/L per mg/dL."""
    per_mg_dl = Fraction(Decimal(mg_dl_factor))
    return {
        "umol/L": Fraction(1),
        f"{_MICRO}mol/L": Fraction(1),
        f"{_MU}mol/L": Fraction(1),
        "mg/dL": per_mg_dl,
        "mg/L": per_mg_dl / 10,
    }


_ENZYME: Final = {
    "U/L": Fraction(1),
    "IU/L": Fraction(1),
    "UI/L": Fraction(1),
    "ukat/L": Fraction(60),
    f"{_MICRO}kat/L": Fraction(60),
}


@dataclass(frozen=True)
class _Analyte:
    standard: str
    factors: Mapping[str, Fraction]  # unit -> standard units per unit
    low: Decimal  # plausibility, standard unit, inclusive
    high: Decimal


def _analyte(standard: str, factors: dict[str, Fraction], low: str, high: str) -> _Analyte:
    assert factors[standard] == 1  # noqa: S101 - module constant sanity
    return _Analyte(standard, MappingProxyType(factors), Decimal(low), Decimal(high))


_ANALYTES: Final[Mapping[str, _Analyte]] = MappingProxyType(
    {
        "lymphocytes": _analyte("10^9/L", _counts(), "0", "100"),
        "neutrophils": _analyte("10^9/L", _counts(), "0", "100"),
        "platelets": _analyte("10^9/L", _counts(), "0", "2000"),
        "leukocytes": _analyte("10^9/L", _counts(), "0", "500"),
        "haemoglobin": _analyte("g/dL", _haemoglobin(), "1", "25"),
        "creatinine": _analyte("umol/L", _umol("88.4"), "5", "3000"),
        "clearance": _analyte("mL/min", {"mL/min": Fraction(1), "mL/s": Fraction(60)}, "0", "400"),
        "bilirubin": _analyte("umol/L", _umol("17.1"), "0", "1000"),
        "ast": _analyte("U/L", dict(_ENZYME), "0", "20000"),
        "alt": _analyte("U/L", dict(_ENZYME), "0", "20000"),
    }
)

#: Analyte keys (the values of ``patients.models_safety.Analyte``).
ANALYTES: Final[tuple[str, ...]] = tuple(_ANALYTES)

#: Analyte -> (lowest, highest) plausible value, inclusive, in the standard unit.
PLAUSIBLE: Final[Mapping[str, tuple[Decimal, Decimal]]] = MappingProxyType(
    {key: (a.low, a.high) for key, a in _ANALYTES.items()}
)

_COUNT_ANALYTES: Final = frozenset({"lymphocytes", "neutrophils", "platelets", "leukocytes"})


class UnitError(ValueError):
    """A unit that is not one of the analyte's accepted units."""

    def __init__(self, analyte: str, unit: str, accepted: tuple[str, ...]) -> None:
        super().__init__(f"{analyte}: unknown unit {unit!r}; accepted: {', '.join(accepted)}")
        self.analyte, self.unit, self.accepted = analyte, unit, accepted


class ImplausibleValue(ValueError):
    """A negative, non-finite or implausibly large (or small) value."""

    def __init__(self, analyte: str, value: Decimal, unit: str, low: Decimal, high: Decimal):
        self.analyte, self.value, self.unit = analyte, value, unit
        self.low, self.high, self.standard_unit = low, high, _ANALYTES[analyte].standard
        super().__init__(
            f"{analyte}: {value} {unit} is outside the plausible range "
            f"{low}-{high} {self.standard_unit}"
        )

    @property
    def negative(self) -> bool:
        return self.value.is_finite() and self.value < 0


@dataclass(frozen=True)
class Converted:
    value: Decimal  # rounded to STORED_PLACES decimal places (half to even)
    unit: str
    exact_value: Fraction
    exact: bool  # True when ``value`` equals ``exact_value`` (no rounding happened)


def _spec(analyte: str) -> _Analyte:
    try:
        return _ANALYTES[analyte]
    except KeyError:
        raise ValueError(f"unknown analyte {analyte!r}; known: {', '.join(ANALYTES)}") from None


def units_for(analyte: str) -> tuple[str, ...]:
    """Accepted units of ``analyte``, the standard unit first."""
    spec = _spec(analyte)
    return (spec.standard, *(u for u in spec.factors if u != spec.standard))


def standard_unit(analyte: str) -> str:
    return _spec(analyte).standard


def is_count(analyte: str) -> bool:
    return analyte in _COUNT_ANALYTES


def _factor(analyte: str, unit: str) -> Fraction:
    spec = _spec(analyte)
    if not isinstance(unit, str) or unit.strip() not in spec.factors:
        raise UnitError(analyte, str(unit), units_for(analyte))
    return spec.factors[unit.strip()]


def _checked_value(value: object) -> Decimal:
    if not isinstance(value, Decimal):
        raise TypeError(f"value must be a Decimal, got {type(value).__name__}")
    return value


def _rounded(exact: Fraction) -> tuple[Decimal, bool]:
    """(``exact`` rounded half to even to STORED_PLACES places, whether that was exact)."""
    scaled = exact * 10**STORED_PLACES
    whole, remainder = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * remainder
    if twice > scaled.denominator or (twice == scaled.denominator and whole % 2):
        whole += 1
    return Decimal(whole).scaleb(-STORED_PLACES), remainder == 0


def to_standard(analyte: str, value: Decimal, unit: str) -> Converted:
    """``value`` in ``unit`` expressed in the analyte's standard unit."""
    return convert(analyte, value, unit, standard_unit(analyte))


def convert(analyte: str, value: Decimal, unit: str, to: str) -> Converted:
    """``value`` in ``unit`` expressed in ``to`` (both accepted units of ``analyte``).

    :class:`UnitError` for a unit the analyte does not accept; ``TypeError`` for a non-Decimal.
    """
    value = _checked_value(value)
    if not value.is_finite():
        raise ImplausibleValue(analyte, value, unit, *PLAUSIBLE[analyte])
    exact = Fraction(value) * _factor(analyte, unit) / _factor(analyte, to)
    rounded, was_exact = _rounded(exact)
    return Converted(rounded, to.strip(), exact, was_exact)


def check_plausible(analyte: str, value: Decimal, unit: str) -> Converted:
    """The value in the standard unit; :class:`ImplausibleValue` outside :data:`PLAUSIBLE`.

    The comparison is exact (on the unrounded converted value).
    """
    value = _checked_value(value)
    spec = _spec(analyte)
    low, high = spec.low, spec.high
    if not value.is_finite() or value < 0:
        raise ImplausibleValue(analyte, value, unit, low, high)
    converted = to_standard(analyte, value, unit)
    if not Fraction(low) <= converted.exact_value <= Fraction(high):
        raise ImplausibleValue(analyte, value, unit, low, high)
    return converted
