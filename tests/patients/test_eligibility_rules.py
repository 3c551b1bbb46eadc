"""Boundary tests for the pure eligibility rules in ``patients.eligibility``.

The requirements are the eligibility criteria of the seed trials in
``studies/seed_data.py`` (StORM-01, STEREOSARC, STOP-2).  Decision tested here:
a laboratory value sampled outside the window before treatment start is ignored,
so the lab counts as *missing* and the result is UNKNOWN (not NOT_MET); a
restaging or pregnancy test dated outside its window is NOT_MET, because the
date itself is what those criteria require.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patients.eligibility import (
    LAB_UNITS,
    REQUIRED,
    RULES,
    LabValue,
    LesionFacts,
    Outcome,
    PatientFacts,
    RuleResult,
    evaluate,
)
from studies.seed_data import SEED_TRIALS

MET, NOT_MET, UNKNOWN = Outcome.MET, Outcome.NOT_MET, Outcome.UNKNOWN
START = date(2025, 3, 17)  # planned first SBRT fraction
RANDOMISED = date(2025, 3, 10)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEEDS = {trial.code: trial for trial in SEED_TRIALS}
HYPOTHESIS = settings(database=None, deadline=None, max_examples=200)


def D(text: str | int) -> Decimal:
    return Decimal(str(text))


def lesion(
    organ: str = "lung", mm: str | None = "20", *, progressing: bool = True, **flags: bool
) -> LesionFacts:
    return LesionFacts(organ, None if mm is None else D(mm), progressing, **flags)


def lab(value: str, unit: str, *, days_before: int = 0, uln: str | None = None) -> LabValue:
    return LabValue(
        D(value), unit, START - timedelta(days=days_before), None if uln is None else D(uln)
    )


def facts(**kwargs) -> PatientFacts:
    return PatientFacts(**kwargs)


def run(key: str, patient: PatientFacts, **params) -> RuleResult:
    return evaluate(key, patient, params)


def outcome(key: str, patient: PatientFacts, **params) -> Outcome:
    return run(key, patient, **params).outcome


# ---------------------------------------------------------------------------
# Registry and evaluate()
# ---------------------------------------------------------------------------

EXPECTED_PARAMS = {
    "min_age": {"minimum": 18},
    "max_ecog": {"maximum": REQUIRED},
    "progressing_lesion_count": {"minimum": 1, "maximum": REQUIRED},
    "progressing_organ_count": {"maximum": 2},
    "max_lesion_diameter": {"maximum_mm": Decimal(40)},
    "one_lesion_smaller_than": {"limit_mm": Decimal(50)},
    "max_cumulated_diameter": {"maximum_mm": Decimal(100)},
    "systemic_line": {"allowed_lines": (1, 2)},
    "max_prior_lines": {"maximum": 2},
    "no_brain_metastases": {},
    "no_long_bone_progression": {},
    "stereosarc_labs": {"window_days": 15},
    "restaging_within": {"weeks": 12},
    "pregnancy_test_within": {"days": 28},
}


def test_registry_keys_and_parameter_defaults():
    assert set(RULES) == set(EXPECTED_PARAMS)
    for key, rule in RULES.items():
        assert rule.key == key
        assert rule.description
        assert {p.name: p.default for p in rule.params} == EXPECTED_PARAMS[key], key


def test_evaluate_unknown_rule_key_raises_key_error():
    with pytest.raises(KeyError, match="no_such_rule"):
        evaluate("no_such_rule", facts())


def test_evaluate_unknown_parameter_raises_value_error():
    with pytest.raises(ValueError, match="minimun"):
        evaluate("min_age", facts(age_at_consent=40), {"minimun": 18})


@pytest.mark.parametrize("key", ["max_ecog", "progressing_lesion_count"])
def test_evaluate_missing_required_parameter_raises_value_error(key):
    with pytest.raises(ValueError, match="maximum"):
        evaluate(key, facts(ecog=0, lesions=(lesion(),)))


def test_evaluate_fills_defaults_and_given_params_override_them():
    assert evaluate("min_age", facts(age_at_consent=18)).outcome is MET
    assert evaluate("min_age", facts(age_at_consent=18), {"minimum": 19}).outcome is NOT_MET


@pytest.mark.parametrize(
    ("key", "params"),
    [
        ("min_age", {"minimum": "18"}),
        ("min_age", {"minimum": True}),
        ("max_ecog", {"maximum": -1}),
        ("max_lesion_diameter", {"maximum_mm": "4 cm"}),
        ("max_lesion_diameter", {"maximum_mm": float("nan")}),
        ("max_lesion_diameter", {"maximum_mm": None}),
        ("systemic_line", {"allowed_lines": ("1", "2")}),
        ("systemic_line", {"allowed_lines": ()}),
        ("systemic_line", {"allowed_lines": 2}),
        ("progressing_lesion_count", {"minimum": 4, "maximum": 3}),
        ("stereosarc_labs", {"window_days": 1.5}),
    ],
)
def test_invalid_parameter_values_raise_value_error(key, params):
    patient = facts(age_at_consent=50, ecog=0, current_line=1, lesions=(lesion(),))
    with pytest.raises(ValueError):
        evaluate(key, patient, params)


def test_float_and_string_mm_params_are_read_as_their_decimal_text():
    patient = facts(lesions=(lesion(mm="40.1"),))
    assert outcome("max_lesion_diameter", patient, maximum_mm=40.1) is MET
    assert outcome("max_lesion_diameter", patient, maximum_mm="40.1") is MET
    assert outcome("max_lesion_diameter", patient, maximum_mm=40) is NOT_MET


def test_each_rule_docstring_quotes_the_seed_criterion_it_cites():
    citation = re.compile(r'(STORM-01|STEREOSARC|STOP-2) (inclusion|exclusion) (\d+): "([^"]+)"')

    def normalise(text: str) -> str:
        return " ".join(text.split())

    for key, rule in RULES.items():
        doc = normalise(rule.function.__doc__ or "")
        found = citation.findall(doc)
        assert found, f"{key}: no criterion cited"
        for code, kind, number, quote in found:
            (criterion,) = [
                c for c in SEEDS[code].criteria if c.kind == kind and c.number == int(number)
            ]
            assert normalise(quote) in normalise(criterion.text), (key, code, kind, number)


def test_module_imports_no_django():
    code = (
        "import sys, patients.eligibility; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr


# ---------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("anc", lab("1500", "cells/L")),
        ("anc", lab("1500", "/ul")),  # units are exact strings: no case guessing
        ("haemoglobin", lab("9", "/uL")),  # valid for another lab only
        ("creatinine_clearance", lab("60", "mL/s")),
        ("ast", lab("30", "umol/L", uln="40")),
    ],
)
def test_unknown_lab_unit_raises_value_error_when_the_lab_rule_reads_it(key, bad):
    patient = labs_patient(**{key: bad})
    with pytest.raises(ValueError, match=re.escape(bad.unit)):
        evaluate("stereosarc_labs", patient)
    # Raw data: the other rules are not affected by a lab they do not read.
    assert outcome("min_age", replace(patient, age_at_consent=30)) is MET


def test_lab_unit_is_checked_even_when_the_lab_is_outside_the_window():
    with pytest.raises(ValueError):
        evaluate("stereosarc_labs", labs_patient(anc=lab("1500", "cells", days_before=30)))


@pytest.mark.parametrize("uln", ["0", "-1"])
def test_non_positive_uln_raises_value_error_when_read(uln):
    with pytest.raises(ValueError, match="upper limit of normal"):
        evaluate("stereosarc_labs", labs_patient(creatinine=lab("80", "umol/L", uln=uln)))


def test_unknown_lab_key_raises_value_error():
    with pytest.raises(ValueError, match="hemoglobin"):
        facts(labs={"hemoglobin": lab("9", "g/dL")})


def test_lab_units_table_covers_every_lab_key():
    assert set(LAB_UNITS) == {
        "anc",
        "platelets",
        "haemoglobin",
        "creatinine",
        "creatinine_clearance",
        "bilirubin",
        "direct_bilirubin",
        "ast",
        "alt",
    }
    assert {"/uL", "/mm3", "10^9/L"} <= set(LAB_UNITS["anc"]) == set(LAB_UNITS["platelets"])
    assert {"g/dL", "g/L", "mmol/L"} <= set(LAB_UNITS["haemoglobin"])
    assert "mL/min" in LAB_UNITS["creatinine_clearance"]


@pytest.mark.parametrize(
    "build",
    [
        lambda: LabValue(1500.0, "/uL", START),
        lambda: LabValue(Decimal(1500), "/uL", START, uln=1.0),
        lambda: LesionFacts("lung", 40.0),
    ],
)
def test_binary_floats_are_rejected(build):
    with pytest.raises(TypeError):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda: LabValue(Decimal("-1"), "/uL", START),
        lambda: LabValue(Decimal("NaN"), "/uL", START),
        lambda: LesionFacts("lung", Decimal("-0.1")),
        lambda: PatientFacts(ecog=5),
        lambda: PatientFacts(age_at_consent=-1),
        lambda: PatientFacts(current_line=-1),
    ],
)
def test_out_of_range_inputs_raise_value_error(build):
    with pytest.raises(ValueError):
        build()


def test_patient_facts_are_immutable_including_labs():
    patient = facts(labs={"anc": lab("1500", "/uL")}, lesions=[lesion()])
    assert isinstance(patient.lesions, tuple)
    with pytest.raises(TypeError):
        patient.labs["platelets"] = lab("100000", "/uL")  # type: ignore[index]


# ---------------------------------------------------------------------------
# min_age, max_ecog, systemic_line, max_prior_lines
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "minimum", "expected", "detail"),
    [
        (17, 18, NOT_MET, "age 17 < 18"),
        (18, 18, MET, "age 18 >= 18"),
        (18, 19, NOT_MET, "age 18 < 19"),  # STOP-2
        (19, 19, MET, "age 19 >= 19"),
    ],
)
def test_min_age_boundaries(age, minimum, expected, detail):
    assert run("min_age", facts(age_at_consent=age), minimum=minimum) == RuleResult(
        expected, detail
    )


def test_min_age_unknown_without_age():
    assert outcome("min_age", facts()) is UNKNOWN


@pytest.mark.parametrize(
    ("ecog", "maximum", "expected"),
    [(2, 2, MET), (3, 2, NOT_MET), (0, 1, MET), (1, 1, MET), (2, 1, NOT_MET)],
)
def test_max_ecog_boundaries(ecog, maximum, expected):
    assert outcome("max_ecog", facts(ecog=ecog), maximum=maximum) is expected


def test_max_ecog_unknown_without_performance_status():
    assert outcome("max_ecog", facts(), maximum=2) is UNKNOWN


@pytest.mark.parametrize(("line", "expected"), [(0, NOT_MET), (1, MET), (2, MET), (3, NOT_MET)])
def test_systemic_line_first_or_second(line, expected):
    assert outcome("systemic_line", facts(current_line=line)) is expected


def test_systemic_line_custom_allowed_lines_and_json_list():
    assert outcome("systemic_line", facts(current_line=2), allowed_lines=(1,)) is NOT_MET
    assert outcome("systemic_line", facts(current_line=2), allowed_lines=[1, 2]) is MET


def test_systemic_line_unknown_without_current_line():
    assert outcome("systemic_line", facts()) is UNKNOWN


@pytest.mark.parametrize(("received", "expected"), [(0, MET), (2, MET), (3, NOT_MET)])
def test_max_prior_lines_storm01_three_or_more_excluded(received, expected):
    assert outcome("max_prior_lines", facts(systemic_lines_received=received)) is expected


def test_max_prior_lines_unknown_without_count():
    assert outcome("max_prior_lines", facts()) is UNKNOWN


# ---------------------------------------------------------------------------
# Lesion rules
# ---------------------------------------------------------------------------


def lesions(n: int, **kwargs) -> tuple[LesionFacts, ...]:
    return tuple(lesion(**kwargs) for _ in range(n))


LESION_RULES = [
    ("progressing_lesion_count", {"maximum": 3}),
    ("progressing_organ_count", {}),
    ("max_lesion_diameter", {}),
    ("one_lesion_smaller_than", {}),
    ("max_cumulated_diameter", {}),
    ("no_brain_metastases", {}),
    ("no_long_bone_progression", {}),
]


@pytest.mark.parametrize(("key", "params"), LESION_RULES)
def test_lesion_rules_unknown_when_no_lesion_recorded(key, params):
    assert outcome(key, facts(), **params) is UNKNOWN


@pytest.mark.parametrize(
    ("count", "maximum", "expected"),
    [(1, 3, MET), (3, 3, MET), (4, 3, NOT_MET), (5, 5, MET), (6, 5, NOT_MET)],
)
def test_progressing_lesion_count_boundaries(count, maximum, expected):
    patient = facts(lesions=lesions(count))
    assert outcome("progressing_lesion_count", patient, maximum=maximum) is expected


def test_progressing_lesion_count_ignores_stable_lesions():
    patient = facts(lesions=lesions(3) + lesions(2, progressing=False))
    assert outcome("progressing_lesion_count", patient, maximum=3) is MET
    stable_only = facts(lesions=lesions(2, progressing=False))
    assert outcome("progressing_lesion_count", stable_only, maximum=3) is NOT_MET


def test_progressing_lesion_count_minimum_is_inclusive():
    assert (
        outcome("progressing_lesion_count", facts(lesions=lesions(2)), minimum=2, maximum=3) is MET
    )
    result = run("progressing_lesion_count", facts(lesions=lesions(1)), minimum=2, maximum=3)
    assert result.outcome is NOT_MET and "1" in result.detail


def organs(*names: str, progressing: bool = True) -> tuple[LesionFacts, ...]:
    return tuple(lesion(name, progressing=progressing) for name in names)


def test_progressing_organ_count_two_organs_case_insensitive():
    patient = facts(lesions=organs("Lung", " lung ", "LUNG", "Liver", "liver "))
    result = run("progressing_organ_count", patient)
    assert result.outcome is MET
    assert "2 organ" in result.detail


def test_progressing_organ_count_three_organs_not_met():
    patient = facts(lesions=organs("Lung", "liver", " Bone"))
    assert outcome("progressing_organ_count", patient) is NOT_MET
    assert outcome("progressing_organ_count", patient, maximum=3) is MET


def test_progressing_organ_count_ignores_organs_of_stable_lesions():
    patient = facts(lesions=organs("lung", "liver") + organs("bone", progressing=False))
    assert outcome("progressing_organ_count", patient) is MET


def test_progressing_organ_count_blank_organ():
    # A blank organ may or may not be a new organ: unknown only when it could matter.
    assert (
        outcome("progressing_organ_count", facts(lesions=organs("lung", "liver", " "))) is UNKNOWN
    )
    assert outcome("progressing_organ_count", facts(lesions=organs("lung", ""))) is MET
    assert (
        outcome("progressing_organ_count", facts(lesions=organs("lung", "liver", "bone", "")))
        is NOT_MET
    )


@pytest.mark.parametrize(("mm", "expected"), [("40.0", MET), ("40", MET), ("40.1", NOT_MET)])
def test_max_lesion_diameter_4_cm(mm, expected):
    patient = facts(lesions=(lesion(mm="12"), lesion("liver", mm)))
    result = run("max_lesion_diameter", patient)
    assert result.outcome is expected
    if expected is NOT_MET:
        assert "40.1" in result.detail


def test_max_lesion_diameter_ignores_stable_lesions():
    patient = facts(lesions=(lesion(mm="30"), lesion(mm="60", progressing=False)))
    assert outcome("max_lesion_diameter", patient) is MET


def test_max_lesion_diameter_missing_diameter():
    assert (
        outcome("max_lesion_diameter", facts(lesions=(lesion(mm="30"), lesion(mm=None)))) is UNKNOWN
    )
    # Already decided by a lesion over the limit:
    decided = facts(lesions=(lesion(mm="41"), lesion(mm=None)))
    assert outcome("max_lesion_diameter", decided) is NOT_MET


@pytest.mark.parametrize(("mm", "expected"), [("49.9", MET), ("50", NOT_MET), ("50.0", NOT_MET)])
def test_one_lesion_smaller_than_5_cm_is_strict(mm, expected):
    patient = facts(lesions=(lesion(mm="70"), lesion(mm=mm)))
    assert outcome("one_lesion_smaller_than", patient) is expected


def test_one_lesion_smaller_than_missing_diameters():
    assert (
        outcome("one_lesion_smaller_than", facts(lesions=(lesion(mm="70"), lesion(mm=None))))
        is UNKNOWN
    )
    assert (
        outcome("one_lesion_smaller_than", facts(lesions=(lesion(mm="49"), lesion(mm=None)))) is MET
    )


def test_one_lesion_smaller_than_counts_only_lesions_to_irradiate():
    patient = facts(lesions=(lesion(mm="70"), lesion(mm="30", progressing=False)))
    assert outcome("one_lesion_smaller_than", patient) is NOT_MET


@pytest.mark.parametrize(
    ("diameters", "expected"),
    [
        (("50", "50"), MET),
        (("50", "51"), NOT_MET),
        (("100",), MET),
        (("100.1",), NOT_MET),
        # Exact decimal sum: in binary floats 83.9 + 15.9 + 0.2 > 100.
        (("83.9", "15.9", "0.2"), MET),
    ],
)
def test_max_cumulated_diameter_10_cm(diameters, expected):
    patient = facts(lesions=tuple(lesion(mm=mm) for mm in diameters))
    assert outcome("max_cumulated_diameter", patient) is expected


def test_max_cumulated_diameter_ignores_stable_lesions():
    patient = facts(lesions=(lesion(mm="100"), lesion(mm="30", progressing=False)))
    assert outcome("max_cumulated_diameter", patient) is MET


def test_max_cumulated_diameter_missing_diameter():
    assert (
        outcome("max_cumulated_diameter", facts(lesions=(lesion(mm="60"), lesion(mm=None))))
        is UNKNOWN
    )
    over = facts(lesions=(lesion(mm="60"), lesion(mm="41"), lesion(mm=None)))
    assert outcome("max_cumulated_diameter", over) is NOT_MET


@pytest.mark.parametrize(
    ("brain_lesion", "expected"),
    [
        (lesion("brain"), NOT_MET),
        (lesion(" Brain "), NOT_MET),
        (lesion("cerebellum", brain=True), NOT_MET),
        (lesion("brain", progressing=False), NOT_MET),  # presence, progressing or not
        (lesion("bone"), MET),
    ],
)
def test_no_brain_metastases(brain_lesion, expected):
    patient = facts(lesions=(lesion("lung"), brain_lesion))
    assert outcome("no_brain_metastases", patient) is expected


@pytest.mark.parametrize(
    ("bone_lesion", "expected"),
    [
        (lesion("bone", long_bone=True), NOT_MET),
        (lesion("bone", long_bone=True, progressing=False), MET),
        (lesion("bone"), MET),
    ],
)
def test_no_long_bone_progression(bone_lesion, expected):
    patient = facts(lesions=(lesion("lung"), bone_lesion))
    assert outcome("no_long_bone_progression", patient) is expected


# ---------------------------------------------------------------------------
# stereosarc_labs
# ---------------------------------------------------------------------------


def threshold_labs(**overrides: LabValue | None) -> dict[str, LabValue]:
    """Every primary lab exactly at its limit (all limits are inclusive)."""
    labs = {
        "anc": lab("1500", "/uL"),
        "platelets": lab("100000", "/uL"),
        "haemoglobin": lab("9", "g/dL"),
        "creatinine": lab("165", "umol/L", uln="110"),  # 1.5 x ULN
        "bilirubin": lab("25.5", "umol/L", uln="17"),  # 1.5 x ULN
        "ast": lab("100", "U/L", uln="40"),  # 2.5 x ULN
        "alt": lab("112.5", "U/L", uln="45"),  # 2.5 x ULN
    }
    labs.update(overrides)
    return {key: value for key, value in labs.items() if value is not None}


def labs_patient(liver_metastases: bool | None = False, **overrides) -> PatientFacts:
    return facts(
        labs=threshold_labs(**overrides), treatment_start=START, liver_metastases=liver_metastases
    )


def labs_outcome(**overrides) -> Outcome:
    return outcome("stereosarc_labs", labs_patient(**overrides))


def test_labs_all_at_threshold_met():
    assert labs_outcome() is MET


@pytest.mark.parametrize(
    ("key", "at_threshold", "beyond"),
    [
        ("anc", lab("1500", "/uL"), lab("1499", "/uL")),
        ("anc", lab("1500", "/mm3"), lab("1499.9", "/mm3")),
        ("anc", lab("1.5", "10^9/L"), lab("1.499", "10^9/L")),
        ("platelets", lab("100000", "/uL"), lab("99999", "/uL")),
        ("platelets", lab("100", "10^9/L"), lab("99.9", "10^9/L")),
        ("haemoglobin", lab("9", "g/dL"), lab("8.9", "g/dL")),
        ("haemoglobin", lab("90", "g/L"), lab("89.9", "g/L")),
        ("haemoglobin", lab("5.6", "mmol/L"), lab("5.59", "mmol/L")),
        ("ast", lab("100", "U/L", uln="40"), lab("100.1", "U/L", uln="40")),
        ("alt", lab("75", "IU/L", uln="30"), lab("75.01", "IU/L", uln="30")),
    ],
)
def test_lab_component_at_threshold_and_just_beyond(key, at_threshold, beyond):
    assert outcome("stereosarc_labs", labs_patient(**{key: at_threshold})) is MET
    result = run("stereosarc_labs", labs_patient(**{key: beyond}))
    assert result.outcome is NOT_MET
    assert result.detail.startswith("not met: ")
    assert key in result.detail and str(beyond.value) in result.detail


def test_lab_unit_conversions_are_equivalent():
    # 1.5 10^9/L == 1500 /uL; 90 g/L == 9 g/dL; both converted exactly.
    result = run("stereosarc_labs", labs_patient(anc=lab("1.4", "10^9/L")))
    assert "1400" in result.detail and "1500 /uL" in result.detail
    result = run("stereosarc_labs", labs_patient(haemoglobin=lab("89", "g/L")))
    assert "8.9" in result.detail and "9 g/dL" in result.detail


def test_creatinine_over_limit_rescued_by_clearance():
    high = lab("165.1", "umol/L", uln="110")
    assert labs_outcome(creatinine=high, creatinine_clearance=lab("50", "mL/min")) is MET
    assert labs_outcome(creatinine=high, creatinine_clearance=lab("49.9", "mL/min")) is NOT_MET
    assert labs_outcome(creatinine=high) is UNKNOWN  # clearance could still rescue


def test_creatinine_missing_but_clearance_adequate_is_met():
    assert labs_outcome(creatinine=None, creatinine_clearance=lab("60", "mL/min")) is MET
    assert labs_outcome(creatinine=None, creatinine_clearance=lab("40", "mL/min")) is UNKNOWN


def test_creatinine_limit_uses_exact_decimal_ratio():
    # 1.5 * 1.2 is 1.7999999999999998 in binary floating point.
    assert labs_outcome(creatinine=lab("1.8", "mg/dL", uln="1.2")) is MET
    assert (
        labs_outcome(
            creatinine=lab("1.81", "mg/dL", uln="1.2"), creatinine_clearance=lab("49", "mL/min")
        )
        is NOT_MET
    )


def test_bilirubin_over_limit_rescued_by_direct_bilirubin():
    high = lab("25.6", "umol/L", uln="17")
    assert labs_outcome(bilirubin=high, direct_bilirubin=lab("5", "umol/L", uln="5")) is MET
    assert labs_outcome(bilirubin=high, direct_bilirubin=lab("5.1", "umol/L", uln="5")) is NOT_MET
    assert labs_outcome(bilirubin=high) is UNKNOWN


def test_direct_bilirubin_uses_its_own_uln():
    high = lab("30", "umol/L", uln="17")
    # 18 > total-bilirubin ULN 17 but <= its own ULN 20; 8 < 17 but > its own ULN 7.
    assert labs_outcome(bilirubin=high, direct_bilirubin=lab("18", "umol/L", uln="20")) is MET
    assert labs_outcome(bilirubin=high, direct_bilirubin=lab("8", "umol/L", uln="7")) is NOT_MET


@pytest.mark.parametrize("key", ["ast", "alt"])
def test_transaminases_liver_metastasis_exception(key):
    three_uln = lab("120", "U/L", uln="40")
    assert labs_outcome(liver_metastases=False, **{key: three_uln}) is NOT_MET
    assert labs_outcome(liver_metastases=True, **{key: three_uln}) is MET
    assert labs_outcome(liver_metastases=True, **{key: lab("200", "U/L", uln="40")}) is MET
    assert labs_outcome(liver_metastases=True, **{key: lab("200.1", "U/L", uln="40")}) is NOT_MET


@pytest.mark.parametrize("key", ["ast", "alt"])
def test_transaminases_with_liver_status_unknown(key):
    assert labs_outcome(liver_metastases=None, **{key: lab("100", "U/L", uln="40")}) is MET
    assert labs_outcome(liver_metastases=None, **{key: lab("120", "U/L", uln="40")}) is UNKNOWN
    assert labs_outcome(liver_metastases=None, **{key: lab("201", "U/L", uln="40")}) is NOT_MET


@pytest.mark.parametrize("key", ["creatinine", "bilirubin", "ast", "alt"])
def test_uln_relative_lab_without_uln_is_unknown(key):
    result = run("stereosarc_labs", labs_patient(**{key: lab("1", threshold_labs()[key].unit)}))
    assert result.outcome is UNKNOWN
    assert key in result.detail


@pytest.mark.parametrize(
    "key", ["anc", "platelets", "haemoglobin", "creatinine", "bilirubin", "ast", "alt"]
)
def test_each_missing_lab_is_unknown(key):
    result = run("stereosarc_labs", labs_patient(**{key: None}))
    assert result.outcome is UNKNOWN
    assert f"{key} not recorded" in result.detail


def test_lab_sampling_window():
    assert labs_outcome(anc=lab("1500", "/uL", days_before=15)) is MET
    stale = run("stereosarc_labs", labs_patient(anc=lab("1500", "/uL", days_before=16)))
    assert stale.outcome is UNKNOWN  # documented decision: no valid lab = missing
    assert "16 days" in stale.detail
    assert labs_outcome(anc=lab("1500", "/uL", days_before=-1)) is UNKNOWN  # after start
    # A failing but stale value is ignored too: it says nothing about current function.
    assert labs_outcome(anc=lab("100", "/uL", days_before=16)) is UNKNOWN
    window = {"window_days": 20}
    assert (
        run(
            "stereosarc_labs", labs_patient(anc=lab("1500", "/uL", days_before=16)), **window
        ).outcome
        is MET
    )


def test_stale_lab_cannot_rescue():
    high = lab("165.1", "umol/L", uln="110")
    stale_clearance = lab("80", "mL/min", days_before=16)
    assert labs_outcome(creatinine=high, creatinine_clearance=stale_clearance) is UNKNOWN


def test_labs_unknown_without_treatment_start():
    patient = replace(labs_patient(), treatment_start=None)
    assert outcome("stereosarc_labs", patient) is UNKNOWN


def test_labs_failure_dominates_and_detail_lists_each_failing_component():
    result = run(
        "stereosarc_labs",
        labs_patient(anc=lab("1499", "/uL"), platelets=lab("99999", "/uL"), haemoglobin=None),
    )
    assert result.outcome is NOT_MET
    failed, unknown = result.detail.split(" | ")
    assert "anc 1499" in failed and "platelets 99999" in failed
    assert "haemoglobin" in unknown and "haemoglobin" not in failed


# ---------------------------------------------------------------------------
# restaging_within, pregnancy_test_within
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_before", "expected"), [(0, MET), (84, MET), (85, NOT_MET), (-1, NOT_MET)]
)
def test_restaging_within_12_weeks(days_before, expected):
    patient = facts(
        randomisation_date=RANDOMISED, restaging_date=RANDOMISED - timedelta(days=days_before)
    )
    assert outcome("restaging_within", patient) is expected


def test_restaging_within_custom_weeks():
    patient = facts(randomisation_date=RANDOMISED, restaging_date=RANDOMISED - timedelta(days=29))
    assert outcome("restaging_within", patient, weeks=4) is NOT_MET
    assert outcome("restaging_within", patient, weeks=5) is MET


@pytest.mark.parametrize(
    "patient",
    [facts(randomisation_date=RANDOMISED), facts(restaging_date=RANDOMISED)],
)
def test_restaging_within_unknown_without_dates(patient):
    assert outcome("restaging_within", patient) is UNKNOWN


def pregnancy(days_before: int | None = 10, negative: bool | None = True, **kw) -> PatientFacts:
    test_date = None if days_before is None else START - timedelta(days=days_before)
    return facts(
        treatment_start=START,
        childbearing_potential=True,
        pregnancy_test_date=test_date,
        pregnancy_test_negative=negative,
        **kw,
    )


@pytest.mark.parametrize(
    ("days_before", "expected"), [(0, MET), (28, MET), (29, NOT_MET), (-1, NOT_MET)]
)
def test_pregnancy_test_within_4_weeks(days_before, expected):
    assert outcome("pregnancy_test_within", pregnancy(days_before)) is expected


def test_pregnancy_test_custom_days():
    assert outcome("pregnancy_test_within", pregnancy(4), days=3) is NOT_MET
    assert outcome("pregnancy_test_within", pregnancy(3), days=3) is MET


def test_pregnancy_test_not_applicable_without_childbearing_potential():
    result = run("pregnancy_test_within", facts(childbearing_potential=False))
    assert result.outcome is MET
    assert "not applicable" in result.detail


def test_pregnancy_test_positive_is_not_met():
    assert outcome("pregnancy_test_within", pregnancy(negative=False)) is NOT_MET
    assert outcome("pregnancy_test_within", pregnancy(None, negative=False)) is NOT_MET


@pytest.mark.parametrize(
    "patient",
    [
        facts(treatment_start=START),  # childbearing potential not recorded
        pregnancy(days_before=None),
        pregnancy(negative=None),
        replace(pregnancy(), treatment_start=None),
    ],
)
def test_pregnancy_test_unknown_when_data_missing(patient):
    assert outcome("pregnancy_test_within", patient) is UNKNOWN


# ---------------------------------------------------------------------------
# One fully eligible patient per seed trial
# ---------------------------------------------------------------------------

TRIAL_RULES: dict[str, dict[str, dict]] = {
    "STORM-01": {
        "min_age": {"minimum": 18},
        "max_ecog": {"maximum": 2},
        "progressing_lesion_count": {"minimum": 1, "maximum": 3},
        "progressing_organ_count": {"maximum": 2},
        "max_lesion_diameter": {"maximum_mm": Decimal(40)},
        "systemic_line": {"allowed_lines": (1, 2)},
        "max_prior_lines": {"maximum": 2},
        "no_brain_metastases": {},
        "no_long_bone_progression": {},
    },
    "STEREOSARC": {
        "min_age": {"minimum": 18},
        "max_ecog": {"maximum": 1},
        "progressing_lesion_count": {"minimum": 1, "maximum": 5},
        "one_lesion_smaller_than": {"limit_mm": Decimal(50)},
        "max_cumulated_diameter": {"maximum_mm": Decimal(100)},
        "systemic_line": {"allowed_lines": (1, 2)},
        "stereosarc_labs": {"window_days": 15},
    },
    "STOP-2": {
        "min_age": {"minimum": 19},
        "max_ecog": {"maximum": 2},
        "progressing_lesion_count": {"minimum": 1, "maximum": 5},
        "restaging_within": {"weeks": 12},
        "pregnancy_test_within": {"days": 28},
    },
}

ELIGIBLE = {
    "STORM-01": facts(
        age_at_consent=18,
        ecog=2,
        lesions=(
            lesion("Lung", "40"),
            lesion("lung", "12"),
            lesion("Bone", "25"),  # flat bone
            lesion("bone", "30", progressing=False, long_bone=True),  # stable long bone
        ),
        systemic_lines_received=2,
        current_line=2,
    ),
    "STEREOSARC": facts(
        age_at_consent=18,
        ecog=1,
        lesions=(lesion("lung", "49.9"), lesion("lung", "30"), lesion("liver", "20.1")),
        current_line=1,
        liver_metastases=True,
        labs=threshold_labs(
            anc=lab("1.5", "10^9/L", days_before=15),
            haemoglobin=lab("5.6", "mmol/L", days_before=3),
            ast=lab("200", "U/L", uln="40"),  # 5 x ULN, allowed with liver metastases
        ),
        treatment_start=START,
    ),
    "STOP-2": facts(
        age_at_consent=19,
        ecog=2,
        lesions=lesions(5),
        randomisation_date=RANDOMISED,
        restaging_date=RANDOMISED - timedelta(weeks=12),
        treatment_start=START,
        childbearing_potential=True,
        pregnancy_test_date=START - timedelta(weeks=4),
        pregnancy_test_negative=True,
    ),
}

# One change each, failing exactly one rule of the trial.
STORM_LESIONS = ELIGIBLE["STORM-01"].lesions
NEAR_MISSES = [
    ("STORM-01", {"age_at_consent": 17}, "min_age"),
    ("STORM-01", {"lesions": (lesion("Lung", "40.1"), *STORM_LESIONS[1:])}, "max_lesion_diameter"),
    (
        "STORM-01",
        {"lesions": (STORM_LESIONS[0], lesion(" LIVER ", "12"), *STORM_LESIONS[2:])},
        "progressing_organ_count",
    ),
    (
        "STORM-01",
        {"lesions": (*STORM_LESIONS[:2], lesion("bone", "25", long_bone=True))},
        "no_long_bone_progression",
    ),
    (
        "STORM-01",
        {"lesions": (*STORM_LESIONS, lesion("brain", "5", progressing=False))},
        "no_brain_metastases",
    ),
    ("STORM-01", {"lesions": (*STORM_LESIONS, lesion("lung", "5"))}, "progressing_lesion_count"),
    ("STORM-01", {"ecog": 3}, "max_ecog"),
    ("STORM-01", {"systemic_lines_received": 3}, "max_prior_lines"),
    ("STORM-01", {"current_line": 3}, "systemic_line"),
    ("STEREOSARC", {"ecog": 2}, "max_ecog"),
    ("STEREOSARC", {"liver_metastases": False}, "stereosarc_labs"),
    ("STEREOSARC", {"current_line": 3}, "systemic_line"),
    (
        "STEREOSARC",
        {"lesions": (lesion("lung", "50"), lesion("liver", "50"))},
        "one_lesion_smaller_than",
    ),
    (
        "STEREOSARC",
        {"lesions": (lesion("lung", "49.9"), lesion("lung", "30"), lesion("liver", "20.2"))},
        "max_cumulated_diameter",
    ),
    ("STEREOSARC", {"age_at_consent": 17}, "min_age"),
    ("STOP-2", {"age_at_consent": 18}, "min_age"),
    ("STOP-2", {"restaging_date": RANDOMISED - timedelta(days=85)}, "restaging_within"),
    ("STOP-2", {"lesions": lesions(6)}, "progressing_lesion_count"),
    ("STOP-2", {"ecog": 3}, "max_ecog"),
    ("STOP-2", {"pregnancy_test_date": START - timedelta(days=29)}, "pregnancy_test_within"),
]


@pytest.mark.parametrize("code", sorted(TRIAL_RULES))
def test_fully_eligible_patient_meets_every_rule_of_the_trial(code):
    for key, params in TRIAL_RULES[code].items():
        result = evaluate(key, ELIGIBLE[code], params)
        assert result.outcome is MET, (code, key, result.detail)


@pytest.mark.parametrize(("code", "change", "failing_rule"), NEAR_MISSES)
def test_near_miss_fails_exactly_the_expected_rule(code, change, failing_rule):
    patient = replace(ELIGIBLE[code], **change)
    not_met = {
        key
        for key, params in TRIAL_RULES[code].items()
        if evaluate(key, patient, params).outcome is not MET
    }
    assert not_met == {failing_rule}


@pytest.mark.parametrize("code", sorted(TRIAL_RULES))
def test_trial_profiles_agree_with_seed_minimum_age(code):
    assert TRIAL_RULES[code]["min_age"]["minimum"] == SEEDS[code].min_age


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

mm_values = st.decimals(min_value=0, max_value=150, places=1, allow_nan=False, allow_infinity=False)


@HYPOTHESIS
@given(diameters=st.lists(mm_values, min_size=1, max_size=6), maximum=mm_values)
def test_lesion_size_rules_match_an_exact_rational_oracle(diameters, maximum):
    patient = facts(lesions=tuple(LesionFacts("lung", d) for d in diameters))
    as_fractions = [Fraction(d) for d in diameters]
    cumulated_ok = sum(as_fractions) <= Fraction(maximum)
    largest_ok = max(as_fractions) <= Fraction(maximum)
    smaller_ok = min(as_fractions) < Fraction(maximum)
    assert outcome("max_cumulated_diameter", patient, maximum_mm=maximum) is (
        MET if cumulated_ok else NOT_MET
    )
    assert outcome("max_lesion_diameter", patient, maximum_mm=maximum) is (
        MET if largest_ok else NOT_MET
    )
    assert outcome("one_lesion_smaller_than", patient, limit_mm=maximum) is (
        MET if smaller_ok else NOT_MET
    )


@HYPOTHESIS
@given(
    diameters=st.lists(mm_values, min_size=1, max_size=6),
    hidden=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_missing_diameters_never_change_a_decided_lesion_outcome(diameters, hidden):
    full = facts(lesions=tuple(LesionFacts("lung", d) for d in diameters))
    partial = facts(
        lesions=tuple(
            LesionFacts("lung", None if hide else d)
            for d, hide in zip(diameters, hidden, strict=False)
        )
    )
    for key in ("max_lesion_diameter", "one_lesion_smaller_than", "max_cumulated_diameter"):
        decided = outcome(key, full)
        assert decided is not UNKNOWN
        assert outcome(key, partial) in (decided, UNKNOWN), key


def around(threshold: str, spread: str) -> st.SearchStrategy[Decimal]:
    low = max(Decimal(0), D(threshold) - D(spread))
    return st.decimals(
        min_value=low,
        max_value=D(threshold) + D(spread),
        places=2,
        allow_nan=False,
        allow_infinity=False,
    )


uln_values = st.decimals(min_value=1, max_value=60, places=1, allow_nan=False, allow_infinity=False)


@st.composite
def complete_lab_sets(draw):
    def scaled(uln: Decimal, low: str, high: str) -> LabValue:
        value = draw(st.decimals(min_value=D(low), max_value=D(high), places=2)) * uln
        return LabValue(value, "U/L", START - timedelta(days=draw(st.integers(0, 15))), uln)

    labs = {
        "anc": LabValue(draw(around("1500", "200")), "/uL", START),
        "platelets": LabValue(draw(around("100000", "5000")), "/uL", START),
        "haemoglobin": LabValue(draw(around("9", "1")), "g/dL", START),
        "creatinine_clearance": LabValue(draw(around("50", "10")), "mL/min", START),
    }
    for key in ("ast", "alt"):
        labs[key] = scaled(draw(uln_values), "1", "6")
    for key in ("creatinine", "bilirubin", "direct_bilirubin"):
        uln = draw(uln_values)
        value = draw(st.decimals(min_value=D("0.5"), max_value=D(2), places=2)) * uln
        labs[key] = LabValue(value, "umol/L", START, uln)
    return labs


@HYPOTHESIS
@given(
    labs=complete_lab_sets(),
    liver=st.booleans(),
    dropped=st.sets(st.sampled_from(sorted(LAB_UNITS))),
    forget_liver=st.booleans(),
)
def test_missing_labs_never_change_a_decided_lab_outcome(labs, liver, dropped, forget_liver):
    full = facts(labs=labs, treatment_start=START, liver_metastases=liver)
    decided = outcome("stereosarc_labs", full)
    assert decided is not UNKNOWN  # complete, in-window data always decides
    partial = facts(
        labs={k: v for k, v in labs.items() if k not in dropped},
        treatment_start=START,
        liver_metastases=None if forget_liver else liver,
    )
    assert outcome("stereosarc_labs", partial) in (decided, UNKNOWN)
