"""Each seed trial's SBRT rules: one compliant and one deviating course each."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path

from treatments.constraints import (
    LesionFact,
    PrescriptionFact,
    Rules,
    check_course,
    overall_days,
    weekend_days,
)

MONDAY = date(2026, 3, 2)
STEREOSARC = Rules(
    allowed_fractions=frozenset({3, 5}), max_overall_days=21, max_cumulated_diameter_mm=D(60)
)
ATRA = Rules(weekdays_only=True, max_overall_days=14, min_treated_diameter_mm=D(15))
STORM = Rules(all_progressing_lesions_treated=True)
STOP2_CONTROL = Rules(all_progressing_lesions_treated=True, arm_prescription=(D(8), 1))


def _days(n: int, step: int = 2) -> list[date]:
    return [MONDAY + timedelta(days=step * i) for i in range(n)]


def _rules_hit(rules, lesions, prescriptions, delivered) -> list[str]:
    return [d.rule for d in check_course(rules, lesions, prescriptions, delivered)]


def test_stereosarc_compliant_and_deviating():
    lesions = [LesionFact("T1", D(30), True, True), LesionFact("T2", D(25), True, True)]
    ok = [PrescriptionFact("T1", D(45), 3), PrescriptionFact("T2", D(35), 5)]
    assert _rules_hit(STEREOSARC, lesions, ok, _days(5)) == []
    bad = [PrescriptionFact("T1", D(40), 4)]
    lesions_big = [LesionFact("T1", D(40), True, True), LesionFact("T2", D(25), True, True)]
    assert _rules_hit(STEREOSARC, lesions_big, bad, _days(5, step=6)) == [
        "fractions",
        "overall_time",
        "cumulated_diameter",
    ]


def test_stereosarc_boundaries_are_inclusive():
    lesions = [LesionFact("T1", D(60), True, True)]
    assert (
        _rules_hit(
            STEREOSARC,
            lesions,
            [PrescriptionFact("T1", D(45), 3)],
            [MONDAY, MONDAY + timedelta(days=20)],
        )
        == []
    )  # 21 days, 60 mm
    assert _rules_hit(
        STEREOSARC,
        lesions,
        [PrescriptionFact("T1", D(45), 3)],
        [MONDAY, MONDAY + timedelta(days=21)],
    ) == ["overall_time"]


def test_atra_every_lesion_over_15_mm_treated_within_2_weeks():
    lesions = [LesionFact("T1", D(22), True, True), LesionFact("T2", D(15), True, False)]
    assert _rules_hit(ATRA, lesions, [PrescriptionFact("T1", D(40), 5)], _days(5, 1)) == []
    lesions[1] = LesionFact("T2", D("15.1"), True, False)
    assert _rules_hit(
        ATRA,
        lesions,
        [PrescriptionFact("T1", D(40), 5)],
        _days(5, 1) + [MONDAY + timedelta(days=14)],
    ) == ["overall_time", "untreated_large"]


def test_storm_every_progressing_lesion_treated():
    lesions = [LesionFact("T1", D(20), True, True), LesionFact("NT1", None, False, False)]
    assert _rules_hit(STORM, lesions, [PrescriptionFact("T1", D(35), 5)], _days(5)) == []
    lesions.append(LesionFact("T2", D(18), True, False))
    deviations = check_course(STORM, lesions, [PrescriptionFact("T1", D(35), 5)], _days(5))
    assert [d.message for d in deviations] == ["progressing lesions not treated: T2"]


def test_stop2_control_arm_prescription_and_its_deviation_reveals_the_arm():
    lesions = [LesionFact("T1", D(20), True, True)]
    assert _rules_hit(STOP2_CONTROL, lesions, [PrescriptionFact("T1", D(8), 1)], _days(1)) == []
    deviations = check_course(STOP2_CONTROL, lesions, [PrescriptionFact("T1", D(30), 3)], _days(3))
    assert [(d.rule, d.arm_revealing) for d in deviations] == [("arm_prescription", True)]


def test_overall_time_and_weekends():
    assert overall_days([]) is None
    assert overall_days([MONDAY]) == 1
    assert overall_days([MONDAY, MONDAY + timedelta(days=4)]) == 5
    saturday = MONDAY + timedelta(days=5)
    assert weekend_days([MONDAY, saturday, saturday + timedelta(days=1)]) == [
        saturday,
        saturday + timedelta(days=1),
    ]


def test_the_module_imports_no_django():
    code = (
        "import sys, treatments.constraints; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2]
    )
