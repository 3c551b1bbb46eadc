"""CTCAE v5.0 grading of four haematology laboratory terms.

Pure Python (standard library only, no Django): the Django layer builds
:class:`LabValue` objects from the eCRF, calls :func:`grade` and stores or shows
the :class:`GradeResult`.

Sources
-------
* NCI Common Terminology Criteria for Adverse Events (CTCAE) **v5.0**, published
  27 November 2017 (workbook ``CTCAE_v5.0_2017-11-27.xlsx``, sheet "CTCAE v5.0
  Clean Copy"; OligoCRF keeps a verbatim CSV of it, ``ctcae_v5_terms.csv``, in the
  shared domain folder, described in its ``SOURCES.md``).  The version is pinned
  in :data:`CTCAE_VERSION` because v6.0 (2025) changed several terms.  Verbatim
  grade texts (grade 5 is ``" -"``, i.e. not defined, for the three counts):

  - Lymphocyte count decreased (MedDRA 10025256): G1 "<LLN - 800/mm3; <LLN - 0.8
    x 10e9/L"; G2 "<800 - 500/mm3; <0.8 - 0.5 x 10e9 /L"; G3 "<500 - 200/mm3; <0.5
    - 0.2 x 10e9 /L"; G4 "<200/mm3; <0.2 x 10e9 /L".
  - Neutrophil count decreased (10029366): G1 "<LLN - 1500/mm3; <LLN - 1.5 x 10e9
    /L"; G2 "<1500 - 1000/mm3; <1.5 - 1.0 x 10e9 /L"; G3 "<1000 - 500/mm3; <1.0 -
    0.5 x 10e9 /L"; G4 "<500/mm3; <0.5 x 10e9 /L".
  - Platelet count decreased (10035528): G1 "<LLN - 75,000/mm3; <LLN - 75.0 x 10e9
    /L"; G2 "<75,000 - 50,000/mm3; <75.0 - 50.0 x 10e9 /L"; G3 "<50,000 -
    25,000/mm3; <50.0 - 25.0 x 10e9 /L"; G4 "<25,000/mm3; <25.0 x 10e9 /L".
  - Anemia (10002272): G1 "Hemoglobin (Hgb) <LLN - 10.0 g/dL; <LLN - 6.2 mmol/L;
    <LLN - 100 g/L"; G2 "Hgb <10.0 - 8.0 g/dL; <6.2 - 4.9 mmol/L; <100 - 80g/L";
    G3 "Hgb <8.0 g/dL; <4.9 mmol/L; <80 g/L; transfusion indicated"; G4
    "Life-threatening consequences; urgent intervention indicated"; G5 "Death".

* OligoCRF domain rules, ``RULES.md`` section "CTCAE v5.0 lab grading" (same
  thresholds; it agrees with the CTCAE text above).

The thresholds are embedded below as constants (the engine reads no file).

Grading rules
-------------
* A band "<A - B" is the half-open interval ``B <= value < A``: a value exactly
  on a bound takes the milder grade (lymphocytes 800 -> 1, 500 -> 2, 200 -> 3).
  A value >= LLN (and >= the grade-2 bound) is grade 0.
* **Convention** (RULES.md): grades 2-4 are absolute bands, applied even when the
  lab's LLN is below the grade-2 bound (lymphocytes 750 /mm3 with LLN 700 is
  grade 2, not 0).  With such an LLN the grade-1 band is empty.
* Grade 1 needs the LLN.  A value below the grade-2 bound is graded without it;
  a value at or above the grade-2 bound without an LLN raises
  :class:`MissingNormalRange` (a ``ValueError``): the engine never guesses.
* Anemia from a laboratory value alone goes up to grade 3 only ("transfusion
  indicated" for grade 3 and grades 4-5 are clinical).

Units
-----
* Counts are graded in cells/mm3 (= cells/uL).  10^9/L = 10^3/uL = 1000 /mm3;
  French laboratories write ``G/L`` (giga per litre) for 10^9/L.  Accepted
  spellings are in :data:`COUNT_UNITS` (exact and case-sensitive: ``G/L`` is a
  count, ``g/L`` is grams of haemoglobin per litre).
* Haemoglobin is graded on the CTCAE column of its own unit (g/dL 10.0/8.0; g/L
  100/80; mmol/L 6.2/4.9), never by converting the value: 4.9 mmol/L is grade 2
  although 4.9 / 0.6206 = 7.9 g/dL would be grade 3.
* The LLN may be given in another unit of the same analyte.  Counts convert
  exactly.  For haemoglobin the LLN is compared with the value exactly in
  rational terms (cross-multiplication, no rounding) using 1 g/dL = 10 g/L and
  1 g/dL = 0.6206 mmol/L.  Ambiguity: 0.6206 counts moles of the haemoglobin
  *monomer* (one globin chain with its haem, about 16,114.5 g/mol; Kratz,
  Jordan), whereas some tables (Young 1998, Wallach) give 0.155, counting the
  tetramer (about 64,458 g/mol).  The CTCAE's own columns (10.0 g/dL ~ 6.2
  mmol/L, 8.0 g/dL ~ 4.9 mmol/L) use the monomer basis, so this module does
  too; a value in tetramer mmol/L cannot be told apart and would be misgraded.
* Refused: a float or other non-:class:`~decimal.Decimal` value (``TypeError``);
  a negative or non-finite value, an unknown unit, a unit of the wrong analyte,
  or an LLN <= 0 (``ValueError``).

All arithmetic is exact :class:`~decimal.Decimal` (no binary floats; products
are computed with enough precision never to round).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, Inexact, InvalidOperation, Overflow
from types import MappingProxyType
from typing import Final

__all__ = [
    "ANALYTE_TERMS",
    "COUNT_UNITS",
    "CTCAE_VERSION",
    "HAEMOGLOBIN_UNITS",
    "GradeResult",
    "LabTerm",
    "LabValue",
    "MissingNormalRange",
    "grade",
    "to_cells_per_mm3",
    "worst",
]

#: NCI CTCAE version these thresholds come from (v5.0, 27 November 2017).
CTCAE_VERSION: Final = "5.0"


class MissingNormalRange(ValueError):
    """The grade (0 or 1) depends on the lower limit of normal, which was not given."""


class LabTerm(enum.Enum):
    """CTCAE v5.0 terms graded here; values are the verbatim CTCAE term names."""

    LYMPHOCYTE_COUNT_DECREASED = "Lymphocyte count decreased"
    NEUTROPHIL_COUNT_DECREASED = "Neutrophil count decreased"
    PLATELET_COUNT_DECREASED = "Platelet count decreased"
    ANEMIA = "Anemia"


#: Analyte keys used in the app -> CTCAE term ("anc" is ``ScreeningLab.Analyte.ANC``).
ANALYTE_TERMS: Final[Mapping[str, LabTerm]] = MappingProxyType(
    {
        "lymphocytes": LabTerm.LYMPHOCYTE_COUNT_DECREASED,
        "neutrophils": LabTerm.NEUTROPHIL_COUNT_DECREASED,
        "anc": LabTerm.NEUTROPHIL_COUNT_DECREASED,
        "platelets": LabTerm.PLATELET_COUNT_DECREASED,
        "haemoglobin": LabTerm.ANEMIA,
    }
)

#: The unit counts are graded in (cells/mm3 = cells/uL).
CELLS_PER_MM3: Final = "/mm3"
_MICRO_SIGN, _GREEK_MU = "\u00b5", "\u03bc"  # both are typed for "micro"

#: Count unit -> cells/mm3 per unit (exact).
COUNT_UNITS: Final[Mapping[str, Decimal]] = MappingProxyType(
    {
        "/mm3": Decimal(1),
        "cells/mm3": Decimal(1),
        "/uL": Decimal(1),
        "cells/uL": Decimal(1),
        "/mcL": Decimal(1),  # as in the seed trials' eligibility text
        f"/{_MICRO_SIGN}L": Decimal(1),
        f"/{_GREEK_MU}L": Decimal(1),
        f"cells/{_MICRO_SIGN}L": Decimal(1),
        "10^3/uL": Decimal(1000),
        f"10^3/{_MICRO_SIGN}L": Decimal(1000),
        "10^9/L": Decimal(1000),
        "G/L": Decimal(1000),  # giga per litre, French laboratories
    }
)

#: Haemoglobin unit -> mmol/L (monomer basis) per unit; 1 g/dL = 10 g/L = 0.6206 mmol/L.
HAEMOGLOBIN_UNITS: Final[Mapping[str, Decimal]] = MappingProxyType(
    {"g/dL": Decimal("0.6206"), "g/L": Decimal("0.06206"), "mmol/L": Decimal(1)}
)

# Grade-2, grade-3 (and grade-4) bounds, descending: "<800 - 500" etc.  A value
# below the k-th bound (k = 0, 1, ...) and not below the next is grade k + 2.
_COUNT_BOUNDS: Final[Mapping[LabTerm, tuple[Decimal, ...]]] = MappingProxyType(
    {
        LabTerm.LYMPHOCYTE_COUNT_DECREASED: (Decimal(800), Decimal(500), Decimal(200)),
        LabTerm.NEUTROPHIL_COUNT_DECREASED: (Decimal(1500), Decimal(1000), Decimal(500)),
        LabTerm.PLATELET_COUNT_DECREASED: (Decimal(75000), Decimal(50000), Decimal(25000)),
    }
)
# Anemia: one CTCAE column per unit; lab values alone stop at grade 3.
_ANEMIA_BOUNDS: Final[Mapping[str, tuple[Decimal, ...]]] = MappingProxyType(
    {
        "g/dL": (Decimal("10.0"), Decimal("8.0")),
        "g/L": (Decimal(100), Decimal(80)),
        "mmol/L": (Decimal("6.2"), Decimal("4.9")),
    }
)


@dataclass(frozen=True)
class LabValue:
    """A laboratory value and its unit (one of :data:`COUNT_UNITS` or :data:`HAEMOGLOBIN_UNITS`)."""

    value: Decimal
    unit: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, Decimal):
            raise TypeError(f"value must be a Decimal, got {type(self.value).__name__}")
        if not self.value.is_finite() or self.value < 0:
            raise ValueError(f"value must be a finite number >= 0, got {self.value}")
        if not isinstance(self.unit, str):
            raise TypeError(f"unit must be a str, got {type(self.unit).__name__}")
        if self.unit not in COUNT_UNITS and self.unit not in HAEMOGLOBIN_UNITS:
            accepted = ", ".join([*COUNT_UNITS, *HAEMOGLOBIN_UNITS])
            raise ValueError(f"unknown unit {self.unit!r}; accepted (exact case): {accepted}")


@dataclass(frozen=True)
class GradeResult:
    term: LabTerm
    grade: int  # 0-4 (anemia 0-3)
    value_in_grading_unit: Decimal
    grading_unit: str  # "/mm3" for counts; the value's own unit for haemoglobin
    rule: str  # e.g. "450 /mm3 < 500 and >= 200: grade 3"
    ctcae_version: str = CTCAE_VERSION


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _exact_product(a: Decimal, b: Decimal) -> Decimal:
    """``a * b`` with enough digits never to round (a trap turns any rounding into an error)."""
    digits = len(a.as_tuple().digits) + len(b.as_tuple().digits)
    context = Context(
        prec=digits, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact, InvalidOperation, Overflow]
    )
    return context.multiply(a, b)


def _shown(number: Decimal) -> str:
    """Plain notation without trailing fractional zeros: 450.00 -> "450", 0.450 -> "0.45"."""
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _check_unit(term: LabTerm, lab: LabValue, what: str) -> None:
    units = HAEMOGLOBIN_UNITS if term is LabTerm.ANEMIA else COUNT_UNITS
    if lab.unit not in units:
        raise ValueError(f"{term.value}: {what} unit {lab.unit!r} is not one of {', '.join(units)}")


def to_cells_per_mm3(value: LabValue) -> Decimal:
    """A cell count in cells/mm3 (= cells/uL); 10^9/L = G/L = 10^3/uL = 1000 /mm3.

    ``ValueError`` for a haemoglobin unit.
    """
    if not isinstance(value, LabValue):
        raise TypeError(f"value must be a LabValue, got {type(value).__name__}")
    if value.unit not in COUNT_UNITS:
        raise ValueError(f"{value.unit!r} is not a cell count unit ({', '.join(COUNT_UNITS)})")
    return _exact_product(value.value, COUNT_UNITS[value.unit])


def _in_grading_unit(term: LabTerm, value: LabValue) -> tuple[Decimal, str, str]:
    """(value in the grading unit, grading unit, value as shown in the rule text)."""
    if term is LabTerm.ANEMIA:
        return value.value, value.unit, f"{value.value:f} {value.unit}"
    converted = to_cells_per_mm3(value)
    shown = f"{_shown(converted)} {CELLS_PER_MM3}"
    if value.unit != CELLS_PER_MM3:
        shown += f" ({value.value:f} {value.unit})"
    return converted, CELLS_PER_MM3, shown


def _below_lln(term: LabTerm, value: LabValue, lln: LabValue) -> tuple[bool, str]:
    """(value < LLN, the LLN as shown); exact, whatever the two units are."""
    _check_unit(term, lln, "LLN")
    if lln.value == 0:
        raise ValueError(f"{term.value}: the LLN must be > 0")
    shown = f"LLN {lln.value:f} {lln.unit}"
    if term is not LabTerm.ANEMIA:
        lln_count = to_cells_per_mm3(lln)
        if lln.unit != CELLS_PER_MM3:
            shown += f" (= {_shown(lln_count)} {CELLS_PER_MM3})"
        return to_cells_per_mm3(value) < lln_count, shown
    # Haemoglobin: compare in mmol/L; both sides are exact products, so no rounding.
    value_mmol = _exact_product(value.value, HAEMOGLOBIN_UNITS[value.unit])
    lln_mmol = _exact_product(lln.value, HAEMOGLOBIN_UNITS[lln.unit])
    if lln.unit != value.unit:  # display only: 6 significant digits, "~" if rounded
        context = Context(prec=6)
        converted = context.divide(lln_mmol, HAEMOGLOBIN_UNITS[value.unit])
        sign = "~" if context.flags[Inexact] else "="
        shown += f" ({sign} {_shown(converted)} {value.unit})"
    return value_mmol < lln_mmol, shown


def _grade_1_zone(
    term: LabTerm, value: LabValue, lln: LabValue | None, shown: str, bound: Decimal
) -> tuple[int, str]:
    """Grade 0 or 1 for a value at or above the grade-2 bound: decided by the LLN."""
    if lln is None:
        raise MissingNormalRange(
            f"{term.value}: {shown} >= {bound}, so the grade is 0 or 1 depending on the "
            "lower limit of normal (LLN), which was not given"
        )
    below, lln_shown = _below_lln(term, value, lln)
    if below:
        return 1, f"{shown} < {lln_shown} and >= {bound}: grade 1"
    return 0, f"{shown} >= {lln_shown} and >= {bound}: grade 0"


def _band_rule(shown: str, bounds: tuple[Decimal, ...], index: int) -> str:
    """Text for a value below ``bounds[index - 1]`` and not below ``bounds[index]``."""
    rule = f"{shown} < {bounds[index - 1]}"
    if index < len(bounds):
        rule += f" and >= {bounds[index]}"
    return f"{rule}: grade {index + 1}"


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def grade(term: LabTerm, value: LabValue, lln: LabValue | None = None) -> GradeResult:
    """Grade ``value`` for ``term`` under CTCAE v5.0 (see the module docstring).

    ``lln`` (lower limit of normal) may be in another unit of the same analyte;
    it is needed only when the value is at or above the grade-2 bound
    (:class:`MissingNormalRange` otherwise).  Grades 2-4 are absolute bands.
    """
    if not isinstance(term, LabTerm):
        raise TypeError(f"term must be a LabTerm, got {type(term).__name__}")
    if not isinstance(value, LabValue):
        raise TypeError(f"value must be a LabValue, got {type(value).__name__}")
    if lln is not None and not isinstance(lln, LabValue):
        raise TypeError(f"lln must be a LabValue or None, got {type(lln).__name__}")
    _check_unit(term, value, "value")
    graded, unit, shown = _in_grading_unit(term, value)
    bounds = _ANEMIA_BOUNDS[unit] if term is LabTerm.ANEMIA else _COUNT_BOUNDS[term]
    below = sum(1 for bound in bounds if graded < bound)  # bounds descend: a prefix
    if below:
        number, rule = below + 1, _band_rule(shown, bounds, below)
    else:
        number, rule = _grade_1_zone(term, value, lln, shown, bounds[0])
    if below and lln is not None and not _below_lln(term, value, lln)[0]:
        rule += " (absolute band, although the value is >= the LLN)"
    return GradeResult(term, number, graded, unit, rule)


def worst(results: Iterable[GradeResult]) -> GradeResult | None:
    """The result with the highest grade (the first one on a tie); ``None`` if there is none."""
    return max(results, key=lambda result: result.grade, default=None)
