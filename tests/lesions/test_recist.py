"""The RECIST 1.1 engine (lesions/recist.py) against RULES.md "RECIST 1.1".

Every rule with its boundaries, worked examples written from the rule texts (Eisenhauer 2009,
sections cited), and properties checked with hypothesis. Days count from the treatment start
(day 0 = 2024-01-01); the baseline scan is day -7.
"""

from __future__ import annotations

import random
import subprocess
import sys
import timeit
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lesions.recist import (
    Assessment,
    BaselineLesion,
    BestResponse,
    Evaluation,
    IssueCode,
    LesionCategory,
    LocalControl,
    Measurement,
    MeasurementState,
    NewLesion,
    NewLesionStatus,
    NonTargetStatus,
    ProgressionCriterion,
    Response,
    best_overall_response,
    evaluate,
    lesion_progression,
    organ_group,
    overall_response,
    sum_of_diameters,
    validate_baseline,
)

ROOT = Path(__file__).resolve().parents[2]
START = date(2024, 1, 1)
BASELINE_DAY = START - timedelta(days=7)
CR, PR, SD, NN, PD, NE = (
    Response.CR,
    Response.PR,
    Response.SD,
    Response.NON_CR_NON_PD,
    Response.PD,
    Response.NE,
)
NO, EQ, YES = NewLesionStatus.NO, NewLesionStatus.EQUIVOCAL, NewLesionStatus.YES
NT_CR, NT_NN, NT_PD, NT_NE = (
    NonTargetStatus.CR,
    NonTargetStatus.NON_CR_NON_PD,
    NonTargetStatus.PD,
    NonTargetStatus.NE,
)
PRESENT, DISAPPEARED, TOO_SMALL, NOT_EVALUABLE, SPLIT, COALESCED = MeasurementState
RANK = {r: i for i, r in enumerate([NE, PD, NN, SD, PR, CR])}


def day(n: int) -> date:
    return START + timedelta(days=n)


def target(lid: str = "T1", mm: str | None = "50", organ: str = "liver", *, node: bool = False):
    size = None if mm is None else Decimal(mm)
    return BaselineLesion(lid, organ, node, LesionCategory.TARGET, size)


def non_target(lid: str = "NT1", organ: str = "bone", *, node: bool = False, mm: str | None = None):
    size = None if mm is None else Decimal(mm)
    return BaselineLesion(lid, organ, node, LesionCategory.NON_TARGET, size)


def m(lid: str, mm: str) -> Measurement:
    return Measurement(lid, PRESENT, Decimal(mm))


def scan(n: int, *measurements: Measurement, nt=None, new=NO, details=()) -> Assessment:
    return Assessment(day(n), measurements, nt, new, details)


def run(lesions, *scans: Assessment, confirm: bool = True, **kwargs) -> Evaluation:
    return evaluate(
        lesions,
        scans,
        treatment_start=START,
        confirmation_required=confirm,
        baseline_day=BASELINE_DAY,
        **kwargs,
    )


def target_series(baseline: str, *values: str, **kwargs) -> list[Response | None]:
    """Target responses of one liver target measured at days 60, 120, 180, ..."""
    scans = [scan(60 * (k + 1), m("T1", value)) for k, value in enumerate(values)]
    return [tp.target for tp in run([target("T1", baseline)], *scans, **kwargs).timepoints]


def codes(issues) -> list[tuple[IssueCode, str | None, bool]]:
    return [(issue.code, issue.lesion_id, issue.is_error) for issue in issues]


def bor(*pairs: tuple[int, Response], confirm: bool = True, **kwargs) -> BestResponse:
    return best_overall_response(
        [(day(n), response) for n, response in pairs],
        treatment_start=START,
        confirmation_required=confirm,
        **kwargs,
    )


# --- baseline (3.1.1, 3.1.2, 4.2) -------------------------------------------------------


def test_a_valid_baseline_has_no_issue():
    lesions = [
        target("T1", "25", "liver"),
        target("T2", "10", "liver"),
        target("T3", "15", "mediastinal", node=True),
        target("T4", "10", "left lung"),
        target("T5", "30", "bone"),
        non_target("NT1", "bone"),
        non_target("NT2", "lymph node", node=True, mm="12"),
    ]
    assert validate_baseline(lesions) == ()


def test_a_sixth_target_is_one_too_many():
    organs = ["liver", "lung", "bone", "adrenal", "spleen", "kidney"]
    lesions = [target(f"T{i}", "20", organ) for i, organ in enumerate(organs, start=1)]
    assert codes(validate_baseline(lesions)) == [(IssueCode.TOO_MANY_TARGETS, "T6", True)]
    assert validate_baseline(lesions[:5]) == ()


def test_a_third_target_in_one_organ_is_refused_and_both_lungs_are_one_organ():
    lesions = [target("T1", "20", "lung"), target("T2", "20", "Left Lung")]
    assert validate_baseline(lesions) == ()
    lesions.append(target("T3", "20", "right  lung"))
    assert codes(validate_baseline(lesions)) == [(IssueCode.TOO_MANY_TARGETS_IN_ORGAN, "T3", True)]


def test_all_lymph_nodes_count_as_one_organ():
    lesions = [
        target("N1", "15", "mediastinal", node=True),
        target("N2", "20", "axillary lymph node", node=True),
        target("N3", "18", "iliac", node=True),
    ]
    assert codes(validate_baseline(lesions)) == [(IssueCode.TOO_MANY_TARGETS_IN_ORGAN, "N3", True)]


def test_other_organs_are_counted_apart_with_names_compared_case_insensitively():
    two_and_two = [
        target("T1"),
        target("T2"),
        target("T3", organ="bone"),
        target("T4", organ="bone"),
    ]
    assert validate_baseline(two_and_two) == ()
    three = [target("T1", organ="Liver"), target("T2", organ="liver "), target("T3", organ="LIVER")]
    assert codes(validate_baseline(three)) == [(IssueCode.TOO_MANY_TARGETS_IN_ORGAN, "T3", True)]


@pytest.mark.parametrize(
    ("organ", "is_node", "group"),
    [
        ("lung", False, "lung"),
        ("Left lung", False, "lung"),
        ("RIGHT LUNG", False, "lung"),
        ("lungs", False, "lung"),
        ("lymph node", False, "lymph nodes"),
        ("Mediastinal lymph-node", False, "lymph nodes"),
        ("mediastinum", True, "lymph nodes"),
        ("  Liver  ", False, "liver"),
        ("soft   tissue", False, "soft tissue"),
        ("left kidney", False, "left kidney"),  # only nodes and lungs are merged (RULES.md)
    ],
)
def test_organ_names_are_grouped_for_the_two_per_organ_rule(organ, is_node, group):
    assert organ_group(organ, is_node=is_node) == group


@pytest.mark.parametrize(("mm", "error"), [("9.9", True), ("10", False), ("10.0", False)])
def test_a_non_nodal_target_needs_a_10_mm_longest_diameter(mm, error):
    expected = [(IssueCode.TARGET_TOO_SMALL, "T1", True)] if error else []
    assert codes(validate_baseline([target("T1", mm)])) == expected


@pytest.mark.parametrize(("mm", "error"), [("14.9", True), ("15", False)])
def test_a_nodal_target_needs_a_15_mm_short_axis(mm, error):
    expected = [(IssueCode.NODAL_TARGET_TOO_SMALL, "N1", True)] if error else []
    assert codes(validate_baseline([target("N1", mm, "lymph node", node=True)])) == expected


def test_a_node_of_10_to_15_mm_is_a_valid_non_target():
    lesions = [
        target("T1"),
        non_target("N1", node=True, mm="10"),
        non_target("N2", node=True, mm="14.9"),
    ]
    assert validate_baseline(lesions) == ()


@pytest.mark.parametrize(("mm", "warned"), [("9.9", True), ("10", False)])
def test_a_recorded_node_below_10_mm_is_a_warning_not_an_error(mm, warned):
    lesions = [target("T1"), non_target("N1", "lymph node", node=True, mm=mm)]
    expected = [(IssueCode.NORMAL_NODE, "N1", False)] if warned else []
    assert codes(validate_baseline(lesions)) == expected
    evaluation = run(lesions, scan(60, m("T1", "50"), nt=NT_NN))
    assert codes(evaluation.warnings) == expected


def test_a_nodal_target_below_10_mm_is_both_too_small_and_normal():
    issues = validate_baseline([target("N1", "8", "lymph node", node=True)])
    assert codes(issues) == [
        (IssueCode.NODAL_TARGET_TOO_SMALL, "N1", True),
        (IssueCode.NORMAL_NODE, "N1", False),
    ]


def test_every_target_needs_a_baseline_measurement():
    issues = validate_baseline([target("T1", None), non_target("NT1")])
    assert codes(issues) == [(IssueCode.MISSING_MEASUREMENT, "T1", True)]


def test_lesion_ids_are_unique_per_patient():
    issues = validate_baseline([target("T1"), non_target("T1")])
    assert codes(issues) == [(IssueCode.DUPLICATE_ID, "T1", True)]


def test_an_empty_baseline_and_a_target_without_organ_are_errors():
    assert codes(validate_baseline([])) == [(IssueCode.NO_LESIONS, None, True)]
    assert codes(validate_baseline([target("T1", organ=" ")])) == [
        (IssueCode.MISSING_ORGAN, "T1", True)
    ]


def test_an_organ_naming_a_node_on_a_lesion_not_flagged_as_node_is_a_warning():
    issues = validate_baseline([target("T1", "20", "lymph node", node=False)])
    assert codes(issues) == [(IssueCode.ORGAN_NODE_MISMATCH, "T1", False)]


def test_every_broken_rule_gets_its_own_issue_naming_the_rule():
    lesions = [
        target("T1", "9", "liver"),
        target("N1", "12", "lymph node", node=True),
        target("T2", None, "lung"),
        target("T3", "20", "bone"),
        target("T4", "20", "bone"),
        target("T5", "20", "bone"),
    ]
    issues = validate_baseline(lesions)
    assert codes(issues) == [
        (IssueCode.TARGET_TOO_SMALL, "T1", True),
        (IssueCode.NODAL_TARGET_TOO_SMALL, "N1", True),
        (IssueCode.MISSING_MEASUREMENT, "T2", True),
        (IssueCode.TOO_MANY_TARGETS, "T5", True),
        (IssueCode.TOO_MANY_TARGETS_IN_ORGAN, "T5", True),
    ]
    sections = ["3.1.1", "3.1.1, 3.1.2", "4.2", "4.2", "4.2"]
    for issue, section in zip(issues, sections, strict=True):
        assert issue.message.startswith(f"{issue.lesion_id}: ")
        assert f"(RECIST 1.1 {section})" in issue.message
    assert "10 mm" in issues[0].message and "15 mm" in issues[1].message
    assert "at most 5" in issues[3].message and "at most 2" in issues[4].message


def test_evaluate_refuses_an_invalid_baseline_listing_each_error():
    lesions = [target("T1", "9"), target("T1", "20", "lung")]
    with pytest.raises(ValueError, match="target_too_small.*duplicate_id"):
        run(lesions)


# --- sum of diameters (4.3.2) -----------------------------------------------------------


def test_the_sum_adds_longest_diameters_and_nodal_short_axes():
    assert sum_of_diameters([m("T1", "32.5"), m("N1", "8.5")]) == Decimal("41.0")


@pytest.mark.parametrize(
    ("measurement", "counts"),
    [
        (Measurement("T1", TOO_SMALL), "5"),
        (m("T1", "4.9"), "4.9"),
        (m("T1", "3"), "3"),
        (Measurement("T1", DISAPPEARED), "0"),
        (Measurement("T1", SPLIT, fragments=(Decimal("12"), Decimal("7.5"))), "19.5"),
    ],
)
def test_each_state_counts_as_the_rules_say(measurement, counts):
    assert sum_of_diameters([measurement, m("T2", "10")]) == Decimal(counts) + 10


def test_coalesced_lesions_count_the_mass_once_and_the_others_0():
    merged = [m("T1", "40"), Measurement("T2", COALESCED, coalesced_into="T1")]
    assert sum_of_diameters(merged) == Decimal("40")


def test_the_coalesced_mass_must_be_measured_at_the_same_scan():
    with pytest.raises(ValueError, match="not measured at this scan"):
        sum_of_diameters([Measurement("T2", COALESCED, coalesced_into="T1")])
    with pytest.raises(ValueError, match="not measured at this scan"):
        sum_of_diameters(
            [Measurement("T1", NOT_EVALUABLE), Measurement("T2", COALESCED, coalesced_into="T1")]
        )


def test_a_sum_needs_every_target_unless_partial_is_allowed():
    items = [m("T1", "20"), Measurement("T2", NOT_EVALUABLE)]
    with pytest.raises(ValueError, match="T2 is not evaluable"):
        sum_of_diameters(items)
    assert sum_of_diameters(items, allow_partial=True) == Decimal("20")


def test_nodes_keep_their_actual_short_axis_below_10_mm():
    lesions = [target("T1", "30"), target("N1", "20", "lymph node", node=True)]
    tp = run(lesions, scan(60, Measurement("T1", DISAPPEARED), m("N1", "8"))).timepoints[0]
    assert tp.sum_mm == Decimal("8") and tp.target is CR


# --- target response (4.3.1, 4.4.2) -----------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("60", PD), ("60.0", PD), ("59.9", SD)])
def test_pd_needs_a_sum_of_at_least_1_2_times_the_nadir(value, expected):
    assert target_series("50", value) == [expected]  # 1.2 x 50 = 60, +10 mm


@pytest.mark.parametrize(("value", "expected"), [("25", PD), ("24.9", SD)])
def test_pd_needs_a_sum_at_least_5_mm_above_the_nadir(value, expected):
    assert target_series("20", value) == [expected]  # 24.9 >= 1.2 x 20 but only +4.9 mm


def test_the_nadir_is_the_smallest_sum_on_study_not_the_baseline():
    assert target_series("50", "30", "36") == [PR, PD]  # 36 = 1.2 x 30, +6 mm
    assert target_series("50", "30", "35.9") == [PR, SD]


def test_with_a_nadir_of_0_any_sum_of_5_mm_is_pd():
    no_rule = {"cr_reappearance_is_pd": False}
    assert target_series("20", "0", "5", **no_rule) == [CR, PD]
    assert target_series("20", "0", "4.9", **no_rule) == [CR, PR]
    too_small = scan(120, Measurement("T1", TOO_SMALL))
    evaluation = run([target("T1", "20")], scan(60, m("T1", "0")), too_small, **no_rule)
    assert [tp.target for tp in evaluation.timepoints] == [CR, PD]


@pytest.mark.parametrize(("node_mm", "expected"), [("9.9", CR), ("10", PR)])
def test_cr_needs_non_nodal_targets_at_0_and_nodes_below_10_mm(node_mm, expected):
    lesions = [target("T1", "30"), target("N1", "20", "lymph node", node=True)]
    tp = run(lesions, scan(60, Measurement("T1", DISAPPEARED), m("N1", node_mm))).timepoints[0]
    assert tp.target is expected and tp.sum_mm == Decimal(node_mm)


def test_a_lesion_too_small_to_measure_is_not_a_complete_response():
    tp = run([target("T1", "30")], scan(60, Measurement("T1", TOO_SMALL))).timepoints[0]
    assert tp.sum_mm == Decimal("5") and tp.target is PR


def test_46_to_32_2_mm_is_exactly_minus_30_percent_and_pr():
    assert (32.2 - 46.0) / 46.0 * 100 != -30  # what binary floats would get wrong
    tp = run([target("T1", "46.0")], scan(60, m("T1", "32.2"))).timepoints[0]
    assert tp.target is PR and tp.change_from_baseline_pct == Decimal("-30.0")
    tp = run([target("T1", "46.0")], scan(60, m("T1", "32.3"))).timepoints[0]
    assert tp.target is SD and tp.change_from_baseline_pct == Decimal("-29.8")


def test_pr_is_measured_from_the_baseline_not_the_nadir():
    # 50 -> 34 (PR) -> 36: no longer <= 35, so SD although only 6 % above the nadir
    assert target_series("50", "34", "36") == [PR, SD]


def test_a_partial_scan_is_pd_when_the_measured_targets_already_meet_pd():
    lesions = [target("T1", "30"), target("T2", "20", "lung")]
    tp = run(lesions, scan(60, m("T1", "60"), Measurement("T2", NOT_EVALUABLE))).timepoints[0]
    assert tp.target is PD and not tp.sum_complete and tp.sum_mm == Decimal("60")
    assert tp.change_from_baseline_pct is None and tp.overall is PD


@pytest.mark.parametrize("value", ["59.9", "5"])
def test_a_partial_scan_below_the_pd_rule_is_ne(value):
    lesions = [target("T1", "30"), target("T2", "20", "lung")]
    tp = run(lesions, scan(60, m("T1", value), Measurement("T2", NOT_EVALUABLE))).timepoints[0]
    assert tp.target is NE and tp.overall is NE


def test_a_target_missing_from_a_scan_counts_as_not_measured():
    lesions = [target("T1", "30"), target("T2", "20", "lung")]
    assert run(lesions, scan(60, m("T1", "20"))).timepoints[0].target is NE


def test_a_partial_sum_never_becomes_the_nadir():
    lesions = [target("T1", "30"), target("T2", "20", "lung")]
    partial = scan(60, m("T1", "10"), Measurement("T2", NOT_EVALUABLE))
    full = scan(120, m("T1", "35"), m("T2", "20"))  # 55: PD if the nadir were 10
    evaluation = run(lesions, partial, full)
    assert [tp.target for tp in evaluation.timepoints] == [NE, SD]
    assert evaluation.timepoints[1].nadir_mm == Decimal("50")


def test_split_and_coalesced_targets_worked_example():
    lesions = [target("T1", "30"), target("T2", "20")]
    split = scan(60, Measurement("T1", SPLIT, fragments=(Decimal(12), Decimal(10))), m("T2", "13"))
    merged = scan(120, Measurement("T1", COALESCED, coalesced_into="T2"), m("T2", "42"))
    evaluation = run(lesions, split, merged)
    assert [tp.sum_mm for tp in evaluation.timepoints] == [Decimal(35), Decimal(42)]
    assert [tp.target for tp in evaluation.timepoints] == [PR, PD]  # 35 = 0.7 x 50; 42 = 1.2 x 35


# --- convention: a target reappearing after a confirmed CR (EORTC Q&A) --------------------


def test_a_target_reappearing_after_a_confirmed_cr_is_pd():
    assert target_series("20", "0", "0", "3") == [CR, CR, PD]
    assert target_series("20", "0", "0", "3", cr_reappearance_is_pd=False) == [CR, CR, PR]


def test_the_reappearance_rule_waits_for_the_cr_to_be_confirmed():
    lesions = [target("T1", "20")]
    unconfirmed = run(
        lesions, scan(60, m("T1", "0")), scan(87, m("T1", "0")), scan(120, m("T1", "3"))
    )
    assert [tp.target for tp in unconfirmed.timepoints] == [CR, CR, PR]  # 27 days apart
    confirmed = run(
        lesions, scan(60, m("T1", "0")), scan(88, m("T1", "0")), scan(120, m("T1", "3"))
    )
    assert [tp.target for tp in confirmed.timepoints] == [CR, CR, PD]


def test_after_a_confirmed_cr_a_node_reappears_at_10_mm():
    lesions = [target("T1", "30"), target("N1", "20", "lymph node", node=True)]
    scans = [
        scan(n, Measurement("T1", DISAPPEARED), m("N1", v))
        for n, v in [(60, "8"), (120, "8"), (180, "9.9"), (240, "10")]
    ]
    assert [tp.target for tp in run(lesions, *scans).timepoints] == [CR, CR, CR, PD]


def test_the_reappearance_rule_needs_an_overall_cr():
    lesions = [target("T1", "20"), non_target("NT1")]
    scans = [scan(n, m("T1", v), nt=NT_NN) for n, v in [(60, "0"), (120, "0"), (180, "3")]]
    evaluation = run(lesions, *scans)
    assert [tp.overall for tp in evaluation.timepoints] == [PR, PR, PR]


# --- overall response (4.4.1 Tables 1 and 2) ------------------------------------------


@pytest.mark.parametrize(
    ("target_response", "non_target_status", "new", "expected"),
    [
        (CR, NT_CR, NO, CR),
        (CR, None, NO, CR),
        (CR, NT_NN, NO, PR),
        (CR, NT_NE, NO, PR),
        (PR, NT_NN, NO, PR),
        (PR, NT_NE, NO, PR),
        (PR, NT_CR, NO, PR),
        (PR, None, NO, PR),
        (SD, NT_NN, NO, SD),
        (SD, NT_NE, NO, SD),
        (SD, None, NO, SD),
        (NE, NT_NN, NO, NE),
        (NE, NT_CR, NO, NE),
        (NE, None, NO, NE),
        (PD, NT_CR, NO, PD),
        (PD, None, NO, PD),
        (CR, NT_PD, NO, PD),
        (NE, NT_PD, NO, PD),
        (CR, NT_CR, YES, PD),
        (NE, NT_NE, YES, PD),
        (SD, None, YES, PD),
        (CR, NT_CR, EQ, CR),  # an equivocal new lesion is not PD at that scan
        (SD, NT_NN, EQ, SD),
    ],
)
def test_table_1_time_point_response_with_targets(
    target_response, non_target_status, new, expected
):
    assert overall_response(target_response, non_target_status, new) is expected


@pytest.mark.parametrize(
    ("non_target_status", "new", "expected"),
    [
        (NT_CR, NO, CR),
        (NT_NN, NO, NN),
        (NT_NE, NO, NE),
        (NT_PD, NO, PD),
        (NT_CR, YES, PD),
        (NT_NN, YES, PD),
        (NT_NE, YES, PD),
        (NT_CR, EQ, CR),
        (NT_NN, EQ, NN),
    ],
)
def test_table_2_time_point_response_with_non_targets_only(non_target_status, new, expected):
    assert overall_response(None, non_target_status, new) is expected


def test_overall_response_refuses_a_time_point_without_lesions_or_a_non_cr_non_pd_target():
    with pytest.raises(ValueError, match="target or non-target"):
        overall_response(None, None, NO)
    with pytest.raises(ValueError, match="not a target response"):
        overall_response(NN, NT_NN, NO)


def test_overall_response_takes_the_stored_string_values():
    assert overall_response("CR", "NON_CR_NON_PD", "NO") is PR


def test_a_patient_with_non_targets_only_follows_table_2():
    lesions = [non_target("NT1"), non_target("NT2", "lymph node", node=True, mm="12")]
    evaluation = run(lesions, scan(60, nt=NT_NN), scan(120, nt=NT_CR), scan(150, nt=NT_CR))
    assert [tp.overall for tp in evaluation.timepoints] == [NN, CR, CR]
    assert evaluation.timepoints[0].target is None and evaluation.timepoints[0].sum_mm is None
    assert evaluation.baseline_sum_mm is None and evaluation.nadir_mm is None
    assert evaluation.best_overall_response is CR and evaluation.confirmation_scan_day == day(150)


def test_the_non_target_status_must_match_the_baseline():
    with pytest.raises(ValueError, match="non-target status missing"):
        run([target("T1"), non_target("NT1")], scan(60, m("T1", "50")))
    with pytest.raises(ValueError, match="no non-target lesion"):
        run([target("T1")], scan(60, m("T1", "50"), nt=NT_NN))


# --- new lesions and the progression date (4.3.5) --------------------------------------


def new_lesion_series(*statuses: NewLesionStatus, values: tuple[str, ...] = ()) -> Evaluation:
    values = values or ("40",) * len(statuses)
    scans = [
        scan(60 * (k + 1), m("T1", v), new=s)
        for k, (s, v) in enumerate(zip(statuses, values, strict=True))
    ]
    return run([target("T1", "50")], *scans)


def test_new_lesions_yes_is_pd():
    evaluation = new_lesion_series(NO, YES)
    assert [tp.overall for tp in evaluation.timepoints] == [SD, PD]
    assert evaluation.progression_date == day(120)


def test_an_equivocal_new_lesion_confirmed_later_dates_progression_from_its_first_scan():
    evaluation = new_lesion_series(EQ, YES)
    assert [tp.overall for tp in evaluation.timepoints] == [SD, PD]  # not PD at the first scan
    assert evaluation.progression_date == day(60)


def test_a_run_of_equivocal_scans_is_back_dated_to_its_first_scan():
    assert new_lesion_series(NO, EQ, EQ, YES).progression_date == day(120)


def test_an_equivocal_finding_that_resolved_is_not_back_dated():
    assert new_lesion_series(EQ, NO, YES).progression_date == day(180)


def test_an_equivocal_new_lesion_never_confirmed_is_no_progression():
    evaluation = new_lesion_series(EQ, EQ)
    assert evaluation.progression_date is None
    assert [tp.overall for tp in evaluation.timepoints] == [SD, SD]


def test_back_dating_can_precede_a_target_progression():
    evaluation = new_lesion_series(EQ, EQ, YES, values=("40", "60", "60"))
    assert [tp.overall for tp in evaluation.timepoints] == [SD, PD, PD]
    assert evaluation.progression_date == day(60)


def test_the_back_dated_scan_is_the_first_pd_for_the_best_response():
    # PR at day 60 would be confirmed by the PR at day 120, but the equivocal lesion seen at
    # day 120 is confirmed at day 180, so day 120 is the progression: PR not confirmed -> SD.
    back_dated = new_lesion_series(NO, EQ, YES, values=("30", "30", "30"))
    assert back_dated.progression_date == day(120)
    assert (back_dated.best_overall_response, back_dated.best_response_scan_day) == (SD, day(60))
    control = new_lesion_series(NO, NO, YES, values=("30", "30", "30"))
    assert (control.best_overall_response, control.confirmation_scan_day) == (PR, day(120))


# --- best overall response (4.4.3, Table 3, 4.6.1) -------------------------------------


def test_no_follow_up_scan_is_ne():
    assert bor() == BestResponse(NE, None, None)
    evaluation = run([target("T1")])
    assert (evaluation.best_overall_response, evaluation.best_response_scan_day) == (NE, None)
    assert evaluation.timepoints == () and evaluation.progression_date is None


@pytest.mark.parametrize(
    ("gap", "expected"),
    [(28, BestResponse(CR, day(60), day(88))), (27, BestResponse(SD, day(60), None))],
)
def test_a_cr_is_confirmed_by_a_cr_at_least_28_days_later(gap, expected):
    assert bor((60, CR), (60 + gap, CR)) == expected


def test_one_ne_between_a_cr_and_its_confirmation_is_allowed_but_not_two():
    assert bor((60, CR), (75, NE), (90, CR)).response is CR
    assert bor((60, CR), (70, NE), (80, NE), (95, CR)).response is SD


def test_a_pr_or_sd_between_breaks_a_cr_confirmation():
    assert bor((60, CR), (75, PR), (110, CR)) == BestResponse(PR, day(75), day(110))
    assert bor((60, CR), (75, SD), (100, CR)) == BestResponse(SD, day(60), None)


@pytest.mark.parametrize(
    ("second", "gap", "expected"), [(PR, 28, PR), (CR, 28, PR), (PR, 27, SD), (CR, 27, SD)]
)
def test_a_pr_is_confirmed_by_a_pr_or_cr_at_least_28_days_later(second, gap, expected):
    assert bor((60, PR), (60 + gap, second)).response is expected


def test_a_pr_confirmation_allows_cr_pr_and_one_ne_between_but_no_sd():
    assert bor((60, PR), (70, CR), (80, NE), (95, PR)) == BestResponse(PR, day(60), day(95))
    assert bor((60, PR), (70, SD), (95, PR)).response is SD
    assert bor((60, PR), (70, NE), (80, NE), (95, PR)).response is SD


def test_without_confirmation_every_cr_and_pr_counts():
    assert bor((20, PR), confirm=False) == BestResponse(PR, day(20), None)
    assert bor((20, CR), (30, PD), confirm=False).response is CR
    assert bor((20, PR), (30, CR), confirm=False) == BestResponse(CR, day(30), None)


@pytest.mark.parametrize(("n", "expected"), [(41, NE), (42, SD)])
def test_sd_counts_only_from_42_days_after_treatment_start(n, expected):
    assert bor((n, SD)).response is expected


@pytest.mark.parametrize(("n", "expected"), [(55, NE), (56, SD)])
def test_the_sd_minimum_is_configurable(n, expected):
    assert bor((n, SD), min_sd_days=56).response is expected


@pytest.mark.parametrize(("n", "expected"), [(41, PD), (42, SD)])
def test_an_unconfirmed_pr_falls_back_to_sd_only_after_the_sd_minimum(n, expected):
    assert bor((n, PR), (n + 20, PD)).response is expected


@pytest.mark.parametrize(("n", "expected"), [(41, NE), (42, NN)])
def test_non_cr_non_pd_counts_only_after_the_sd_minimum(n, expected):
    assert bor((n, NN), has_targets=False).response is expected


def test_an_unconfirmed_cr_without_targets_counts_as_non_cr_non_pd():
    assert bor((60, CR), (70, PD), has_targets=False) == BestResponse(NN, day(60), None)


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (((60, PR), (90, CR), (120, CR)), BestResponse(CR, day(90), day(120))),
        (((60, SD), (90, PR), (120, PR)), BestResponse(PR, day(90), day(120))),
        (((60, SD), (90, PD)), BestResponse(SD, day(60), None)),
        (((30, SD), (35, PD)), BestResponse(PD, day(35), None)),
        (((20, NE), (30, PD)), BestResponse(PD, day(30), None)),
        (((60, NE), (90, NE)), BestResponse(NE, None, None)),
        (((60, SD), (90, SD)), BestResponse(SD, day(60), None)),
    ],
)
def test_the_best_response_is_the_highest_in_order_dated_by_its_first_scan(pairs, expected):
    assert bor(*pairs) == expected


def test_only_scans_up_to_the_first_pd_count():
    assert bor((30, PD), (90, CR), (120, CR)) == BestResponse(PD, day(30), None)
    assert bor((30, PR), (50, PD), (80, PR), (110, PR)).response is PD


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (CR, CR, CR),
        (CR, PR, SD),
        (CR, SD, SD),
        (CR, PD, SD),
        (CR, NE, SD),
        (PR, CR, PR),
        (PR, PR, PR),
        (PR, SD, SD),
        (PR, PD, SD),
        (PR, NE, SD),
        (NE, NE, NE),
    ],
)
def test_table_3_with_the_sd_minimum_met(first, second, expected):
    assert bor((60, first), (95, second)).response is expected


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [(CR, PD, PD), (CR, NE, NE), (PR, PD, PD), (PR, NE, NE)],
)
def test_table_3_otherwise_rows_before_the_sd_minimum(first, second, expected):
    assert bor((20, first), (35, second)).response is expected


def test_best_overall_response_refuses_bad_sequences():
    with pytest.raises(ValueError, match="strictly increasing"):
        bor((60, SD), (60, SD))
    with pytest.raises(ValueError, match="with target lesions"):
        bor((60, NN))
    with pytest.raises(ValueError, match="without target lesions"):
        bor((60, SD), has_targets=False)


def test_a_confirmed_partial_response_worked_example():
    scans = [scan(60, m("T1", "32.2")), scan(90, m("T1", "30.0")), scan(150, m("T1", "37"))]
    evaluation = run([target("T1", "46.0")], *scans)
    assert [tp.overall for tp in evaluation.timepoints] == [PR, PR, PD]  # 37 >= 1.2 x 30
    assert evaluation.best_overall_response is PR
    assert (evaluation.best_response_scan_day, evaluation.confirmation_scan_day) == (
        day(60),
        day(90),
    )
    assert evaluation.progression_date == day(150)
    assert evaluation.best_change_from_baseline_pct == Decimal("-34.8")  # 30/46: -34.78 %
    assert evaluation.nadir_mm == Decimal("30.0") and evaluation.baseline_sum_mm == Decimal("46.0")


def test_without_confirmation_a_single_pr_is_the_best_response():
    evaluation = run([target("T1", "46.0")], scan(30, m("T1", "32.2")), confirm=False)
    assert evaluation.best_overall_response is PR and evaluation.confirmation_scan_day is None
    assert run([target("T1", "46.0")], scan(30, m("T1", "32.2"))).best_overall_response is NE


# --- percentages and nadir ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "pct"), [("40.02", "0.1"), ("39.98", "-0.1"), ("40.01", "0.0"), ("40", "0.0")]
)
def test_percent_changes_round_half_away_from_zero_to_a_tenth(value, pct):
    tp = run([target("T1", "40")], scan(60, m("T1", value))).timepoints[0]
    assert tp.change_from_baseline_pct == Decimal(pct)


def test_change_from_nadir_uses_the_reference_nadir_before_the_scan():
    evaluation = run([target("T1", "50")], scan(60, m("T1", "30")), scan(120, m("T1", "33")))
    first, second = evaluation.timepoints
    assert (first.nadir_mm, first.change_from_nadir_pct) == (Decimal(50), Decimal("-40.0"))
    assert (second.nadir_mm, second.change_from_nadir_pct) == (Decimal(30), Decimal("10.0"))
    assert second.change_from_baseline_pct == Decimal("-34.0")
    assert evaluation.nadir_mm == Decimal(30)


def test_the_best_change_from_baseline_is_the_smallest_over_the_scans_up_to_progression():
    scans = [scan(60, m("T1", "40")), scan(120, m("T1", "36")), scan(180, m("T1", "44"))]
    evaluation = run([target("T1", "40")], *scans)  # 44 >= 1.2 x 36 and +8 mm: PD
    assert evaluation.best_change_from_baseline_pct == Decimal("-10.0")
    assert run([target("T1", "40")], scans[0]).best_change_from_baseline_pct == Decimal("0.0")
    after_pd = [scan(60, m("T1", "60")), scan(120, m("T1", "20"))]  # the 20 mm scan is after PD
    assert run([target("T1", "40")], *after_pd).best_change_from_baseline_pct == Decimal("50.0")
    partial = run([target("T1", "40"), target("T2", "20", "lung")], scan(60, m("T1", "10")))
    assert partial.best_change_from_baseline_pct is None


def test_change_from_a_nadir_of_0_is_not_a_number():
    evaluation = run(
        [target("T1", "20")],
        scan(60, m("T1", "0")),
        scan(120, m("T1", "4")),
        cr_reappearance_is_pd=False,
    )
    assert evaluation.timepoints[1].change_from_nadir_pct is None
    assert evaluation.timepoints[1].change_from_baseline_pct == Decimal("-80.0")


# --- input checks --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [-7, -8])
def test_a_scan_on_or_before_the_baseline_is_refused(n):
    with pytest.raises(ValueError, match="not after the baseline"):
        run([target("T1")], scan(n, m("T1", "50")))


def test_a_measurement_of_an_unknown_lesion_is_refused():
    with pytest.raises(ValueError, match="'T9', which was not recorded at baseline"):
        run([target("T1")], scan(60, m("T1", "50"), m("T9", "20")))


@pytest.mark.parametrize("mm", ["-0.1", "500.1", "NaN", "1.0000001"])
def test_diameters_outside_0_to_500_mm_are_refused(mm):
    with pytest.raises(ValueError, match="diameter_mm"):
        m("T1", mm)
    with pytest.raises(ValueError, match="diameter_mm"):
        target("T1", mm)


def test_500_mm_and_integers_are_accepted_but_floats_are_not():
    assert Measurement("T1", PRESENT, Decimal("500")).diameter_mm == Decimal(500)
    assert Measurement("T1", PRESENT, 12).diameter_mm == Decimal(12)
    with pytest.raises(TypeError, match="not a float"):
        Measurement("T1", PRESENT, 32.2)


def test_two_scans_on_one_day_are_refused_and_any_order_is_accepted():
    with pytest.raises(ValueError, match="two assessments on 2024-03-01"):
        run([target("T1")], scan(60, m("T1", "50")), scan(60, m("T1", "40")))
    shuffled = run([target("T1")], scan(120, m("T1", "40")), scan(60, m("T1", "50")))
    assert [tp.day for tp in shuffled.timepoints] == [day(60), day(120)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"state": PRESENT}, "diameter_mm is given for a PRESENT"),
        ({"state": DISAPPEARED, "diameter_mm": Decimal(0)}, "diameter_mm is given for a PRESENT"),
        ({"state": SPLIT}, "fragments are given for a SPLIT"),
        ({"state": PRESENT, "diameter_mm": Decimal(3), "fragments": (Decimal(1),)}, "fragments"),
        ({"state": COALESCED}, "coalesced_into is given for a COALESCED"),
        ({"state": COALESCED, "coalesced_into": "T1"}, "cannot coalesce into itself"),
        ({"state": "melted"}, "state must be one of"),
    ],
)
def test_inconsistent_measurements_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Measurement("T1", **kwargs)


def test_scans_must_be_consistent_with_the_baseline():
    lesions = [target("T1"), target("T2", "20", "lung"), non_target("NT1")]
    with pytest.raises(ValueError, match="given twice"):
        scan(60, m("T1", "50"), m("T1", "40"), nt=NT_NN)
    with pytest.raises(ValueError, match="another category"):
        run(
            lesions,
            scan(
                60,
                Measurement("T1", COALESCED, coalesced_into="NT1"),
                m("NT1", "30"),
                m("T2", "20"),
                nt=NT_NN,
            ),
        )
    with pytest.raises(ValueError, match="not measured at this scan"):
        run(lesions, scan(60, Measurement("T1", COALESCED, coalesced_into="T2"), nt=NT_NN))
    with pytest.raises(ValueError, match="reuses baseline id"):
        run(
            lesions,
            scan(60, m("T1", "50"), m("T2", "20"), nt=NT_NN, new=YES, details=(NewLesion("T2"),)),
        )
    with pytest.raises(ValueError, match="new_lesions is NO"):
        scan(60, details=(NewLesion("N1", Decimal(6)),))


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="min_sd_days"):
        run([target("T1")], min_sd_days=-1)
    with pytest.raises(TypeError, match="treatment_start"):
        evaluate([target("T1")], [], treatment_start=START.isoformat(), confirmation_required=True)
    with pytest.raises(TypeError, match="confirmation_required"):
        evaluate([target("T1")], [], treatment_start=START, confirmation_required="yes")


# --- per-lesion progression (STOP-2 convention) ------------------------------------------


def course(lesions, *scans: Assessment, **kwargs) -> LocalControl:
    return lesion_progression(lesions, scans, baseline_day=BASELINE_DAY, **kwargs)


@pytest.mark.parametrize(("value", "progressed"), [("19", True), ("18.9", False)])
def test_a_lesion_progresses_5_mm_and_20_percent_above_its_own_nadir(value, progressed):
    # 20 -> 14 (its nadir) -> value: 1.2 x 14 = 16.8 is met; 14 + 5 = 19 is the binding bound
    result = course([target("T1", "20")], scan(60, m("T1", "14")), scan(120, m("T1", value)))
    lesion = result.lesions[0]
    assert lesion.nadir_mm == Decimal(14)
    assert lesion.progression_day == (day(120) if progressed else None)
    assert lesion.criterion == (ProgressionCriterion.RELATIVE if progressed else None)


@pytest.mark.parametrize(("value", "progressed"), [("48", True), ("47.9", False)])
def test_the_per_lesion_20_percent_bound_is_inclusive(value, progressed):
    result = course([target("T1", "50")], scan(60, m("T1", "40")), scan(120, m("T1", value)))
    assert (result.lesions[0].progression_day is not None) is progressed


def test_a_lesion_that_disappeared_progresses_when_back_at_5_mm():
    scans = [
        scan(60, m("T1", "0")),
        scan(120, m("T1", "4.9")),
        scan(180, Measurement("T1", TOO_SMALL)),
    ]
    lesion = course([target("T1", "20")], *scans).lesions[0]
    assert (lesion.nadir_mm, lesion.progression_day) == (Decimal(0), day(180))


def dated(when: date, value: str) -> Assessment:
    return Assessment(when, (m("T1", value),), None, NO)


@pytest.mark.parametrize(
    ("second_day", "second_value", "progressed"),
    [
        (date(2024, 5, 1), "35", True),  # 2 months after 1 March, 5 mm above baseline
        (date(2024, 6, 1), "35", True),  # 3 months
        (date(2024, 4, 30), "35", False),  # 1 day short of 2 months
        (date(2024, 6, 2), "35", False),  # 1 day past 3 months
        (date(2024, 5, 1), "34.9", False),  # 4.9 mm above baseline
    ],
)
def test_progressive_enlargement_on_2_scans_2_to_3_months_apart(
    second_day, second_value, progressed
):
    # 30 -> 31 (grew) -> 35 (grew again, +5 over baseline, below 1.2 x 30 = 36)
    scans = [dated(date(2024, 3, 1), "31"), dated(second_day, second_value)]
    lesion = course([target("T1", "30")], *scans).lesions[0]
    assert lesion.progression_day == (second_day if progressed else None)
    assert lesion.criterion == (ProgressionCriterion.ENLARGEMENT if progressed else None)


def test_enlargement_needs_growth_at_both_scans():
    scans = [dated(date(2024, 3, 1), "30"), dated(date(2024, 5, 1), "35.5")]
    assert course([target("T1", "30")], *scans).lesions[0].progression_day is None


def test_a_new_lesion_counts_for_local_control_from_5_mm():
    scans = [
        scan(60, m("T1", "20"), new=YES, details=(NewLesion("N1", Decimal("4.9")),)),
        scan(90, m("T1", "20"), new=EQ, details=(NewLesion("N2", Decimal(8)),)),
        scan(120, m("T1", "20"), new=YES, details=(NewLesion("N1", Decimal(5)),)),
    ]
    result = course([target("T1", "20")], *scans, treated=["T1"])
    assert result.new_lesion_day == day(120)
    assert (result.in_field_progression_day, result.out_of_field_progression_day) == (
        None,
        day(120),
    )


def test_a_new_lesion_without_a_size_cannot_be_decided():
    with pytest.raises(ValueError, match="without the size"):
        course([target("T1")], scan(60, m("T1", "50"), new=YES))
    unknown_and_small = (NewLesion("N1", Decimal(3)), NewLesion("N2"))
    with pytest.raises(ValueError, match="without the size"):
        course([target("T1")], scan(60, m("T1", "50"), new=YES, details=unknown_and_small))
    decided = (NewLesion("N1", Decimal(7)), NewLesion("N2"))
    assert course(
        [target("T1")], scan(60, m("T1", "50"), new=YES, details=decided)
    ).new_lesion_day == day(60)


def test_in_field_and_out_of_field_progression_are_told_apart():
    lesions = [target("T1", "20"), target("T2", "20", "lung"), non_target("NT1", mm="30")]
    scans = [
        scan(60, m("T1", "14"), m("T2", "20"), m("NT1", "30"), nt=NT_NN),
        scan(120, m("T1", "19"), m("T2", "20"), m("NT1", "36"), nt=NT_NN),
        scan(180, m("T1", "19"), m("T2", "25"), m("NT1", "36"), nt=NT_NN),
    ]
    result = course(lesions, *scans, treated={"T1", "NT1"})
    by_id = {lesion.lesion_id: lesion for lesion in result.lesions}
    assert [by_id[i].progression_day for i in ("T1", "T2", "NT1")] == [day(120), day(180), day(120)]
    assert [by_id[i].treated for i in ("T1", "T2", "NT1")] == [True, False, True]
    assert (result.in_field_progression_day, result.out_of_field_progression_day) == (
        day(120),
        day(180),
    )
    assert result.new_lesion_day is None


def test_coalesced_and_not_evaluable_values_are_skipped_per_lesion():
    lesions = [target("T1", "20"), target("T2", "20")]
    scans = [
        scan(60, Measurement("T1", NOT_EVALUABLE), m("T2", "20")),
        scan(120, Measurement("T1", COALESCED, coalesced_into="T2"), m("T2", "45")),
    ]
    first, second = course(lesions, *scans).lesions
    assert (first.nadir_mm, first.progression_day) == (Decimal(20), None)
    assert second.progression_day == day(120)


def test_treated_lesions_must_be_recorded_at_baseline():
    with pytest.raises(ValueError, match="T9"):
        course([target("T1")], treated=["T9"])
    with pytest.raises(TypeError, match="not a str"):
        course([target("T1")], treated="T1")


# --- properties ----------------------------------------------------------------------------

TENTHS = st.integers(0, 1500).map(lambda tenths: Decimal(tenths).scaleb(-1))
STATES = st.sampled_from([PRESENT] * 6 + [DISAPPEARED, TOO_SMALL, NOT_EVALUABLE])


@st.composite
def measurements(draw, lesion_id: str) -> Measurement:
    state = draw(STATES)
    return Measurement(lesion_id, state, draw(TENTHS) if state is PRESENT else None)


@st.composite
def patients(draw):
    organs = draw(
        st.lists(
            st.sampled_from(["liver", "lung", "bone", "adrenal", "spleen"]),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    lesions = [
        BaselineLesion(
            f"T{i}",
            organ,
            False,
            LesionCategory.TARGET,
            Decimal(draw(st.integers(100, 800))).scaleb(-1),
        )
        for i, organ in enumerate(organs, start=1)
    ]
    has_non_targets = draw(st.booleans())
    if has_non_targets:
        lesions.append(non_target("NT1"))
    scans, n = [], 0
    for gap in draw(st.lists(st.integers(14, 100), max_size=8)):
        n += gap
        status = (
            draw(st.sampled_from([NT_CR, NT_NN, NT_NN, NT_PD, NT_NE])) if has_non_targets else None
        )
        items = tuple(draw(measurements(lesion.lesion_id)) for lesion in lesions[: len(organs)])
        new = draw(st.sampled_from([NO, NO, NO, EQ, YES]))
        scans.append(scan(n, *items, nt=status, new=new))
    return lesions, scans


PROPERTY = settings(max_examples=150, database=None, deadline=None)


@PROPERTY
@given(patients())
def test_property_pr_only_for_a_sum_at_most_70_percent_of_baseline(patient):
    lesions, scans = patient
    evaluation = run(lesions, *scans)
    for tp in evaluation.timepoints:
        if tp.target is PR:
            assert tp.sum_complete and tp.sum_mm < evaluation.baseline_sum_mm
            assert tp.sum_mm * 10 <= evaluation.baseline_sum_mm * 7


@PROPERTY
@given(patients())
def test_property_the_nadir_never_rises_and_is_the_smallest_complete_sum_so_far(patient):
    lesions, scans = patient
    evaluation = run(lesions, *scans)
    smallest = evaluation.baseline_sum_mm
    for tp, a in zip(evaluation.timepoints, sorted(scans, key=lambda s: s.day), strict=True):
        assert tp.nadir_mm == smallest
        targets = [x for x in a.measurements if x.lesion_id.startswith("T")]
        if all(x.state is not NOT_EVALUABLE for x in targets):
            assert tp.sum_complete and tp.sum_mm == sum_of_diameters(targets)
            smallest = min(smallest, tp.sum_mm)
    assert evaluation.nadir_mm == smallest


@PROPERTY
@given(patients())
def test_property_new_lesions_yes_is_always_overall_pd(patient):
    lesions, scans = patient
    for tp in run(lesions, *scans).timepoints:
        if tp.new_lesions is YES:
            assert tp.overall is PD


@PROPERTY
@given(patients())
def test_property_percent_changes_are_the_sums_rounded_half_up(patient):
    lesions, scans = patient
    evaluation = run(lesions, *scans)
    base = evaluation.baseline_sum_mm
    with localcontext() as ctx:
        ctx.prec = 50
        for tp in evaluation.timepoints:
            if not tp.sum_complete:
                assert tp.change_from_baseline_pct is None
                continue
            exact = (tp.sum_mm - base) * 100 / base
            assert tp.change_from_baseline_pct == exact.quantize(Decimal("0.1"), ROUND_HALF_UP)
            if tp.nadir_mm:
                exact = (tp.sum_mm - tp.nadir_mm) * 100 / tp.nadir_mm
                assert tp.change_from_nadir_pct == exact.quantize(Decimal("0.1"), ROUND_HALF_UP)


@PROPERTY
@given(patients())
def test_property_target_pd_exactly_when_the_sum_meets_the_pd_rule(patient):
    lesions, scans = patient
    evaluation = run(lesions, *scans, cr_reappearance_is_pd=False)
    for tp in evaluation.timepoints:
        meets = tp.sum_mm >= tp.nadir_mm * Decimal("1.2") and tp.sum_mm - tp.nadir_mm >= 5
        assert (tp.target is PD) == meets


@PROPERTY
@given(patients(), st.randoms(use_true_random=False))
def test_property_scan_order_and_later_scans_do_not_change_earlier_results(
    patient, rng: random.Random
):
    lesions, scans = patient
    full = run(lesions, *scans)
    shuffled = list(scans)
    rng.shuffle(shuffled)
    assert run(lesions, *shuffled) == full
    for k in range(len(scans)):
        assert run(lesions, *scans[:k]).timepoints == full.timepoints[:k]


@PROPERTY
@given(patients())
def test_property_best_response_and_progression_are_consistent(patient):
    lesions, scans = patient
    confirmed, unconfirmed = run(lesions, *scans), run(lesions, *scans, confirm=False)
    assert RANK[confirmed.best_overall_response] <= RANK[unconfirmed.best_overall_response]
    best_scan = max((RANK[tp.overall] for tp in confirmed.timepoints), default=RANK[NE])
    assert RANK[confirmed.best_overall_response] <= max(best_scan, RANK[SD])
    first_pd = next((tp.day for tp in confirmed.timepoints if tp.overall is PD), None)
    assert (confirmed.progression_date is None) == (first_pd is None)
    if first_pd is not None:
        assert confirmed.progression_date <= first_pd


# --- purity and speed -----------------------------------------------------------------------


def test_the_engine_imports_no_django():
    code = (
        "import sys, lesions.recist; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_patient_with_20_scans_evaluates_in_well_under_10_ms():
    organs = ["liver", "liver", "lung", "bone", "adrenal"]
    lesions = [target(f"T{i}", "30", organ) for i, organ in enumerate(organs)] + [non_target()]
    scans = [
        scan(30 * (k + 1), *(m(f"T{i}", str(30 - k % 7)) for i in range(5)), nt=NT_NN)
        for k in range(20)
    ]

    def once() -> Evaluation:
        return run(lesions, *scans)

    assert len(once().timepoints) == 20
    seconds = min(timeit.repeat(once, number=10, repeat=5)) / 10
    assert seconds < 0.010
