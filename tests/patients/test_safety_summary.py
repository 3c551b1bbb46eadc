"""Toxicity summaries (pure): worst CTCAE v5.0 grade per patient per term, acute vs late, DLT."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from patients import safety_summary as ss
from patients.safety_summary import Event, PatientInfo

END = date(2025, 3, 14)  # last delivered fraction


def ev(pid, term, grade, days_after_end=10, soc="Respiratory", dlt=False):
    return Event(pid, term, soc, grade, END + timedelta(days=days_after_end), dlt)


def test_worst_grade_per_patient_per_term_counts_patients_not_events():
    events = [
        ev(1, "Pneumonitis", 1),
        ev(1, "Pneumonitis", 3),  # patient 1's worst pneumonitis is grade 3
        ev(1, "Pneumonitis", 2),
        ev(2, "Pneumonitis", 2),
        ev(2, "Cough", 1),
        ev(3, "Cough", 1),
        ev(3, "Cough", 1),  # counted once
    ]
    assert ss.worst_grades(events) == {
        (1, "Pneumonitis"): 3,
        (2, "Pneumonitis"): 2,
        (2, "Cough"): 1,
        (3, "Cough"): 1,
    }
    rows = {row.term: row for row in ss.term_rows(events)}
    assert rows["Pneumonitis"].by_grade == (0, 1, 1, 0, 0)
    assert rows["Pneumonitis"].patients == 2 and rows["Pneumonitis"].grade3_plus == 1
    assert rows["Cough"].by_grade == (2, 0, 0, 0, 0)


def test_rows_are_ordered_by_organ_class_then_term():
    events = [
        ev(1, "Nausea", 1, soc="Gastrointestinal"),
        ev(1, "Cough", 1, soc="Respiratory"),
        ev(1, "Diarrhea", 2, soc="Gastrointestinal"),
    ]
    assert [r.term for r in ss.term_rows(events)] == ["Diarrhea", "Nausea", "Cough"]


@pytest.mark.parametrize("grade", [0, 6, -1])
def test_a_grade_outside_ctcae_is_an_error(grade):
    with pytest.raises(ValueError, match="1 to 5"):
        ss.worst_grades([ev(1, "Cough", grade)])


def test_late_means_more_than_late_after_days_after_the_last_fraction():
    assert ss.phase_of(END + timedelta(days=90), END, 90) == ss.ACUTE  # exactly 90: acute
    assert ss.phase_of(END + timedelta(days=91), END, 90) == ss.LATE
    assert ss.phase_of(END - timedelta(days=5), END, 90) == ss.ACUTE  # during SBRT
    assert ss.phase_of(END + timedelta(days=400), None, 90) == ss.ACUTE  # no fraction delivered
    assert ss.phase_of(END + timedelta(days=31), END, 30) == ss.LATE  # per-study setting


def test_tables_split_acute_and_late_with_the_worst_grade_in_each():
    patients = {1: PatientInfo("", END), 2: PatientInfo("", END), 3: PatientInfo("", END)}
    events = [
        ev(1, "Pneumonitis", 2, days_after_end=30),
        ev(1, "Pneumonitis", 3, days_after_end=200),
        ev(2, "Pneumonitis", 1, days_after_end=90),
        ev(2, "Fibrosis", 2, days_after_end=91),
    ]
    tables = ss.toxicity_tables(events, patients, late_after_days=90, by_group=False)
    by_phase = {t.phase: t for t in tables}
    assert [t.phase for t in tables] == [ss.ANY_TIME, ss.ACUTE, ss.LATE]
    acute = {r.term: r.by_grade for r in by_phase[ss.ACUTE].rows}
    late = {r.term: r.by_grade for r in by_phase[ss.LATE].rows}
    anytime = {r.term: r.by_grade for r in by_phase[ss.ANY_TIME].rows}
    assert acute == {"Pneumonitis": (1, 1, 0, 0, 0)}
    assert late == {"Pneumonitis": (0, 0, 1, 0, 0), "Fibrosis": (0, 1, 0, 0, 0)}
    assert anytime == {"Pneumonitis": (1, 0, 1, 0, 0), "Fibrosis": (0, 1, 0, 0, 0)}
    assert all(t.population == 3 for t in tables)  # patient 3 had no event: still counted
    assert by_phase[ss.ACUTE].patients_with_event == 2
    assert by_phase[ss.LATE].patients_with_event == 2


def test_by_group_splits_arms_and_overall_merges_them():
    patients = {1: PatientInfo("Arm A", END), 2: PatientInfo("Arm B", END), 3: PatientInfo("Arm B")}
    events = [ev(1, "Cough", 2), ev(2, "Cough", 3), ev(3, "Cough", 1), ev(99, "Cough", 5)]
    by_arm = ss.toxicity_tables(events, patients, late_after_days=90, by_group=True)
    anytime = {t.group: t for t in by_arm if t.phase == ss.ANY_TIME}
    assert set(anytime) == {"Arm A", "Arm B"}
    assert anytime["Arm A"].rows[0].by_grade == (0, 1, 0, 0, 0)
    assert anytime["Arm B"].rows[0].by_grade == (1, 0, 1, 0, 0)
    assert (anytime["Arm A"].population, anytime["Arm B"].population) == (1, 2)
    overall = ss.toxicity_tables(events, patients, late_after_days=90, by_group=False)
    assert {t.group for t in overall} == {""}  # never an arm name
    # Patient 99 is outside the population (e.g. another site): ignored.
    assert overall[0].rows[0].by_grade == (1, 1, 1, 0, 0)


def test_dlt_stopping_rule_counts_run_in_patients_with_a_dlt():
    events = [
        ev(1, "Pneumonitis", 3, dlt=True),
        ev(1, "Fatigue", 3, dlt=True),  # the same patient: counted once
        ev(2, "Cough", 2),
        ev(7, "Pneumonitis", 4, dlt=True),  # not a run-in patient
    ]
    status = ss.dlt_status([1, 2, 3], events, run_in_size=6, stop_count=2)
    assert (status.run_in_patients, status.patients_with_dlt) == (3, 1)
    assert not status.stopping_rule_met and status.remaining_before_stop == 1
    events.append(ev(3, "Dermatitis radiation", 3, dlt=True))
    status = ss.dlt_status([1, 2, 3], events, run_in_size=6, stop_count=2)
    assert status.patients_with_dlt == 2 and status.stopping_rule_met
    assert status.remaining_before_stop == 0
    unset = ss.dlt_status([1, 2, 3], events, run_in_size=6, stop_count=None)
    assert not unset.stopping_rule_met and unset.remaining_before_stop is None
