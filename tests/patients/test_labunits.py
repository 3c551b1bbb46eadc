"""Laboratory units: every accepted unit converts exactly; implausible values are refused."""

from __future__ import annotations

from decimal import Decimal as D
from fractions import Fraction

import pytest

from patients import ctcae, labunits
from patients.models_safety import Analyte

# (analyte, unit, value entered, value expected in the standard unit) -- one row per unit.
CONVERSIONS = [
    # cell counts -> 10^9/L (1000 /mm3 = 1 x 10^9/L)
    ("lymphocytes", "10^9/L", "0.8", "0.8"),
    ("lymphocytes", "/mm3", "800", "0.8"),
    ("lymphocytes", "cells/mm3", "500", "0.5"),
    ("lymphocytes", "/uL", "200", "0.2"),
    ("lymphocytes", "cells/uL", "1250", "1.25"),
    ("lymphocytes", "/mcL", "1", "0.001"),
    ("lymphocytes", "/\u00b5L", "1500", "1.5"),
    ("lymphocytes", "/\u03bcL", "1500", "1.5"),
    ("lymphocytes", "cells/\u00b5L", "1500", "1.5"),
    ("lymphocytes", "10^3/uL", "0.8", "0.8"),
    ("lymphocytes", "10^3/\u00b5L", "0.5", "0.5"),
    ("lymphocytes", "G/L", "0.2", "0.2"),
    ("neutrophils", "/mm3", "1500", "1.5"),
    ("platelets", "/mm3", "75000", "75"),
    ("platelets", "G/L", "150", "150"),
    ("leukocytes", "/uL", "4000", "4"),
    # haemoglobin -> g/dL (1 g/dL = 10 g/L = 0.6206 mmol/L)
    ("haemoglobin", "g/dL", "12.5", "12.5"),
    ("haemoglobin", "g/L", "100", "10"),
    ("haemoglobin", "mmol/L", "6.206", "10"),
    # creatinine -> umol/L (1 mg/dL = 88.4 umol/L)
    ("creatinine", "umol/L", "80", "80"),
    ("creatinine", "\u00b5mol/L", "80", "80"),
    ("creatinine", "\u03bcmol/L", "80", "80"),
    ("creatinine", "mg/dL", "1.2", "106.08"),
    ("creatinine", "mg/L", "10", "88.4"),
    # bilirubin -> umol/L (1 mg/dL = 17.1 umol/L)
    ("bilirubin", "umol/L", "17", "17"),
    ("bilirubin", "mg/dL", "1", "17.1"),
    ("bilirubin", "mg/L", "10", "17.1"),
    # enzymes -> U/L (1 ukat/L = 60 U/L)
    ("ast", "U/L", "40", "40"),
    ("ast", "IU/L", "40", "40"),
    ("alt", "UI/L", "35", "35"),
    ("alt", "ukat/L", "0.5", "30"),
    ("alt", "\u00b5kat/L", "1", "60"),
    # clearance -> mL/min
    ("clearance", "mL/min", "65", "65"),
    ("clearance", "mL/s", "1.5", "90"),
]


@pytest.mark.parametrize(("analyte", "unit", "value", "expected"), CONVERSIONS)
def test_every_unit_converts_exactly_to_the_standard_unit(analyte, unit, value, expected):
    converted = labunits.to_standard(analyte, D(value), unit)
    assert converted.value == D(expected)
    assert converted.exact and converted.exact_value == Fraction(D(expected))
    assert converted.unit == labunits.standard_unit(analyte)


def test_the_table_above_covers_every_accepted_unit_of_every_analyte():
    covered = {(a, u) for a, u, _v, _e in CONVERSIONS}
    families = {
        "counts": ("lymphocytes", "neutrophils", "platelets", "leukocytes"),
        "bilirubin": ("bilirubin", "creatinine"),
        "enzymes": ("ast", "alt"),
    }
    for analyte in labunits.ANALYTES:
        family = next((f for f in families.values() if analyte in f), (analyte,))
        for unit in labunits.units_for(analyte):
            assert any((a, unit) in covered for a in family), (analyte, unit)
    assert set(labunits.ANALYTES) == set(Analyte.values)


def test_count_units_are_those_the_ctcae_grader_accepts():
    for analyte in ("lymphocytes", "neutrophils", "platelets", "leukocytes"):
        assert set(labunits.units_for(analyte)) == set(ctcae.COUNT_UNITS)
    assert set(labunits.units_for("haemoglobin")) == set(ctcae.HAEMOGLOBIN_UNITS)


def test_haemoglobin_in_mmol_per_litre_is_rounded_only_when_stored():
    converted = labunits.to_standard("haemoglobin", D("6.2"), "mmol/L")
    assert converted.exact_value == Fraction(62000, 6206)  # 6.2 / 0.6206, kept exact
    assert not converted.exact
    assert converted.value == D("9.9903")  # 9.99033... rounded half to even, 4 places


def test_conversion_between_any_two_units_of_an_analyte_round_trips():
    there = labunits.convert("creatinine", D("106.08"), "umol/L", "mg/dL")
    assert there.value == D("1.2") and there.exact
    back = labunits.convert("bilirubin", D("1"), "mg/dL", "mg/L")
    assert back.value == D("10")
    assert labunits.convert("lymphocytes", D("0.45"), "G/L", "/mm3").value == D("450")


def test_rounding_is_half_to_even():
    # 0.00005 g/dL steps: 1 g/L = 0.1 g/dL; 0.0005 g/L = 0.00005 g/dL (half) -> even
    assert labunits.to_standard("haemoglobin", D("0.0005"), "g/L").value == D("0.0000")
    assert labunits.to_standard("haemoglobin", D("0.0015"), "g/L").value == D("0.0002")


@pytest.mark.parametrize(
    ("analyte", "value", "unit"),
    [
        ("lymphocytes", "-1", "/mm3"),
        ("lymphocytes", "101", "10^9/L"),  # 1500 entered in G/L instead of /mm3
        ("lymphocytes", "1500", "G/L"),
        ("lymphocytes", "100001", "/mm3"),
        ("neutrophils", "-0.1", "G/L"),
        ("platelets", "2001", "10^9/L"),
        ("leukocytes", "501", "G/L"),
        ("haemoglobin", "0.5", "g/dL"),
        ("haemoglobin", "26", "g/dL"),
        ("haemoglobin", "120", "g/dL"),  # g/L typed with g/dL
        ("creatinine", "4", "umol/L"),
        ("creatinine", "34", "mg/dL"),
        ("clearance", "401", "mL/min"),
        ("bilirubin", "1001", "umol/L"),
        ("ast", "20001", "U/L"),
        ("alt", "-5", "U/L"),
    ],
)
def test_implausible_values_are_refused(analyte, value, unit):
    with pytest.raises(labunits.ImplausibleValue) as refused:
        labunits.check_plausible(analyte, D(value), unit)
    assert refused.value.standard_unit == labunits.standard_unit(analyte)
    assert refused.value.negative == (D(value) < 0)


@pytest.mark.parametrize(
    ("analyte", "value", "unit"),
    [
        ("lymphocytes", "0", "/mm3"),
        ("lymphocytes", "100", "10^9/L"),
        ("lymphocytes", "100000", "/mm3"),
        ("platelets", "2000", "G/L"),
        ("haemoglobin", "1", "g/dL"),
        ("haemoglobin", "250", "g/L"),
        ("creatinine", "5", "umol/L"),
    ],
)
def test_values_on_the_plausibility_bounds_are_accepted(analyte, value, unit):
    assert labunits.check_plausible(analyte, D(value), unit).unit == labunits.standard_unit(analyte)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_values_are_refused(value):
    with pytest.raises(labunits.ImplausibleValue):
        labunits.check_plausible("lymphocytes", D(value), "G/L")


@pytest.mark.parametrize(
    ("analyte", "unit"),
    [
        ("haemoglobin", "G/L"),  # a count unit (giga per litre), not grams
        ("lymphocytes", "g/L"),  # grams, not giga
        ("creatinine", "U/L"),
        ("ast", "umol/L"),
        ("clearance", "mL/min/1.73m2"),  # an eGFR, another quantity
        ("lymphocytes", "g/l"),
        ("lymphocytes", ""),
    ],
)
def test_unknown_units_and_units_of_another_analyte_are_refused_listing_the_accepted_ones(
    analyte, unit
):
    with pytest.raises(labunits.UnitError) as refused:
        labunits.check_plausible(analyte, D("1"), unit)
    assert refused.value.accepted == labunits.units_for(analyte)
    assert labunits.standard_unit(analyte) in str(refused.value)


def test_blanks_around_a_unit_are_ignored_but_case_is_not():
    assert labunits.to_standard("lymphocytes", D("800"), " /mm3 ").value == D("0.8")
    with pytest.raises(labunits.UnitError):
        labunits.to_standard("lymphocytes", D("800"), "/MM3")


def test_floats_and_unknown_analytes_are_refused():
    with pytest.raises(TypeError):
        labunits.to_standard("lymphocytes", 0.8, "G/L")
    with pytest.raises(ValueError, match="unknown analyte"):
        labunits.units_for("sodium")
