"""Screening, eligibility, consent and enrolment through the services, as the seed trials need."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from patients import services
from patients.models import Allocation, EligibilityAnswer, Patient
from studies.models import EligibilityCriterion
from tests.patients.conftest import (
    answer_all,
    fill_facts,
    make_ready,
    screen,
    site_of,
    today,
)

pytestmark = pytest.mark.django_db


def _criterion(study, kind, number):
    return EligibilityCriterion.objects.get(study=study, kind=kind, number=number)


def test_an_eligible_consented_storm_patient_is_enrolled_with_a_subject_id(seeds, investigator):
    storm = seeds["STORM-01"]
    patient = make_ready(storm, investigator)
    assert patient.screening_outcome == "eligible"
    allocation = services.patient_enrol(patient=patient, by=investigator)
    patient.refresh_from_db()
    assert patient.subject_id == f"STORM01-{site_of(storm).number}-001"
    assert patient.status == "enrolled" and patient.enrolled_on == today()
    assert allocation.part == "single_arm" and allocation.arm.code == "SBRT"
    second = make_ready(storm, investigator, number="S002")
    services.patient_enrol(patient=second, by=investigator)
    second.refresh_from_db()
    assert second.subject_id.endswith("-002")


def test_storm_criteria_are_computed_from_the_entered_data(seeds, investigator):
    storm = seeds["STORM-01"]
    patient = screen(storm, investigator, age_at_consent=17)
    fill_facts(
        patient,
        ecog=3,
        lesions=(("lung", "12"), ("liver", "45"), ("bone", "20"), ("adrenal", "15")),
    )
    outcomes = {
        (c.criterion.kind, c.criterion.number): c.outcome
        for c in services.eligibility_checks(patient)
    }
    assert outcomes[("inclusion", 13)] == "not_met"  # age
    assert outcomes[("inclusion", 10)] == "not_met"  # WHO PS <= 2
    assert outcomes[("inclusion", 6)] == "not_met"  # 4 lesions in 4 organs
    assert outcomes[("inclusion", 9)] == "not_met"  # 45 mm > 4 cm
    assert outcomes[("inclusion", 4)] == "met"  # first line
    assert outcomes[("inclusion", 1)] == ""  # histology: answered, not computed


def test_an_answer_contradicting_the_data_is_refused_and_nothing_is_saved(seeds, investigator):
    storm = seeds["STORM-01"]
    patient = screen(storm, investigator, age_at_consent=17)
    fill_facts(patient)
    age = _criterion(storm, "inclusion", 13)
    with pytest.raises(ValidationError) as caught:
        answer_all(patient, investigator, overrides={age.pk: True})
    assert "age 17" in str(caught.value.message_dict[f"criterion_{age.pk}"])
    assert not EligibilityAnswer.objects.filter(patient=patient).exists()
    patient.refresh_from_db()
    assert patient.screening_outcome == "pending"


def test_an_unsatisfied_criterion_makes_a_screen_failure_that_cannot_be_enrolled(
    seeds, investigator
):
    storm = seeds["STORM-01"]
    patient = screen(storm, investigator)
    fill_facts(patient)
    histology = _criterion(storm, "inclusion", 1)
    answer_all(patient, investigator, overrides={histology.pk: False})
    patient.refresh_from_db()
    assert (patient.status, patient.screening_outcome) == ("screen_failure", "screen_failure")
    services.consent_record(
        patient=patient, consented_on=today(), form_version="v1", by=investigator
    )
    with pytest.raises(ValidationError, match="Only a patient in screening"):
        services.patient_enrol(patient=patient, by=investigator)
    assert not Allocation.objects.filter(patient=patient).exists()


def test_no_enrolment_before_consent(seeds, investigator):
    storm = seeds["STORM-01"]
    patient = screen(storm, investigator)
    fill_facts(patient)
    answer_all(patient, investigator)
    with pytest.raises(ValidationError, match="consent"):
        services.patient_enrol(patient=patient, by=investigator)
    patient.refresh_from_db()
    assert patient.subject_id is None and patient.status == "screening"


def test_a_second_enrolment_is_refused(seeds, investigator):
    patient = make_ready(seeds["STORM-01"], investigator)
    services.patient_enrol(patient=patient, by=investigator)
    with pytest.raises(ValidationError, match="already enrolled"):
        services.patient_enrol(patient=patient, by=investigator)


def test_a_future_consent_date_is_refused(seeds, investigator):
    patient = screen(seeds["STORM-01"], investigator)
    with pytest.raises(ValidationError, match="future"):
        services.consent_record(
            patient=patient,
            consented_on=today() + timedelta(days=1),
            form_version="v1",
            by=investigator,
        )
    assert not patient.consents.exists()


def test_a_screening_number_cannot_be_reused_at_a_site(seeds, investigator):
    screen(seeds["STORM-01"], investigator, number="S010")
    with pytest.raises(ValidationError):
        screen(seeds["STORM-01"], investigator, number="S010")
    assert Patient.objects.filter(screening_number="S010").count() == 1


def test_stop2_needs_19_years(seeds, investigator):
    stop2 = seeds["STOP-2"]
    patient = screen(stop2, investigator, age_at_consent=18)
    fill_facts(patient)
    outcomes = {
        (c.criterion.kind, c.criterion.number): c.outcome
        for c in services.eligibility_checks(patient)
    }
    assert outcomes[("inclusion", 1)] == "not_met"
    assert outcomes[("inclusion", 13)] == "met"  # restaging 20 days ago, within 12 weeks
    assert outcomes[("inclusion", 14)] == "met"  # not of childbearing potential


def test_stereosarc_labs_are_checked_within_15_days(seeds, investigator):
    from tests.patients.conftest import fill_stereosarc_labs

    sarc = seeds["STEREOSARC"]
    patient = screen(sarc, investigator)
    fill_facts(patient, ecog=1)
    fill_stereosarc_labs(patient)
    labs = _criterion(sarc, "inclusion", 7)
    check = next(c for c in services.eligibility_checks(patient) if c.criterion == labs)
    assert check.outcome == "met"
    patient.screening_labs.filter(analyte="platelets").update(value=99000)
    check = next(c for c in services.eligibility_checks(patient) if c.criterion == labs)
    assert check.outcome == "not_met"


def test_status_transitions_are_validated(seeds, investigator):
    patient = screen(seeds["STORM-01"], investigator)
    with pytest.raises(ValidationError, match="cannot go from"):
        services.patient_change_status(
            patient=patient, new_status="follow_up", on=today(), by=investigator, reason="test"
        )
    enrolled = make_ready(seeds["STORM-01"], investigator, number="S020")
    services.patient_enrol(patient=enrolled, by=investigator)
    enrolled.refresh_from_db()
    services.patient_change_status(
        patient=enrolled,
        new_status="on_treatment",
        on=today(),
        by=investigator,
        reason="first fraction",
    )
    with pytest.raises(ValidationError, match="reason for going off study"):
        services.patient_change_status(
            patient=enrolled, new_status="off_study", on=today(), by=investigator, reason="x"
        )
    services.patient_change_status(
        patient=enrolled,
        new_status="off_study",
        on=today(),
        by=investigator,
        reason="x",
        off_study_reason="death",
    )
    enrolled.refresh_from_db()
    assert (enrolled.status, enrolled.off_study_reason) == ("off_study", "death")


def test_withdrawal_of_all_consent_takes_an_enrolled_patient_off_study(seeds, investigator):
    patient = make_ready(seeds["STORM-01"], investigator)
    services.patient_enrol(patient=patient, by=investigator)
    consent = services.active_consent(patient)
    services.consent_withdraw(
        consent=consent, withdrawn_on=today(), scope="all", by=investigator, reason="patient's wish"
    )
    patient.refresh_from_db()
    assert (patient.status, patient.off_study_reason) == ("off_study", "consent_withdrawn")


def test_allocations_cannot_be_changed_or_deleted(seeds, investigator):
    from django.db import DatabaseError, transaction

    patient = make_ready(seeds["STORM-01"], investigator)
    allocation = services.patient_enrol(patient=patient, by=investigator)
    with pytest.raises(DatabaseError), transaction.atomic():
        Allocation.objects.filter(pk=allocation.pk).update(stratum="tampered")
    with pytest.raises(DatabaseError), transaction.atomic():
        Allocation.objects.filter(pk=allocation.pk).delete()
