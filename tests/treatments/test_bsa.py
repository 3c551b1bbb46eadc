"""Tests for the pure BSA engine ``treatments.bsa`` (RULES.md, Body surface area and dosing).

The ATRA trial (seed 003): "ATRA 150 mg/m^2/day for 3 days every 3 weeks for a maximum
of 4 cycles".  Seed 003 names neither the BSA formula nor the dose rounding, so the
ATRA doses below spell both out (tretinoin comes as 10 mg capsules, hence 10 mg steps
in most examples).  Decisions tested here: BSA is reported to 0.01 m2 half up; the dose
is computed from the reported BSA unless ``dose_from_rounded_bsa=False``; the cap
applies to the BSA used for dosing; floats are refused (TypeError).
"""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError
from decimal import Context, Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from treatments.bsa import BsaDose, Formula, bsa, bsa_unrounded, dose_per_m2

D = Decimal
MOSTELLER, DUBOIS = Formula.MOSTELLER, Formula.DUBOIS
ATRA_MG_PER_M2 = D(150)
_WIDE = Context(prec=100)  # exact products of the engine's 34-digit values


def _close(value: Decimal, exact: Decimal) -> bool:
    """Equal to 34 significant digits (the engine's precision)."""
    return abs(value - exact) <= exact.copy_abs() * D("1e-33")


# ---------------------------------------------------------------------------
# Worked values
# ---------------------------------------------------------------------------

# 170 cm, 70 kg.
# Mosteller: 170 x 70 = 11900; 11900 / 3600 = 3.30555...; sqrt = 1.818118... (1.8181^2 = 3.3055)
#   -> 1.82 m2.  (1.8257 m2 would need 170 cm x 70.58 kg.)
# DuBois: 70^0.425 = e^(0.425 x ln 70) = e^(0.425 x 4.248495) = e^1.805610 = 6.083684;
#   170^0.725 = e^(0.725 x 5.135798) = e^3.723454 = 41.407162;
#   0.007184 x 6.083684 x 41.407162 = 1.809708 -> 1.81 m2.
# 180 cm, 80 kg: Mosteller sqrt(14400 / 3600) = sqrt(4) = 2 exactly; DuBois 1.996421 -> 2.00.


@pytest.mark.parametrize(
    ("height", "weight", "formula", "unrounded_prefix", "reported"),
    [
        (170, 70, MOSTELLER, "1.818118685772", "1.82"),
        (170, 70, DUBOIS, "1.809707801753", "1.81"),
        (180, 80, MOSTELLER, "2", "2.00"),
        (180, 80, DUBOIS, "1.996421022275", "2.00"),
        (160, 60, MOSTELLER, "1.632993161855", "1.63"),  # sqrt(9600/3600) = sqrt(8/3)
        (160, 60, DUBOIS, "1.622062531435", "1.62"),
        (190, 110, MOSTELLER, "2.409472049133", "2.41"),
        (190, 110, DUBOIS, "2.377138990623", "2.38"),
    ],
)
def test_bsa_matches_the_worked_values(height, weight, formula, unrounded_prefix, reported):
    assert str(bsa_unrounded(height, weight, formula)).startswith(unrounded_prefix)
    assert bsa(height, weight, formula) == D(reported)
    assert str(bsa(height, weight, formula)) == reported


def test_mosteller_of_a_perfect_square_is_exact():
    assert bsa_unrounded(180, 80, MOSTELLER) == D(2)
    assert bsa_unrounded(171, 76, MOSTELLER) == D("1.9")  # 171 x 76 = 12996 = 3600 x 3.61


def test_unrounded_bsa_keeps_34_significant_digits():
    value = bsa_unrounded(170, 70, MOSTELLER)
    assert len(value.as_tuple().digits) == 34
    assert abs(value - D(math.sqrt(170 * 70 / 3600))) < D("1e-15")


def test_bsa_half_way_rounds_up():
    # 182.5 x 65.7 = 11990.25; / 3600 = 3.330625 = 1.825^2: exactly half-way -> 1.83
    # (half even would give 1.82).
    assert bsa_unrounded(D("182.5"), D("65.7"), MOSTELLER) == D("1.825")
    assert bsa(D("182.5"), D("65.7"), MOSTELLER) == D("1.83")


# ---------------------------------------------------------------------------
# Dose and explanation
# ---------------------------------------------------------------------------


def test_dose_per_m2_returns_every_step_and_an_explanation():
    result = dose_per_m2(150, 170, 70, MOSTELLER, 10)
    assert result == BsaDose(
        formula=MOSTELLER,
        height_cm=D(170),
        weight_kg=D(70),
        bsa_m2=D("1.82"),
        bsa_unrounded_m2=bsa_unrounded(170, 70, MOSTELLER),
        dosing_bsa_m2=D("1.82"),
        capped=False,
        dose_mg_per_m2=D(150),
        exact_dose_mg=D("273.00"),
        rounding_mg=D(10),
        dose_mg=D(270),
        explanation=(
            "Mosteller: sqrt(170 cm x 70 kg / 3600) = 1.82 m2; "
            "150 mg/m2 x 1.82 m2 = 273 mg -> 270 mg (nearest 10 mg)"
        ),
    )


def test_dubois_explanation_shows_the_powers():
    result = dose_per_m2(150, 170, 70, DUBOIS, 10)
    assert result.explanation == (
        "DuBois: 0.007184 x (70 kg)^0.425 x (170 cm)^0.725 = 1.81 m2; "
        "150 mg/m2 x 1.81 m2 = 271.5 mg -> 270 mg (nearest 10 mg)"
    )


def test_explanation_shows_decimal_inputs_without_trailing_zeros():
    result = dose_per_m2(D("150.0"), D("182.50"), D("65.7"), MOSTELLER, D("1.0"))
    assert result.explanation == (
        "Mosteller: sqrt(182.5 cm x 65.7 kg / 3600) = 1.83 m2; "
        "150 mg/m2 x 1.83 m2 = 274.5 mg -> 275 mg (nearest 1 mg)"
    )


@pytest.mark.parametrize(
    ("height", "weight", "rounding", "exact", "dose"),
    [
        # 170 cm, 71 kg: sqrt(12070 / 3600) = 1.8311 -> 1.83; 150 x 1.83 = 274.5 mg
        (170, 71, 1, "274.5", 275),  # half up (half even: 274)
        (170, 71, 5, "274.5", 275),  # 274.5 / 5 = 54.9 -> 55
        (170, 71, 10, "274.5", 270),  # 27.45 -> 27
        (170, 71, D("0.5"), "274.5", D("274.5")),
        # 171 cm, 76 kg: 1.90 m2 exactly; 150 x 1.9 = 285 mg
        (171, 76, 1, "285", 285),
        (171, 76, 5, "285", 285),
        (171, 76, 10, "285", 290),  # 28.5 -> 29, half up (half even: 280)
        (171, 76, 100, "285", 300),
        # 160 cm, 60 kg: 1.63 m2; 150 x 1.63 = 244.5 mg
        (160, 60, 1, "244.5", 245),
        (160, 60, 5, "244.5", 245),  # 48.9 -> 49
        (160, 60, 10, "244.5", 240),  # 24.45 -> 24
    ],
)
def test_dose_rounds_half_up_to_the_study_step(height, weight, rounding, exact, dose):
    result = dose_per_m2(150, height, weight, MOSTELLER, rounding)
    assert result.exact_dose_mg == D(exact)
    assert result.dose_mg == D(dose)


def test_dose_can_use_the_unrounded_bsa():
    # 182.5 cm, 65.7 kg: BSA exactly 1.825 (reported 1.83).
    # Rounded BSA: 150 x 1.83 = 274.5 -> 275 mg; unrounded: 150 x 1.825 = 273.75 -> 274 mg.
    rounded = dose_per_m2(150, D("182.5"), D("65.7"), MOSTELLER, 1)
    unrounded = dose_per_m2(150, D("182.5"), D("65.7"), MOSTELLER, 1, dose_from_rounded_bsa=False)
    assert (rounded.dosing_bsa_m2, rounded.exact_dose_mg, rounded.dose_mg) == (
        D("1.83"),
        D("274.5"),
        D(275),
    )
    assert (unrounded.dosing_bsa_m2, unrounded.exact_dose_mg, unrounded.dose_mg) == (
        D("1.825"),
        D("273.75"),
        D(274),
    )
    assert unrounded.bsa_m2 == D("1.83")  # still reported to 0.01 m2


def test_unrounded_explanation_says_so():
    result = dose_per_m2(150, 170, 70, MOSTELLER, 10, dose_from_rounded_bsa=False)
    assert _close(result.exact_dose_mg, _WIDE.multiply(150, bsa_unrounded(170, 70, MOSTELLER)))
    assert result.explanation == (
        "Mosteller: sqrt(170 cm x 70 kg / 3600) = 1.82 m2 (unrounded ~1.8181 m2 used for "
        "dosing); 150 mg/m2 x ~1.8181 m2 = ~272.72 mg -> 270 mg (nearest 10 mg)"
    )


def test_cap_limits_the_bsa_used_for_dosing():
    # 190 cm, 110 kg: Mosteller 2.41 m2. Capped at 2.0: 150 x 2.0 = 300 mg.
    capped = dose_per_m2(150, 190, 110, MOSTELLER, 10, cap_bsa_m2=D("2.0"))
    assert (capped.bsa_m2, capped.dosing_bsa_m2, capped.capped) == (D("2.41"), D("2.0"), True)
    assert capped.dose_mg == D(300)
    assert capped.explanation == (
        "Mosteller: sqrt(190 cm x 110 kg / 3600) = 2.41 m2, capped at 2.0 m2; "
        "150 mg/m2 x 2.0 m2 = 300 mg -> 300 mg (nearest 10 mg)"
    )
    # No cap by default: 150 x 2.41 = 361.5 -> 360 mg.
    uncapped = dose_per_m2(150, 190, 110, MOSTELLER, 10)
    assert (uncapped.dosing_bsa_m2, uncapped.capped, uncapped.dose_mg) == (D("2.41"), False, 360)


def test_cap_at_or_above_the_bsa_changes_nothing():
    at_cap = dose_per_m2(150, 180, 80, MOSTELLER, 10, cap_bsa_m2=2)
    assert (at_cap.dosing_bsa_m2, at_cap.capped, at_cap.dose_mg) == (D("2.00"), False, 300)
    assert "capped" not in at_cap.explanation
    below = dose_per_m2(150, 170, 70, MOSTELLER, 10, cap_bsa_m2=2)
    assert (below.dosing_bsa_m2, below.capped) == (D("1.82"), False)


def test_cap_compares_with_the_bsa_actually_used():
    # 180 cm, 80.05 kg: Mosteller 2.000625 m2, reported 2.00.
    rounded = dose_per_m2(150, 180, D("80.05"), MOSTELLER, 1, cap_bsa_m2=2)
    assert (rounded.capped, rounded.dosing_bsa_m2, rounded.dose_mg) == (False, D("2.00"), 300)
    unrounded = dose_per_m2(
        150, 180, D("80.05"), MOSTELLER, 1, cap_bsa_m2=2, dose_from_rounded_bsa=False
    )
    assert (unrounded.capped, unrounded.dosing_bsa_m2, unrounded.dose_mg) == (True, D(2), 300)
    assert "(unrounded ~2.0006 m2 used for dosing), capped at 2 m2" in unrounded.explanation


def test_result_is_frozen():
    with pytest.raises(FrozenInstanceError):
        dose_per_m2(150, 170, 70, MOSTELLER, 10).dose_mg = D(0)  # type: ignore[misc]


# ---------------------------------------------------------------------------
# ATRA (seed 003): 150 mg/m2/day, days 1-3 of each 3-week cycle, at most 4 cycles
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "weight", "formula", "rounding", "cap", "daily"),
    [
        # Mosteller 1.82 m2: 150 x 1.82 = 273 -> 270 mg (10 mg) / 273 mg (1 mg)
        (170, 70, MOSTELLER, 10, None, 270),
        (170, 70, MOSTELLER, 1, None, 273),
        # DuBois 1.81 m2: 150 x 1.81 = 271.5 -> 270 mg (10 mg) / 272 mg (1 mg, half up)
        (170, 70, DUBOIS, 10, None, 270),
        (170, 70, DUBOIS, 1, None, 272),
        # Mosteller 1.90 m2: 285 -> 290 mg (10 mg, half up); DuBois 1.88 m2: 282 -> 280 mg
        (171, 76, MOSTELLER, 10, None, 290),
        (171, 76, DUBOIS, 10, None, 280),
        # Mosteller 1.63 m2: 244.5 -> 240 mg (10 mg)
        (160, 60, MOSTELLER, 10, None, 240),
        # Mosteller 2.41 m2: 361.5 -> 360 mg; capped at 2.0 m2: 300 mg
        (190, 110, MOSTELLER, 10, None, 360),
        (190, 110, MOSTELLER, 10, D("2.0"), 300),
    ],
)
def test_atra_daily_dose(height, weight, formula, rounding, cap, daily):
    result = dose_per_m2(ATRA_MG_PER_M2, height, weight, formula, rounding, cap_bsa_m2=cap)
    assert result.dose_mg == D(daily)


def test_atra_course_for_a_170_cm_70_kg_patient():
    daily = dose_per_m2(ATRA_MG_PER_M2, 170, 70, MOSTELLER, 10).dose_mg
    per_cycle = 3 * daily  # days 1-3
    assert (daily, per_cycle, 4 * per_cycle) == (D(270), D(810), D(3240))  # 4 cycles at most


# ---------------------------------------------------------------------------
# Rejected inputs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("height", [100, D("100.00"), 170, 250, D("250.0")])
@pytest.mark.parametrize("weight", [25, 70, 300, D("300.00")])
def test_bounds_are_included(height, weight):
    for formula in Formula:
        assert bsa(height, weight, formula) > 0


@pytest.mark.parametrize(
    ("height", "weight", "error", "message"),
    [
        (
            D("99.99"),
            70,
            ValueError,
            r"^height_cm 99\.99 cm is implausible \(accepted 100-250 cm\)$",
        ),
        (D("250.01"), 70, ValueError, r"height_cm 250\.01 cm is implausible"),
        (0, 70, ValueError, "^height_cm must be a positive number, got 0 cm$"),
        (-170, 70, ValueError, "height_cm must be a positive number, got -170 cm"),
        (D("NaN"), 70, ValueError, "height_cm must be a positive number"),
        (D("Infinity"), 70, ValueError, "height_cm must be a positive number"),
        (170.0, 70, TypeError, r"height_cm must be a Decimal or an int, got float \(convert"),
        ("170", 70, TypeError, "height_cm must be a Decimal or an int, got str"),
        (True, 70, TypeError, "height_cm must be a Decimal or an int, got bool"),
        (
            170,
            D("24.99"),
            ValueError,
            r"^weight_kg 24\.99 kg is implausible \(accepted 25-300 kg\)$",
        ),
        (170, D("300.01"), ValueError, r"weight_kg 300\.01 kg is implausible"),
        (170, 0, ValueError, "weight_kg must be a positive number, got 0 kg"),
        (170, D("-70"), ValueError, "weight_kg must be a positive number"),
        (170, 70.0, TypeError, "weight_kg must be a Decimal or an int, got float"),
        (170, None, TypeError, "weight_kg must be a Decimal or an int, got NoneType"),
    ],
)
@pytest.mark.parametrize("formula", list(Formula))
def test_implausible_heights_and_weights_are_refused(height, weight, error, message, formula):
    with pytest.raises(error, match=message):
        bsa(height, weight, formula)
    with pytest.raises(error, match=message):
        dose_per_m2(150, height, weight, formula, 10)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"dose_mg_per_m2": 0}, ValueError, "dose_mg_per_m2 must be a positive number, got 0"),
        ({"dose_mg_per_m2": D("-150")}, ValueError, "dose_mg_per_m2 must be a positive number"),
        ({"dose_mg_per_m2": 150.0}, TypeError, "dose_mg_per_m2 must be a Decimal or an int"),
        ({"rounding_mg": 0}, ValueError, "rounding_mg must be a positive number, got 0 mg"),
        ({"rounding_mg": -10}, ValueError, "rounding_mg must be a positive number"),
        ({"rounding_mg": 10.0}, TypeError, "rounding_mg must be a Decimal or an int"),
        ({"cap_bsa_m2": 0}, ValueError, "cap_bsa_m2 must be a positive number, got 0 m2"),
        ({"cap_bsa_m2": D("-2")}, ValueError, "cap_bsa_m2 must be a positive number"),
        ({"cap_bsa_m2": 2.0}, TypeError, "cap_bsa_m2 must be a Decimal or an int"),
        ({"formula": "mosteller"}, TypeError, "formula must be a Formula, got 'mosteller'"),
        ({"dose_from_rounded_bsa": "yes"}, TypeError, "dose_from_rounded_bsa must be a bool"),
    ],
)
def test_bad_dosing_parameters_are_refused(kwargs, error, message):
    arguments = {
        "dose_mg_per_m2": 150,
        "height_cm": 170,
        "weight_kg": 70,
        "formula": MOSTELLER,
        "rounding_mg": 10,
        **kwargs,
    }
    with pytest.raises(error, match=message):
        dose_per_m2(**arguments)


def test_formula_names_its_source():
    assert (MOSTELLER.label, DUBOIS.label) == ("Mosteller", "DuBois")
    assert "N Engl J Med 1987;317:1098" in MOSTELLER.reference
    assert "Arch Intern Med 1916;17:863-871" in DUBOIS.reference


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

heights = st.decimals(min_value=100, max_value=250, places=1)
weights = st.decimals(min_value=25, max_value=300, places=1)
formulas = st.sampled_from(list(Formula))
steps = st.sampled_from([D(1), D(5), D(10), D("0.5"), D(25)])


@given(heights, heights, weights, formulas)
def test_bsa_increases_with_height(h1, h2, weight, formula):
    assume(h1 != h2)
    short, tall = sorted((h1, h2))
    assert bsa_unrounded(short, weight, formula) < bsa_unrounded(tall, weight, formula)
    assert bsa(short, weight, formula) <= bsa(tall, weight, formula)


@given(heights, weights, weights, formulas)
def test_bsa_increases_with_weight(height, w1, w2, formula):
    assume(w1 != w2)
    light, heavy = sorted((w1, w2))
    assert bsa_unrounded(height, light, formula) < bsa_unrounded(height, heavy, formula)
    assert bsa(height, light, formula) <= bsa(height, heavy, formula)


@given(heights, weights)
def test_formulas_agree_with_a_float_computation(height, weight):
    h, w = float(height), float(weight)
    assert math.isclose(bsa_unrounded(height, weight, MOSTELLER), math.sqrt(h * w / 3600))
    assert math.isclose(
        bsa_unrounded(height, weight, DUBOIS), 0.007184 * w**0.425 * h**0.725, rel_tol=1e-12
    )


@given(heights, weights, formulas)
def test_reported_bsa_is_within_half_a_hundredth(height, weight, formula):
    gap = bsa(height, weight, formula) - bsa_unrounded(height, weight, formula)
    assert -D("0.005") < gap <= D("0.005")


@given(st.integers(min_value=1, max_value=1000), heights, weights, formulas, steps, st.booleans())
def test_rounded_dose_is_the_nearest_multiple_of_the_step(
    per_m2, height, weight, formula, step, from_rounded
):
    result = dose_per_m2(per_m2, height, weight, formula, step, dose_from_rounded_bsa=from_rounded)
    assert result.dose_mg % step == 0
    assert -step / 2 < result.dose_mg - result.exact_dose_mg <= step / 2
    assert _close(result.exact_dose_mg, _WIDE.multiply(per_m2, result.dosing_bsa_m2))


@given(heights, heights, weights, formulas, steps)
def test_dose_never_falls_as_the_patient_grows(h1, h2, weight, formula, step):
    short, tall = sorted((h1, h2))
    low = dose_per_m2(150, short, weight, formula, step).dose_mg
    high = dose_per_m2(150, tall, weight, formula, step).dose_mg
    assert low <= high
