"""Golden and property tests for the CTCAE v5.0 laboratory grader in ``patients.ctcae``.

Golden cases come from the CTCAE v5.0 grade texts quoted in the module docstring
(NCI, 27 November 2017) and RULES.md "CTCAE v5.0 lab grading": every bound, the
value exactly on each bound (milder grade), unit conversions, an LLN in another
unit, a missing LLN (an error only when it decides the grade) and the
absolute-band convention for a lab whose LLN is below the grade-2 bound.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patients.ctcae import (
    ANALYTE_TERMS,
    COUNT_UNITS,
    CTCAE_VERSION,
    GradeResult,
    LabTerm,
    LabValue,
    MissingNormalRange,
    grade,
    to_cells_per_mm3,
    worst,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]

LYMPH = LabTerm.LYMPHOCYTE_COUNT_DECREASED
NEUT = LabTerm.NEUTROPHIL_COUNT_DECREASED
PLT = LabTerm.PLATELET_COUNT_DECREASED
ANEMIA = LabTerm.ANEMIA


def lab(value: str, unit: str) -> LabValue:
    return LabValue(Decimal(value), unit)


def grade_of(term: LabTerm, value: str, unit: str, lln: LabValue | None = None) -> int:
    return grade(term, lab(value, unit), lln).grade


# A normal range well above every grade-2 bound, so grade 1 is reachable.
HIGH_LLN = {
    LYMPH: lab("1000", "/mm3"),
    NEUT: lab("2000", "/mm3"),
    PLT: lab("150000", "/mm3"),
}
HB_LLN = {"g/dL": lab("12.0", "g/dL"), "g/L": lab("120", "g/L"), "mmol/L": lab("7.5", "mmol/L")}


# ---------------------------------------------------------------------------
# Version and terms
# ---------------------------------------------------------------------------


def test_the_version_is_pinned_to_v5_0_and_carried_in_every_result():
    assert CTCAE_VERSION == "5.0"
    assert grade(LYMPH, lab("100", "/mm3")).ctcae_version == "5.0"


def test_terms_use_the_verbatim_ctcae_names():
    assert [term.value for term in LabTerm] == [
        "Lymphocyte count decreased",
        "Neutrophil count decreased",
        "Platelet count decreased",
        "Anemia",
    ]


def test_app_analyte_keys_map_to_terms():
    assert ANALYTE_TERMS["lymphocytes"] is LYMPH
    assert ANALYTE_TERMS["neutrophils"] is NEUT
    assert ANALYTE_TERMS["anc"] is NEUT
    assert ANALYTE_TERMS["platelets"] is PLT
    assert ANALYTE_TERMS["haemoglobin"] is ANEMIA


# ---------------------------------------------------------------------------
# Every bound, and the value exactly on it (milder grade)
# ---------------------------------------------------------------------------

COUNT_CASES = [
    # lymphocytes: <LLN - 800; <800 - 500; <500 - 200; <200 (/mm3), LLN 1000
    (LYMPH, "1001", 0),
    (LYMPH, "1000", 0),
    (LYMPH, "999", 1),
    (LYMPH, "800", 1),
    (LYMPH, "799", 2),
    (LYMPH, "500", 2),
    (LYMPH, "499.9", 3),
    (LYMPH, "200", 3),
    (LYMPH, "199", 4),
    (LYMPH, "0", 4),
    # neutrophils: <LLN - 1500; <1500 - 1000; <1000 - 500; <500, LLN 2000
    (NEUT, "2000", 0),
    (NEUT, "1999", 1),
    (NEUT, "1500", 1),
    (NEUT, "1499", 2),
    (NEUT, "1000", 2),
    (NEUT, "999", 3),
    (NEUT, "500", 3),
    (NEUT, "499", 4),
    # platelets: <LLN - 75,000; <75,000 - 50,000; <50,000 - 25,000; <25,000, LLN 150,000
    (PLT, "150000", 0),
    (PLT, "149999", 1),
    (PLT, "75000", 1),
    (PLT, "74999", 2),
    (PLT, "50000", 2),
    (PLT, "49999", 3),
    (PLT, "25000", 3),
    (PLT, "24999", 4),
]


@pytest.mark.parametrize(("term", "value", "expected"), COUNT_CASES)
def test_counts_are_graded_on_the_ctcae_bands_with_bounds_taking_the_milder_grade(
    term, value, expected
):
    assert grade_of(term, value, "/mm3", HIGH_LLN[term]) == expected


HB_CASES = [
    # g/dL: <LLN - 10.0; <10.0 - 8.0; <8.0
    ("12.0", "g/dL", 0),
    ("11.9", "g/dL", 1),
    ("10.0", "g/dL", 1),
    ("9.99", "g/dL", 2),
    ("8.0", "g/dL", 2),
    ("7.99", "g/dL", 3),
    ("0", "g/dL", 3),
    # g/L: <LLN - 100; <100 - 80; <80
    ("120", "g/L", 0),
    ("119", "g/L", 1),
    ("100", "g/L", 1),
    ("99", "g/L", 2),
    ("80", "g/L", 2),
    ("79", "g/L", 3),
    # mmol/L: <LLN - 6.2; <6.2 - 4.9; <4.9
    ("7.5", "mmol/L", 0),
    ("7.4", "mmol/L", 1),
    ("6.2", "mmol/L", 1),
    ("6.19", "mmol/L", 2),
    ("4.9", "mmol/L", 2),
    ("4.89", "mmol/L", 3),
]


@pytest.mark.parametrize(("value", "unit", "expected"), HB_CASES)
def test_anemia_is_graded_on_the_column_of_its_own_unit(value, unit, expected):
    assert grade_of(ANEMIA, value, unit, HB_LLN[unit]) == expected


def test_a_haemoglobin_value_alone_never_gives_grade_4():
    assert grade_of(ANEMIA, "0", "g/dL") == 3
    assert grade_of(ANEMIA, "0", "mmol/L") == 3


def test_mmol_per_litre_is_not_graded_by_converting_to_g_per_dl():
    # 4.9 mmol/L / 0.6206 = 7.9 g/dL (grade 3 if converted); its own column says grade 2.
    assert grade_of(ANEMIA, "4.9", "mmol/L") == 2
    # 6.2 mmol/L = 9.99 g/dL (grade 2 if converted); its own column says grade 1.
    assert grade_of(ANEMIA, "6.2", "mmol/L", lab("7.5", "mmol/L")) == 1


# ---------------------------------------------------------------------------
# Results explain themselves
# ---------------------------------------------------------------------------


def test_the_result_carries_the_value_in_the_grading_unit_and_a_readable_rule():
    result = grade(LYMPH, lab("450", "/mm3"))
    assert result == GradeResult(LYMPH, 3, Decimal(450), "/mm3", result.rule, "5.0")
    assert result.rule == "450 /mm3 < 500 and >= 200: grade 3"


def test_the_rule_quotes_the_original_unit_and_the_lln():
    result = grade(NEUT, lab("1.8", "G/L"), lab("2.0", "G/L"))
    assert result.grade == 1
    assert result.rule == "1800 /mm3 (1.8 G/L) < LLN 2.0 G/L (= 2000 /mm3) and >= 1500: grade 1"
    assert grade(PLT, lab("10", "10^9/L")).rule == "10000 /mm3 (10 10^9/L) < 25000: grade 4"


def test_haemoglobin_is_reported_in_its_own_unit():
    result = grade(ANEMIA, lab("95", "g/L"))
    assert (result.grade, result.value_in_grading_unit, result.grading_unit) == (
        2,
        Decimal(95),
        "g/L",
    )
    assert result.rule == "95 g/L < 100 and >= 80: grade 2"


def test_results_are_frozen():
    result = grade(LYMPH, lab("100", "/mm3"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.grade = 0  # type: ignore[misc]


# ---------------------------------------------------------------------------
# Units
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "per_mm3"),
    [
        ("800", "/mm3", "800"),
        ("800", "cells/mm3", "800"),
        ("800", "/uL", "800"),
        ("800", "/\u00b5L", "800"),
        ("800", "/mcL", "800"),
        ("0.8", "10^9/L", "800"),
        ("0.8", "G/L", "800"),
        ("0.8", "10^3/uL", "800"),
        ("150", "G/L", "150000"),
    ],
)
def test_counts_convert_to_cells_per_mm3(value, unit, per_mm3):
    assert to_cells_per_mm3(lab(value, unit)) == Decimal(per_mm3)


def test_0_8_giga_per_litre_is_800_per_mm3_and_grade_1():
    result = grade(LYMPH, lab("0.8", "10^9/L"), lab("1.0", "10^9/L"))
    assert result.grade == 1
    assert result.value_in_grading_unit == Decimal(800)
    assert result.grading_unit == "/mm3"


def test_0_45_g_per_litre_french_is_grade_3_without_an_lln():
    assert grade_of(LYMPH, "0.45", "G/L") == 3


def test_platelets_in_giga_per_litre_follow_the_ctcae_si_column():
    # "<75.0 - 50.0 x 10e9 /L"; "<25.0 x 10e9 /L"
    assert grade_of(PLT, "75.0", "G/L", lab("150", "G/L")) == 1
    assert grade_of(PLT, "74.9", "G/L") == 2
    assert grade_of(PLT, "25.0", "G/L") == 3
    assert grade_of(PLT, "24.9", "G/L") == 4


def test_to_cells_per_mm3_refuses_a_haemoglobin_unit():
    with pytest.raises(ValueError, match="not a cell count unit"):
        to_cells_per_mm3(lab("100", "g/L"))


# ---------------------------------------------------------------------------
# The LLN in another unit
# ---------------------------------------------------------------------------


def test_a_count_lln_in_another_unit_is_converted():
    # LLN 1.0 G/L = 1000 /mm3
    assert grade_of(LYMPH, "999", "/mm3", lab("1.0", "G/L")) == 1
    assert grade_of(LYMPH, "1000", "/mm3", lab("1.0", "G/L")) == 0
    assert grade_of(NEUT, "1.6", "10^9/L", lab("1600", "/uL")) == 0
    assert grade_of(NEUT, "1.599", "10^9/L", lab("1600", "/uL")) == 1


def test_a_haemoglobin_lln_in_g_per_dl_applies_to_a_value_in_g_per_l_exactly():
    assert grade_of(ANEMIA, "120", "g/L", lab("12.0", "g/dL")) == 0
    assert grade_of(ANEMIA, "119.9", "g/L", lab("12.0", "g/dL")) == 1
    assert grade_of(ANEMIA, "11.99", "g/dL", lab("120", "g/L")) == 1
    assert grade_of(ANEMIA, "12", "g/dL", lab("120", "g/L")) == 0


def test_a_haemoglobin_lln_in_mass_units_applies_to_mmol_per_litre_at_0_6206():
    # LLN 12.0 g/dL = 12.0 x 0.6206 = 7.4472 mmol/L exactly
    assert grade_of(ANEMIA, "7.4472", "mmol/L", lab("12.0", "g/dL")) == 0
    assert grade_of(ANEMIA, "7.4471", "mmol/L", lab("12.0", "g/dL")) == 1
    # LLN 7.4472 mmol/L = 12.0 g/dL = 120 g/L (compared without division)
    assert grade_of(ANEMIA, "12.0", "g/dL", lab("7.4472", "mmol/L")) == 0
    assert grade_of(ANEMIA, "119.99", "g/L", lab("7.4472", "mmol/L")) == 1


def test_an_lln_of_another_analyte_is_refused():
    with pytest.raises(ValueError, match="LLN unit 'g/L'"):
        grade(LYMPH, lab("900", "/mm3"), lab("120", "g/L"))
    with pytest.raises(ValueError, match="LLN unit 'G/L'"):
        grade(ANEMIA, lab("11", "g/dL"), lab("120", "G/L"))


def test_an_lln_of_zero_is_refused():
    with pytest.raises(ValueError, match="LLN must be > 0"):
        grade(LYMPH, lab("900", "/mm3"), lab("0", "/mm3"))


# ---------------------------------------------------------------------------
# Missing LLN: an error only when it decides the grade
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "value", "unit"),
    [
        (LYMPH, "800", "/mm3"),
        (LYMPH, "5000", "/mm3"),
        (NEUT, "1.5", "G/L"),
        (PLT, "75000", "/mm3"),
        (ANEMIA, "10.0", "g/dL"),
        (ANEMIA, "100", "g/L"),
        (ANEMIA, "6.2", "mmol/L"),
    ],
)
def test_a_value_that_could_be_grade_0_or_1_needs_the_lln(term, value, unit):
    with pytest.raises(MissingNormalRange, match="lower limit of normal"):
        grade(term, lab(value, unit))


def test_missing_normal_range_is_a_value_error():
    assert issubclass(MissingNormalRange, ValueError)


@pytest.mark.parametrize(
    ("term", "value", "unit", "expected"),
    [
        (LYMPH, "799", "/mm3", 2),
        (NEUT, "1499", "/mm3", 2),
        (PLT, "74999", "/mm3", 2),
        (ANEMIA, "9.9", "g/dL", 2),
        (ANEMIA, "99", "g/L", 2),
        (ANEMIA, "6.1", "mmol/L", 2),
    ],
)
def test_a_value_below_the_grade_2_bound_is_graded_without_the_lln(term, value, unit, expected):
    assert grade_of(term, value, unit) == expected


# ---------------------------------------------------------------------------
# Convention: grades 2-4 are absolute bands even when the LLN is below them
# ---------------------------------------------------------------------------


def test_a_value_above_a_low_lln_but_below_the_grade_2_bound_is_grade_2():
    low_lln = lab("700", "/mm3")  # below the lymphocyte grade-2 bound of 800
    result = grade(LYMPH, lab("750", "/mm3"), low_lln)
    assert result.grade == 2
    assert "absolute band" in result.rule
    assert grade_of(LYMPH, "650", "/mm3", low_lln) == 2
    assert grade_of(LYMPH, "800", "/mm3", low_lln) == 0  # the grade-1 band is empty


def test_a_haemoglobin_above_a_low_lln_is_still_graded_on_the_absolute_band():
    assert grade_of(ANEMIA, "9.5", "g/dL", lab("9.0", "g/dL")) == 2
    assert grade_of(ANEMIA, "10.0", "g/dL", lab("9.0", "g/dL")) == 0


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["cells", "g/l", "x10^9/l", "mg/dL", ""])
def test_an_unknown_unit_is_refused(unit):
    with pytest.raises(ValueError, match="unknown unit"):
        LabValue(Decimal(1), unit)


def test_a_unit_of_the_wrong_analyte_is_refused():
    with pytest.raises(ValueError, match="value unit 'g/dL'"):
        grade(PLT, lab("10", "g/dL"))
    with pytest.raises(ValueError, match="value unit 'G/L'"):
        grade(ANEMIA, lab("100", "G/L"))  # giga per litre, not grams per litre


def test_a_negative_value_is_refused():
    with pytest.raises(ValueError, match=">= 0"):
        LabValue(Decimal("-1"), "/mm3")


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity")])
def test_a_non_finite_value_is_refused(bad):
    with pytest.raises(ValueError, match="finite"):
        LabValue(bad, "/mm3")


@pytest.mark.parametrize("bad", [0.8, 800, "800", True, None])
def test_a_value_that_is_not_a_decimal_is_refused(bad):
    with pytest.raises(TypeError, match="must be a Decimal"):
        LabValue(bad, "10^9/L")  # type: ignore[arg-type]


def test_the_term_and_the_values_must_have_their_own_types():
    with pytest.raises(TypeError, match="term must be a LabTerm"):
        grade("Anemia", lab("9", "g/dL"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="value must be a LabValue"):
        grade(ANEMIA, Decimal(9))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lln must be a LabValue"):
        grade(ANEMIA, lab("11", "g/dL"), Decimal(12))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# worst()
# ---------------------------------------------------------------------------


def test_worst_returns_the_highest_grade_and_the_first_on_a_tie():
    mild = grade(LYMPH, lab("700", "/mm3"))
    severe = grade(NEUT, lab("400", "/mm3"))
    also_severe = grade(PLT, lab("1000", "/mm3"))
    assert worst([mild, severe, also_severe]) is severe
    assert worst(iter([mild])) is mild


def test_worst_of_nothing_is_none():
    assert worst([]) is None


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

TERM_LLNS = st.sampled_from(
    [
        (LYMPH, "/mm3", lab("1000", "/mm3")),
        (LYMPH, "/mm3", lab("0.6", "G/L")),  # below the grade-2 bound
        (NEUT, "/mm3", lab("1.8", "10^9/L")),
        (PLT, "/mm3", lab("150000", "/mm3")),
        (ANEMIA, "g/dL", lab("12.0", "g/dL")),
        (ANEMIA, "g/L", lab("12.0", "g/dL")),
        (ANEMIA, "mmol/L", lab("7.5", "mmol/L")),
        (ANEMIA, "mmol/L", lab("13.5", "g/dL")),
    ]
)
VALUES = st.decimals(min_value=0, max_value=200000, places=3, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(TERM_LLNS, VALUES, VALUES)
def test_grade_never_decreases_as_the_value_decreases(term_lln, first, second):
    term, unit, lln = term_lln
    low, high = sorted((first, second))
    milder = grade(term, LabValue(high, unit), lln).grade
    assert grade(term, LabValue(low, unit), lln).grade >= milder


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([LYMPH, NEUT, PLT]), st.decimals(0, 500, places=4, allow_nan=False))
def test_a_count_grades_the_same_in_giga_per_litre_and_per_mm3(term, giga):
    lln = HIGH_LLN[term]
    per_mm3 = giga * 1000
    assert grade_of(term, str(giga), "G/L", lln) == grade_of(term, str(per_mm3), "/mm3", lln)


@settings(max_examples=200, deadline=None)
@given(st.decimals(0, 30, places=3, allow_nan=False))
def test_haemoglobin_grades_the_same_in_g_per_dl_and_g_per_l(g_per_dl):
    lln = lab("12.0", "g/dL")
    assert grade(ANEMIA, LabValue(g_per_dl, "g/dL"), lln).grade == (
        grade(ANEMIA, LabValue(g_per_dl * 10, "g/L"), lln).grade
    )


def test_count_units_include_the_spellings_the_labs_use():
    for unit in ("/mm3", "/uL", "/\u00b5L", "cells/mm3", "10^9/L", "G/L", "10^3/uL"):
        assert unit in COUNT_UNITS


# ---------------------------------------------------------------------------
# Purity
# ---------------------------------------------------------------------------


def test_module_imports_no_django():
    code = (
        "import sys, patients.ctcae; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
