"""The iRECIST engine (lesions/irecist.py) against RULES.md "iRECIST" (Seymour 2017).

Worked examples written from the rule texts, each rule with its boundary, the iBOR scenarios of
Seymour 2017 Table 3, and properties checked with hypothesis. Days count from the treatment start
(day 0 = 2024-01-01); the baseline scan is day -7.
"""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lesions.irecist import (
    IAssessment,
    IBestResponse,
    ICategory,
    IEvaluation,
    IResponse,
    ITimepointResult,
    IUPDRecord,
    NewLesionFinding,
    Reason,
    best_overall_response,
    evaluate,
)
from lesions.recist import (
    Assessment,
    BaselineLesion,
    IssueCode,
    LesionCategory,
    Measurement,
    MeasurementState,
    NewLesionStatus,
    NonTargetStatus,
    Response,
    TimepointResult,
)

ROOT = Path(__file__).resolve().parents[2]
START = date(2024, 1, 1)
BASELINE_DAY = START - timedelta(days=7)
ICR, IPR, ISD, INN, IUPD, ICPD, INE = IResponse
NO, EQ, YES = NewLesionStatus.NO, NewLesionStatus.EQUIVOCAL, NewLesionStatus.YES
NT_CR, NT_NN, NT_PD, NT_NE = (
    NonTargetStatus.CR,
    NonTargetStatus.NON_CR_NON_PD,
    NonTargetStatus.PD,
    NonTargetStatus.NE,
)
PRESENT, DISAPPEARED, TOO_SMALL, NOT_EVALUABLE = (
    MeasurementState.PRESENT,
    MeasurementState.DISAPPEARED,
    MeasurementState.TOO_SMALL,
    MeasurementState.NOT_EVALUABLE,
)
TARGET, NON_TARGET, NEW_LESION = ICategory
RANK = {r: i for i, r in enumerate([INE, ICPD, IUPD, INN, ISD, IPR, ICR])}
FROM_RECIST = {
    Response.CR: ICR,
    Response.PR: IPR,
    Response.SD: ISD,
    Response.NON_CR_NON_PD: INN,
    Response.NE: INE,
}


def day(n: int) -> date:
    return START + timedelta(days=n)


def target(lid: str = "T1", mm: str = "50", organ: str = "liver") -> BaselineLesion:
    return BaselineLesion(lid, organ, False, LesionCategory.TARGET, Decimal(mm))


def non_target(lid: str = "NT1", organ: str = "bone") -> BaselineLesion:
    return BaselineLesion(lid, organ, False, LesionCategory.NON_TARGET)


def m(lid: str, mm: str) -> Measurement:
    return Measurement(lid, PRESENT, Decimal(mm))


def nlt(lid: str, mm: str | None, organ: str = "lung", *, state=PRESENT, node=False):
    """A new-lesion target measured at a scan (``mm`` for PRESENT only)."""
    size = None if mm is None else Decimal(mm)
    return NewLesionFinding(lid, organ, node, LesionCategory.TARGET, Measurement(lid, state, size))


def nlnt(lid: str, status: NonTargetStatus = NT_NN, organ: str = "bone") -> NewLesionFinding:
    """A new-lesion non-target: CR gone, NON_CR_NON_PD present, PD increased, NE."""
    return NewLesionFinding(lid, organ, False, LesionCategory.NON_TARGET, status=status)


def scan(n: int, *measurements, nt=None, new=(), nt_increase=False, equivocal=False):
    """One scan; RECIST's new-lesion status follows the new lesions listed (YES when present)."""
    present = any(finding.present for finding in new)
    status = YES if present else EQ if equivocal else NO
    return IAssessment(Assessment(day(n), measurements, nt, status), tuple(new), nt_increase)


def run(lesions, *scans: IAssessment, confirm: bool = True, **kwargs) -> IEvaluation:
    return evaluate(
        lesions,
        scans,
        treatment_start=START,
        confirmation_required=confirm,
        baseline_day=BASELINE_DAY,
        **kwargs,
    )


def responses(evaluation: IEvaluation) -> list[IResponse]:
    return [tp.response for tp in evaluation.timepoints]


def series(*values: str, baseline: str = "50", **kwargs) -> IEvaluation:
    """One liver target; ``values`` as ``"day:mm"``."""
    scans = []
    for value in values:
        n, mm = value.split(":")
        scans.append(scan(int(n), m("T1", mm)))
    return run([target("T1", baseline)], *scans, **kwargs)


# A target-triggered iUPD: nadir 40 at day 42, 50 mm at day 84 (>= 1.2 x 40 and +10 mm).
TARGET_IUPD = ("42:40", "84:50")


# --- iUPD: the first RECIST 1.1 progression (RULES.md bullet 1; Seymour 2017 Table 2) ------


def test_the_first_recist_progression_is_iupd_recording_trigger_and_sums():
    result = series(*TARGET_IUPD)
    first, second = result.timepoints
    assert (first.response, second.response) == (ISD, IUPD)
    assert second.recist.overall is Response.PD  # RECIST 1.1 says PD at that very scan
    assert second.reasons == {Reason.TARGET_PD}
    assert second.iupd == IUPDRecord(
        day=day(84),
        triggered_by=frozenset({TARGET}),
        reasons=frozenset({Reason.TARGET_PD}),
        target_sum_mm=Decimal(50),
        new_target_sum_mm=None,
        new_lesions=(),
    )
    assert (result.first_iupd_date, result.icpd_date, result.confirmed_iupd_date) == (
        day(84),
        None,
        None,
    )


def test_an_unequivocal_non_target_progression_is_a_non_target_triggered_iupd():
    result = run(
        [target(), non_target()],
        scan(42, m("T1", "50"), nt=NT_NN),
        scan(84, m("T1", "50"), nt=NT_PD),
    )
    assert responses(result) == [ISD, IUPD]
    assert result.timepoints[1].iupd.triggered_by == {NON_TARGET}


def test_a_new_lesion_is_a_new_lesion_triggered_iupd_recording_the_new_lesions():
    result = run(
        [target("T1", "50")],
        scan(42, m("T1", "40")),
        scan(84, m("T1", "40"), new=[nlt("N1", "12"), nlnt("N2")]),
    )
    record = result.timepoints[1].iupd
    assert result.timepoints[1].response is IUPD
    assert record.triggered_by == {NEW_LESION}
    assert (record.target_sum_mm, record.new_target_sum_mm) == (Decimal(40), Decimal(12))
    assert record.new_lesions == ("N1", "N2")


def test_new_lesions_are_never_added_to_the_target_sum():
    result = run(
        [target("T1", "50")],
        scan(42, m("T1", "40")),
        scan(84, m("T1", "40"), new=[nlt("N1", "30")]),
    )
    tp = result.timepoints[1]
    assert tp.recist.sum_mm == Decimal(40) and tp.recist.target is Response.SD
    assert tp.new_target_sum_mm == Decimal(30)


def test_several_categories_progressing_together_are_all_recorded():
    result = run(
        [target(), non_target()],
        scan(42, m("T1", "40"), nt=NT_NN),
        scan(84, m("T1", "50"), nt=NT_PD, new=[nlnt("N1")]),
    )
    assert result.timepoints[1].iupd.triggered_by == {TARGET, NON_TARGET, NEW_LESION}


def test_an_equivocal_new_lesion_is_not_an_iupd():
    result = run([target()], scan(42, m("T1", "40"), equivocal=True))
    assert responses(result) == [ISD]


# --- iCPD: target-triggered (RULES.md bullet 2) ---------------------------------------------


@pytest.mark.parametrize(("mm", "expected"), [("55.0", ICPD), ("54.9", IUPD)])
def test_a_target_triggered_iupd_is_confirmed_by_5_mm_more_in_the_target_sum(mm, expected):
    result = series(*TARGET_IUPD, f"119:{mm}")
    assert responses(result)[-1] is expected
    if expected is ICPD:
        assert result.timepoints[-1].reasons == {Reason.TARGET_SUM_INCREASE}
    else:
        assert result.timepoints[-1].reasons == {Reason.PERSISTING}


def test_the_target_growth_is_counted_from_the_iupd_scan_not_the_previous_scan():
    result = series(*TARGET_IUPD, "119:53", "150:55")
    assert responses(result) == [ISD, IUPD, IUPD, ICPD]


def test_a_partial_target_sum_already_5_mm_above_confirms():
    lesions = [target("T1", "30"), target("T2", "20", "lung")]
    result = run(
        lesions,
        scan(42, m("T1", "20"), m("T2", "20")),
        scan(84, m("T1", "30"), m("T2", "20")),
        scan(119, m("T1", "55"), Measurement("T2", NOT_EVALUABLE)),
    )
    assert responses(result) == [ISD, IUPD, ICPD]


def test_the_5_mm_are_decimal_exact():
    # 10 + 12.1 -> 10.7 + 16.4 is exactly +5 mm; binary floats make it 4.999999999999996.
    assert 10.7 + 16.4 - (10 + 12.1) < 5
    lesions = [target("T1", "10"), target("T2", "10", "lung")]
    result = run(
        lesions,
        scan(42, m("T1", "5"), m("T2", "5")),
        scan(84, m("T1", "10"), m("T2", "12.1")),
        scan(119, m("T1", "10.7"), m("T2", "16.4")),
    )
    assert responses(result) == [IPR, IUPD, ICPD]


# --- confirmation timing (RULES.md bullet 4) -------------------------------------------------


@pytest.mark.parametrize(
    ("gap", "expected"),
    [(27, IUPD), (28, ICPD), (56, ICPD), (70, ICPD)],
    ids=["27 days: ignored", "28 days: used", "8 weeks", "10 weeks: still counts"],
)
def test_a_scan_less_than_28_days_after_the_iupd_does_not_confirm_it(gap, expected):
    result = series(*TARGET_IUPD, f"{84 + gap}:60")
    assert responses(result)[-1] is expected


def test_a_scan_too_early_stays_iupd_and_the_next_one_confirms():
    result = series(*TARGET_IUPD, "111:60", "126:60")
    assert responses(result) == [ISD, IUPD, IUPD, ICPD]
    assert result.timepoints[2].reasons == {Reason.TOO_EARLY, Reason.TARGET_SUM_INCREASE}
    assert (result.icpd_date, result.confirmed_iupd_date) == (day(126), day(84))


def test_the_confirmation_minimum_is_a_parameter():
    assert responses(series(*TARGET_IUPD, "119:60", icpd_min_days=36))[-1] is IUPD


# --- iCPD: non-target-triggered ----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "increase", "expected", "reason"),
    [
        (NT_PD, True, ICPD, Reason.NON_TARGET_INCREASE),
        (NT_NN, True, ICPD, Reason.NON_TARGET_INCREASE),  # need not be unequivocal
        (NT_PD, False, IUPD, Reason.PERSISTING),
        (NT_NN, False, ISD, Reason.RESET),
    ],
)
def test_a_non_target_triggered_iupd_is_confirmed_by_any_non_target_increase(
    status, increase, expected, reason
):
    result = run(
        [target(), non_target()],
        scan(42, m("T1", "50"), nt=NT_NN),
        scan(84, m("T1", "50"), nt=NT_PD),
        scan(119, m("T1", "50"), nt=status, nt_increase=increase),
    )
    assert responses(result)[-1] is expected
    assert result.timepoints[-1].reasons == {reason}


def test_a_non_target_increase_does_not_confirm_an_iupd_triggered_by_targets_only():
    result = run(
        [target(), non_target()],
        scan(42, m("T1", "40"), nt=NT_NN),
        scan(84, m("T1", "50"), nt=NT_NN),
        scan(119, m("T1", "50"), nt=NT_NN, nt_increase=True),
    )
    assert responses(result) == [ISD, IUPD, IUPD]


# --- iCPD: new-lesion-triggered -------------------------------------------------------------


def new_lesion_course(*later: tuple, **kwargs) -> IEvaluation:
    """T1 40 mm from day 42; new lesions N1 (target, lung, 10 mm) and N2 (non-target, bone) at
    day 84 (the iUPD); ``later``: the new lesions at day 119, 150, ..."""
    scans = [
        scan(42, m("T1", "40")),
        scan(84, m("T1", "40"), new=[nlt("N1", "10"), nlnt("N2")]),
    ]
    for k, new in enumerate(later):
        scans.append(scan(119 + 31 * k, m("T1", "40"), new=new))
    return run([target("T1", "50")], *scans, **kwargs)


@pytest.mark.parametrize(("mm", "expected"), [("15", ICPD), ("14.9", IUPD)])
def test_a_new_lesion_iupd_is_confirmed_by_5_mm_more_in_the_new_lesion_target_sum(mm, expected):
    result = new_lesion_course((nlt("N1", mm), nlnt("N2")))
    assert responses(result)[-1] is expected
    expected_reasons = {Reason.NEW_TARGET_SUM_INCREASE} if expected is ICPD else set()
    assert result.timepoints[-1].reasons - {Reason.NEW_LESIONS_PRESENT} == expected_reasons


def test_a_new_lesion_iupd_is_confirmed_by_an_increase_of_a_new_non_target_lesion():
    result = new_lesion_course((nlt("N1", "10"), nlnt("N2", NT_PD)))
    assert responses(result)[-1] is ICPD
    assert result.timepoints[-1].reasons == {Reason.NEW_NON_TARGET_INCREASE}


def test_a_new_lesion_iupd_is_confirmed_by_another_new_lesion():
    result = new_lesion_course((nlt("N1", "10"), nlnt("N2"), nlnt("N3", organ="brain")))
    assert responses(result)[-1] is ICPD
    assert result.timepoints[-1].reasons == {Reason.NEW_LESION}


def test_unchanged_new_lesions_keep_the_iupd_open():
    result = new_lesion_course((nlt("N1", "10"), nlnt("N2")), (nlt("N1", "12"), nlnt("N2")))
    assert responses(result) == [ISD, IUPD, IUPD, IUPD]
    assert result.timepoints[-1].reasons == {Reason.NEW_LESIONS_PRESENT}


def test_the_new_lesion_target_sum_is_decimal_exact():
    # N1 10 + N2 12.1 -> 10.7 + 16.4: exactly +5 mm.
    result = run(
        [target("T1", "50")],
        scan(42, m("T1", "40")),
        scan(84, m("T1", "40"), new=[nlt("N1", "10"), nlt("N2", "12.1", "spleen")]),
        scan(119, m("T1", "40"), new=[nlt("N1", "10.7"), nlt("N2", "16.4", "spleen")]),
    )
    assert responses(result)[-1] is ICPD


# --- iCPD: a category that had not progressed now meets RECIST 1.1 PD ----------------------


def test_target_iupd_confirmed_by_unequivocal_non_target_progression():
    result = run(
        [target(), non_target()],
        scan(42, m("T1", "40"), nt=NT_NN),
        scan(84, m("T1", "50"), nt=NT_NN),
        scan(119, m("T1", "50"), nt=NT_PD),
    )
    assert responses(result)[-1] is ICPD
    assert result.timepoints[-1].reasons == {Reason.NON_TARGET_PD}


def test_non_target_iupd_confirmed_by_target_pd():
    result = run(
        [target(), non_target()],
        scan(42, m("T1", "40"), nt=NT_NN),
        scan(84, m("T1", "40"), nt=NT_PD),
        scan(119, m("T1", "48"), nt=NT_PD),
    )
    assert responses(result)[-1] is ICPD
    assert result.timepoints[-1].reasons == {Reason.TARGET_PD}


def test_target_iupd_confirmed_by_a_new_lesion():
    lesions = [target("T1", "50")]
    result = run(
        lesions,
        scan(42, m("T1", "40")),
        scan(84, m("T1", "50")),
        scan(119, m("T1", "50"), new=[nlnt("N1")]),
    )
    assert responses(result)[-1] is ICPD
    assert result.timepoints[-1].reasons == {Reason.NEW_LESION}


def test_a_category_that_did_not_trigger_confirms_only_by_meeting_recist_pd():
    # Non-target-triggered iUPD; the target sum grows 40 -> 45 (+5 mm, but < 1.2 x nadir 40).
    result = run(
        [target(), non_target()],
        scan(42, m("T1", "40"), nt=NT_NN),
        scan(84, m("T1", "40"), nt=NT_PD),
        scan(119, m("T1", "45"), nt=NT_NN),
    )
    assert responses(result) == [ISD, IUPD, ISD]


# --- the reset (RULES.md bullet 3) ----------------------------------------------------------


def test_an_isd_after_iupd_resets_the_bar_and_a_new_progression_is_iupd_again():
    result = series(*TARGET_IUPD, "119:45", "150:50", "180:55")
    assert responses(result) == [ISD, IUPD, ISD, IUPD, ICPD]
    assert result.timepoints[2].reasons == {Reason.RESET}
    assert result.timepoints[2].iupd.day == day(84)
    assert (result.first_iupd_date, result.confirmed_iupd_date) == (day(84), day(150))


def test_an_ipr_after_iupd_resets_the_bar():
    # Nadir 30 (PR); 36 is iUPD; 34 <= 0.7 x 50 is iPR; 41 would be +5 mm over the first iUPD
    # but the bar was reset: it is a new iUPD (against the nadir 30), not iCPD.
    result = series("42:30", "84:36", "119:34", "150:41")
    assert responses(result) == [IPR, IUPD, IPR, IUPD]
    assert result.timepoints[-1].iupd.day == day(150)


def test_an_ne_scan_leaves_the_iupd_open():
    result = run(
        [target("T1", "30"), target("T2", "20", "lung")],
        scan(42, m("T1", "20"), m("T2", "20")),
        scan(84, m("T1", "30"), m("T2", "20")),
        scan(119, m("T1", "20"), Measurement("T2", NOT_EVALUABLE)),
        scan(150, m("T1", "35"), m("T2", "20")),
    )
    assert responses(result) == [ISD, IUPD, INE, ICPD]
    assert result.timepoints[2].iupd.day == day(84)


def test_scans_after_icpd_stay_icpd():
    result = series(*TARGET_IUPD, "119:60", "150:20")
    assert responses(result) == [ISD, IUPD, ICPD, ICPD]
    assert result.timepoints[-1].reasons == {Reason.AFTER_ICPD}


def test_a_non_target_only_patient_goes_through_non_icr_non_iupd():
    result = run(
        [non_target()],
        scan(42, nt=NT_NN),
        scan(84, nt=NT_PD),
        scan(119, nt=NT_NN),
        scan(150, nt=NT_PD),
        scan(180, nt=NT_PD, nt_increase=True),
    )
    assert responses(result) == [INN, IUPD, INN, IUPD, ICPD]
    assert result.best_overall_response is INN


# --- new lesions still present at the reset: the convention, both ways ---------------------


def shrinking_with_new_lesion(n1_at_119: NewLesionFinding, **kwargs) -> IEvaluation:
    return run(
        [target("T1", "50")],
        scan(42, m("T1", "40")),
        scan(84, m("T1", "40"), new=[nlt("N1", "10")]),
        scan(119, m("T1", "30"), new=[n1_at_119]),
        **kwargs,
    )


def test_by_default_new_lesions_still_present_block_the_reset():
    result = shrinking_with_new_lesion(nlt("N1", "10"))
    assert responses(result) == [ISD, IUPD, IUPD]
    assert result.timepoints[-1].reasons == {Reason.NEW_LESIONS_PRESENT}


def test_a_study_may_let_the_reset_stand_with_new_lesions_present():
    result = shrinking_with_new_lesion(nlt("N1", "10"), new_lesions_block_reset=False)
    assert responses(result) == [ISD, IUPD, IPR]
    assert result.timepoints[-1].reasons == {Reason.RESET}


@pytest.mark.parametrize("block", [True, False])
def test_new_lesions_that_disappeared_never_block_the_reset(block):
    gone = nlt("N1", None, state=DISAPPEARED)
    result = shrinking_with_new_lesion(gone, new_lesions_block_reset=block)
    assert responses(result) == [ISD, IUPD, IPR]


def test_after_a_reset_with_new_lesions_they_are_the_reference_for_a_new_iupd():
    scans = [
        scan(42, m("T1", "40")),
        scan(84, m("T1", "40"), new=[nlt("N1", "10")]),
        scan(119, m("T1", "30"), new=[nlt("N1", "10")]),  # reset, N1 accepted
        scan(150, m("T1", "30"), new=[nlt("N1", "14.9")]),
        scan(180, m("T1", "30"), new=[nlt("N1", "15")]),  # +5 mm since the reset: iUPD
        scan(200, m("T1", "30"), new=[nlt("N1", "15"), nlnt("N3", organ="brain")]),
    ]
    result = run([target("T1", "50")], *scans, new_lesions_block_reset=False)
    assert responses(result) == [ISD, IUPD, IPR, IPR, IUPD, IUPD]
    assert result.timepoints[4].reasons == {Reason.NEW_TARGET_SUM_INCREASE}
    assert result.timepoints[5].reasons == {Reason.NEW_LESION, Reason.TOO_EARLY}


def test_with_new_lesions_present_the_targets_complete_response_is_ipr_not_icr():
    scans = [
        scan(42, m("T1", "40")),
        scan(84, m("T1", "40"), new=[nlt("N1", "10")]),
        scan(119, Measurement("T1", DISAPPEARED), new=[nlt("N1", "10")]),
        scan(150, Measurement("T1", DISAPPEARED), new=[nlt("N1", None, state=DISAPPEARED)]),
    ]
    result = run([target("T1", "50")], *scans, new_lesions_block_reset=False)
    assert responses(result) == [ISD, IUPD, IPR, ICR]


def test_a_new_lesion_that_reappears_after_the_reset_is_a_new_iupd():
    scans = [
        scan(42, m("T1", "40")),
        scan(84, m("T1", "40"), new=[nlt("N1", "10")]),
        scan(119, m("T1", "40"), new=[nlt("N1", None, state=DISAPPEARED)]),
        scan(150, m("T1", "40"), new=[nlt("N1", "10")]),
    ]
    assert responses(run([target("T1", "50")], *scans)) == [ISD, IUPD, ISD, IUPD]


# --- iBOR (RULES.md bullet 6; Seymour 2017 Table 3) -----------------------------------------


def timepoint(n: int, response: IResponse, iupd_at: int | None = None, *, targets=True):
    """A time point result as the engine gives it (the RECIST part only says targets or not)."""
    recist = TimepointResult(
        day(n),
        Decimal(50) if targets else None,
        True,
        Decimal(50) if targets else None,
        None,
        None,
        Response.SD if targets else None,
        None if targets else NT_NN,
        NO,
        Response.SD if targets else Response.NON_CR_NON_PD,
    )
    record = None
    if iupd_at is not None:
        record = IUPDRecord(day(iupd_at), frozenset({TARGET}), frozenset(), None, None, ())
    return ITimepointResult(day(n), response, frozenset(), record, None, (), recist)


def ibor(*points: ITimepointResult, confirm: bool = False, **kwargs) -> IBestResponse:
    return best_overall_response(
        points, treatment_start=START, confirmation_required=confirm, **kwargs
    )


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        # Seymour 2017 Table 3 (confirmation not required), examples 1, 3, 5, 6, 7, 8
        ([(60, ICR), (120, ICR), (180, IUPD, 180), (240, ICPD, 180)], ICR),
        ([(60, IUPD, 60), (120, IPR), (180, IUPD, 180)], IPR),
        ([(60, IUPD, 60), (120, ISD), (180, IUPD, 180), (240, ICPD, 180)], ISD),
        ([(60, IUPD, 60), (120, ICPD, 60), (180, ICR)], ICPD),
        ([(60, IUPD, 60), (120, IUPD, 60), (180, ICPD, 60)], ICPD),
        ([(60, IUPD, 60), (120, INE, 60), (180, INE, 60)], IUPD),
        # the order of RULES.md
        ([(60, IPR), (120, ICR)], ICR),
        ([(60, ISD), (120, IPR)], IPR),
        ([(60, IUPD, 60), (120, ISD)], ISD),
        # an iUPD never confirmed ranks above an iCPD (iSD at day 30 is before the SD minimum)
        ([(10, IUPD, 10), (30, ISD), (60, IUPD, 60), (100, ICPD, 60)], IUPD),
        ([(20, INE), (60, IUPD, 60), (100, ICPD, 60)], ICPD),
        ([(20, INE)], INE),
        ([], INE),
    ],
)
def test_the_ibor_follows_the_order_of_the_rules(points, expected):
    assert ibor(*(timepoint(*p) for p in points)).response is expected


def test_an_iupd_later_confirmed_counts_as_icpd_dated_from_the_iupd():
    result = ibor(timepoint(60, IUPD, 60), timepoint(100, ICPD, 60))
    assert result == IBestResponse(ICPD, day(60), day(100))
    unconfirmed = ibor(timepoint(60, IUPD, 60), timepoint(100, IUPD, 60))
    assert unconfirmed == IBestResponse(IUPD, day(60), None)


def test_non_icr_non_iupd_ranks_above_iupd_without_targets():
    points = [timepoint(60, IUPD, 60, targets=False), timepoint(100, INN, targets=False)]
    assert ibor(*points).response is INN


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([(60, IPR), (88, IPR)], IPR),
        ([(60, IPR), (87, IPR)], ISD),  # not confirmed: iSD (>= 42 days)
        ([(60, IPR), (75, INE), (100, IPR)], IPR),  # one NE between
        ([(60, IPR), (75, IUPD, 75), (100, IPR)], ISD),  # an iUPD between breaks it
        ([(60, ICR), (90, ICR)], ICR),
        ([(20, IPR), (30, IUPD, 30)], IUPD),  # unconfirmed iPR before the SD minimum
    ],
)
def test_icr_and_ipr_need_confirmation_as_in_recist_when_required(points, expected):
    assert ibor(*(timepoint(*p) for p in points), confirm=True).response is expected


def test_pseudo_progression_then_confirmed_response_is_ipr_while_recist_says_pd():
    result = series("42:40", "84:50", "119:30", "150:30")
    assert responses(result) == [ISD, IUPD, IPR, IPR]
    assert result.recist.best_overall_response is Response.SD
    assert result.recist.progression_date == day(84)
    assert (result.best_overall_response, result.best_response_scan_day) == (IPR, day(119))
    assert result.confirmation_scan_day == day(150)


def test_a_patient_without_scans_is_ne():
    result = run([target()])
    assert (result.timepoints, result.best_overall_response) == ((), INE)


# --- inputs ---------------------------------------------------------------------------------


def test_recist_new_lesion_status_must_match_the_new_lesions_listed():
    with pytest.raises(ValueError, match="YES exactly when"):
        IAssessment(Assessment(day(42), (m("T1", "50"),), None, YES))
    with pytest.raises(ValueError, match="YES exactly when"):
        IAssessment(Assessment(day(42), (m("T1", "50"),), None, NO), (nlnt("N1"),))
    gone = nlnt("N1", NT_CR)
    assert IAssessment(Assessment(day(42), (m("T1", "50"),), None, NO), (gone,))


def test_a_new_lesion_finding_has_the_fields_of_its_category():
    with pytest.raises(TypeError, match="measurement"):
        NewLesionFinding("N1", "lung", False, LesionCategory.TARGET)
    with pytest.raises(ValueError, match="measurement is of N2"):
        NewLesionFinding("N1", "lung", False, LesionCategory.TARGET, m("N2", "12"))
    with pytest.raises(ValueError, match="status, not a measurement"):
        NewLesionFinding("N1", "lung", False, LesionCategory.NON_TARGET)
    with pytest.raises(ValueError, match="not a status"):
        NewLesionFinding("N1", "lung", False, "target", m("N1", "12"), NT_NN)
    assert nlnt("N1", "PD").increased


@pytest.mark.parametrize(
    ("findings", "code"),
    [
        ([nlt("N1", "9.9")], IssueCode.TARGET_TOO_SMALL),
        ([nlt("N1", "14.9", "lymph nodes", node=True)], IssueCode.NODAL_TARGET_TOO_SMALL),
        ([nlt("N1", None, state=NOT_EVALUABLE)], IssueCode.MISSING_MEASUREMENT),
        ([nlt(f"N{i}", "10") for i in range(3)], IssueCode.TOO_MANY_TARGETS_IN_ORGAN),
        (
            [nlt(f"N{i}", "10", organ) for i, organ in enumerate("abcdef")],
            IssueCode.TOO_MANY_TARGETS,
        ),
    ],
)
def test_new_lesion_targets_follow_the_recist_target_rules(findings, code):
    with pytest.raises(ValueError, match=f"invalid iRECIST new lesions.*{code}"):
        run([target()], scan(42, m("T1", "50"), new=findings))


def test_new_lesion_targets_are_counted_over_all_scans_and_non_targets_are_free():
    scans = [
        scan(42, m("T1", "50"), new=[nlt("N1", "10"), nlnt("X1"), nlnt("X2"), nlnt("X3")]),
        scan(84, m("T1", "50"), new=[nlt("N1", "10"), nlt("N2", "10")]),
        scan(126, m("T1", "50"), new=[nlt("N3", "10")]),
    ]
    with pytest.raises(ValueError, match="too_many_targets_in_organ"):
        run([target()], *scans)
    assert run([target()], *scans[:2]).timepoints[-1].response is ICPD


def test_a_new_lesion_keeps_its_organ_and_category_and_a_new_id():
    with pytest.raises(ValueError, match="changed organ"):
        run(
            [target()],
            scan(42, m("T1", "50"), new=[nlt("N1", "10")]),
            scan(84, m("T1", "50"), new=[nlt("N1", "10", "liver")]),
        )
    with pytest.raises(ValueError, match="reuses baseline id"):
        run([target()], scan(42, m("T1", "50"), new=[nlnt("T1")]))
    with pytest.raises(ValueError, match="given twice"):
        scan(42, m("T1", "50"), new=[nlnt("N1"), nlnt("N1")])


def test_new_lesion_warnings_are_returned_not_raised():
    # A lesion in a node named as such but not flagged as a node: a RECIST warning.
    odd = nlt("N1", "16", "axillary lymph node")
    result = run([target()], scan(42, m("T1", "50"), new=[odd]))
    assert [issue.code for issue in result.new_lesion_warnings] == [IssueCode.ORGAN_NODE_MISMATCH]
    assert run([target()], scan(42, m("T1", "50"), new=[nlt("N1", "16")])).new_lesion_warnings == ()


def test_other_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="without non-target"):
        scan(42, m("T1", "50"), nt_increase=True)
    with pytest.raises(TypeError, match="IAssessment"):
        run([target()], Assessment(day(42), (m("T1", "50"),), None, NO))
    with pytest.raises(TypeError, match="new_lesions_block_reset"):
        run([target()], new_lesions_block_reset=1)
    with pytest.raises(ValueError, match="icpd_min_days"):
        run([target()], icpd_min_days=0)
    with pytest.raises(ValueError, match="two assessments"):  # from the RECIST engine
        run([target()], scan(42, m("T1", "50")), scan(42, m("T1", "50")))


def test_response_values_fit_the_model_fields_and_categories_are_named():
    assert [r.value for r in IResponse] == [
        "iCR",
        "iPR",
        "iSD",
        "NON_iCR_NON_iUPD",
        "iUPD",
        "iCPD",
        "NE",
    ]
    assert max(len(r.value) for r in IResponse) <= 20
    assert Reason.TARGET_SUM_INCREASE.category is TARGET
    assert Reason.RESET.category is None


# --- properties -----------------------------------------------------------------------------

SIZES = st.integers(0, 800).map(lambda tenths: Decimal(tenths).scaleb(-1))
NEW_POOL = (("N1", "lung", True), ("N2", "spleen", True), ("N3", "brain", False))


@st.composite
def target_measurement(draw, lid: str) -> Measurement:
    state = draw(st.sampled_from([PRESENT] * 8 + [DISAPPEARED, NOT_EVALUABLE]))
    return Measurement(lid, state, draw(SIZES) if state is PRESENT else None)


@st.composite
def new_findings(draw, seen: set[str]) -> list[NewLesionFinding]:
    findings = []
    for lid, organ, is_target in NEW_POOL:
        if lid not in seen and draw(st.integers(0, 5)) != 0:
            continue  # not appeared yet
        if lid in seen and draw(st.integers(0, 7)) == 0:
            continue  # not recorded at this scan
        if is_target:
            first = lid not in seen
            states = [PRESENT] if first else [PRESENT] * 5 + [DISAPPEARED, NOT_EVALUABLE]
            state = draw(st.sampled_from(states))
            low = 100 if first else 0
            size = Decimal(draw(st.integers(low, 400))).scaleb(-1) if state is PRESENT else None
            findings.append(nlt(lid, None if size is None else str(size), organ, state=state))
        else:
            status = NT_NN if lid not in seen else draw(st.sampled_from(list(NonTargetStatus)))
            findings.append(nlnt(lid, status, organ))
        seen.add(lid)
    return findings


@st.composite
def patients(draw):
    organs = draw(st.lists(st.sampled_from(["liver", "adrenal", "bone"]), max_size=2, unique=True))
    lesions = [target(f"T{i}", str(draw(st.integers(10, 60))), o) for i, o in enumerate(organs)]
    has_non_targets = not organs or draw(st.booleans())
    if has_non_targets:
        lesions.append(non_target("NT1", "peritoneum"))
    scans, n, seen = [], 0, set()
    for gap in draw(st.lists(st.integers(14, 70), max_size=8)):
        n += gap
        items = [draw(target_measurement(f"T{i}")) for i in range(len(organs))]
        nt = draw(st.sampled_from([NT_CR, NT_NN, NT_NN, NT_PD, NT_NE])) if has_non_targets else None
        increase = has_non_targets and draw(st.booleans())
        new = draw(new_findings(seen))
        scans.append(scan(n, *items, nt=nt, new=new, nt_increase=increase))
    return lesions, scans, draw(st.booleans())


PROPERTY = settings(max_examples=200, database=None, deadline=None)


def run_patient(patient, **kwargs) -> IEvaluation:
    lesions, scans, block = patient
    return run(lesions, *scans, new_lesions_block_reset=block, **kwargs)


@PROPERTY
@given(patients())
def test_property_icpd_never_occurs_without_an_earlier_iupd_at_least_28_days_before(patient):
    result = run_patient(patient)
    for k, tp in enumerate(result.timepoints):
        if tp.response is ICPD:
            earlier = result.timepoints[:k]
            assert any(e.response is IUPD and e.day == tp.iupd.day for e in earlier)
            assert (tp.day - tp.iupd.day).days >= 28
            assert all(later.response is ICPD for later in result.timepoints[k:])


@PROPERTY
@given(patients())
def test_property_irecist_never_reports_icpd_at_the_first_recist_pd(patient):
    result = run_patient(patient)
    first_pd = next((tp for tp in result.timepoints if tp.recist.overall is Response.PD), None)
    if first_pd is None:
        assert result.first_iupd_date is None and result.icpd_date is None
    else:
        assert first_pd.response is IUPD
        assert result.first_iupd_date == first_pd.day


@PROPERTY
@given(patients())
def test_property_every_iupd_starts_at_a_recist_pd_scan(patient):
    for tp in run_patient(patient).timepoints:
        if tp.iupd is not None and tp.iupd.day == tp.day:
            assert tp.response is IUPD and tp.recist.overall is Response.PD
            assert tp.iupd.triggered_by == {r.category for r in tp.reasons}


@PROPERTY
@given(patients())
def test_property_before_any_progression_irecist_is_recist(patient):
    result = run_patient(patient)
    for tp in result.timepoints:
        if tp.recist.overall is Response.PD:
            break
        assert tp.response is FROM_RECIST[tp.recist.overall] and not tp.reasons
    if all(tp.recist.overall is not Response.PD for tp in result.timepoints):
        assert result.best_overall_response is FROM_RECIST[result.recist.best_overall_response]


@PROPERTY
@given(patients())
def test_property_a_reset_needs_no_recist_progression_and_new_lesions_gone_by_default(patient):
    lesions, scans, _ = patient
    for tp in run(lesions, *scans).timepoints:
        if Reason.RESET in tp.reasons:
            assert tp.response in (ICR, IPR, ISD, INN)
            assert tp.recist.target is not Response.PD
            assert tp.recist.non_target is not NT_PD
            assert tp.new_lesions == ()


@PROPERTY
@given(patients())
def test_property_the_ibor_is_never_better_than_the_best_time_point(patient):
    result = run_patient(patient)
    best = max((RANK[tp.response] for tp in result.timepoints), default=RANK[INE])
    assert RANK[result.best_overall_response] <= max(best, RANK[ISD])
    unconfirmed = run_patient(patient, confirm=False)
    assert RANK[result.best_overall_response] <= RANK[unconfirmed.best_overall_response]


@PROPERTY
@given(patients(), st.randoms(use_true_random=False))
def test_property_scan_order_and_later_scans_do_not_change_earlier_results(
    patient, rng: random.Random
):
    lesions, scans, block = patient
    full = run_patient(patient)
    shuffled = list(scans)
    rng.shuffle(shuffled)
    assert run(lesions, *shuffled, new_lesions_block_reset=block) == full
    for k in range(len(scans)):
        prefix = run(lesions, *scans[:k], new_lesions_block_reset=block)
        assert prefix.timepoints == full.timepoints[:k]


# --- purity ---------------------------------------------------------------------------------


def test_the_engine_imports_no_django():
    code = (
        "import sys, lesions.irecist; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
