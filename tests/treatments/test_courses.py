"""SBRT courses: bad input refused, protocol breaches confirmed and recorded, doses blinded."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from lesions import services as lesion_services
from lesions.services import LesionRow
from patients import services as patient_services
from patients.models import Patient
from studies.roles import Role
from studies.services import randomisation_list_upload
from tests.factories import MembershipFactory, UserFactory
from tests.patients.conftest import make_ready, today
from treatments import services
from treatments.models import ProtocolDeviation, RadiotherapyCourse, SbrtConstraint
from treatments.services import DeviationsToConfirm, FractionRow, PrescriptionRow

pytestmark = pytest.mark.django_db


def _patient(study, by, lesions=(("T1", "30"), ("T2", "20")), arm=None):
    if arm is not None:
        strata = [ss.number for ss in study.study_sites.all()]
        randomisation_list_upload(
            study=study, by=by, rows=[{"stratum": s, "sequence": "1", "arm": arm} for s in strata]
        )
    patient = make_ready(study, by)
    patient_services.patient_enrol(patient=patient, by=by)
    patient.refresh_from_db()
    lesion_services.baseline_record(
        patient=patient,
        by=by,
        scan_date=today() - timedelta(days=40),
        modality="CT",
        rows=[
            LesionRow(
                label,
                "lung" if label == "T1" else "liver",
                False,
                "target",
                D(d),
                status_at_inclusion="progressing",
            )
            for label, d in lesions
        ],
    )
    return patient


def _record(patient, by, rx, fractions, *, start=None, confirmed=False, course=None, reason=""):
    lesions = {le.label: le for le in patient.lesions.all()}
    start = start or today() - timedelta(days=20)
    return services.course_record(
        patient=patient,
        by=by,
        course=course,
        reason=reason,
        confirmed=confirmed,
        data={
            "technique": "truebeam",
            "motion_management": "none",
            "image_guidance": "cbct",
            "planned_start": start,
            "planned_end": None,
        },
        prescriptions=[
            PrescriptionRow(lesions[label], D(total), n, D(dpf)) for label, total, n, dpf in rx
        ],
        fractions=[FractionRow(i + 1, day) for i, day in enumerate(fractions)],
    )


def _weekdays(n, start=None):
    day, days = start or today() - timedelta(days=20), []
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def test_a_compliant_stereosarc_course_is_saved_without_deviation(seeds, investigator):
    patient = _patient(seeds["STEREOSARC"], investigator, arm="B")
    course = _record(
        patient, investigator, [("T1", "45", 3, "15"), ("T2", "35", 5, "7")], _weekdays(5)
    )
    assert course.prescriptions.count() == 2 and course.fraction_log.count() == 5
    assert not ProtocolDeviation.objects.exists()


def test_a_deviating_course_asks_for_confirmation_then_records_the_deviation(seeds, investigator):
    patient = _patient(seeds["STEREOSARC"], investigator, arm="B")
    with pytest.raises(DeviationsToConfirm) as asked:
        _record(patient, investigator, [("T1", "40", 4, "10"), ("T2", "35", 5, "7")], _weekdays(5))
    assert [d.rule for d in asked.value.deviations] == ["fractions"]
    assert not RadiotherapyCourse.objects.exists()
    _record(
        patient,
        investigator,
        [("T1", "40", 4, "10"), ("T2", "35", 5, "7")],
        _weekdays(5),
        confirmed=True,
    )
    assert list(ProtocolDeviation.objects.values_list("rule", flat=True)) == ["fractions"]


@pytest.mark.parametrize(
    ("rx", "message"),
    [
        ([("T1", "35", 5, "7.1")], "difference 0.5 Gy"),
        ([("T1", "34", 1, "34")], "30"),
    ],
)
def test_inconsistent_or_excessive_doses_are_refused(seeds, investigator, rx, message):
    patient = _patient(seeds["STORM-01"], investigator, lesions=(("T1", "30"),))
    with pytest.raises(ValidationError, match=message):
        _record(patient, investigator, rx, _weekdays(1))
    assert not RadiotherapyCourse.objects.exists()


def test_a_fraction_before_the_course_start_is_refused(seeds, investigator):
    patient = _patient(seeds["STORM-01"], investigator, lesions=(("T1", "30"),))
    start = today() - timedelta(days=10)
    with pytest.raises(ValidationError, match="before the course start"):
        _record(
            patient, investigator, [("T1", "35", 5, "7")], [start - timedelta(days=1)], start=start
        )


def test_the_atra_trial_refuses_weekend_fractions(seeds, investigator):
    atra = seeds["ATRA-SBRT"]
    patient = _patient(atra, investigator, lesions=(("T1", "30"),))
    saturday = today() - timedelta(days=(today().weekday() - 5) % 7 or 7)
    with pytest.raises(ValidationError, match="weekdays only"):
        _record(
            patient,
            investigator,
            [("T1", "35", 5, "7")],
            [saturday],
            start=saturday - timedelta(days=7),
        )


def test_an_untreated_progressing_lesion_is_a_storm_deviation(seeds, investigator):
    patient = _patient(seeds["STORM-01"], investigator)
    with pytest.raises(DeviationsToConfirm, match="progressing lesions not treated: T2"):
        _record(patient, investigator, [("T1", "35", 5, "7")], _weekdays(5))


def test_correcting_a_course_needs_a_reason(seeds, investigator):
    patient = _patient(seeds["STORM-01"], investigator, lesions=(("T1", "30"),))
    course = _record(patient, investigator, [("T1", "35", 5, "7")], _weekdays(5))
    with pytest.raises(ValidationError, match="reason"):
        _record(patient, investigator, [("T1", "35", 5, "7")], _weekdays(4), course=course)
    _record(
        patient,
        investigator,
        [("T1", "35", 5, "7")],
        _weekdays(4),
        course=course,
        reason="fraction 5 was entered twice",
    )
    assert course.fraction_log.count() == 4


def test_the_course_page_shows_bed_and_eqd2(seeds, investigator, client):
    patient = _patient(seeds["STORM-01"], investigator, lesions=(("T1", "30"),))
    _record(patient, investigator, [("T1", "35", 5, "7")], _weekdays(5))
    client.force_login(investigator)
    html = client.get(reverse("patient_courses", kwargs={"patient_pk": patient.pk}))
    html = html.content.decode()
    assert "59.50" in html and "49.58" in html and "116.67" in html and "70.00" in html


def _stop2_control(seeds, investigator):
    return _patient(seeds["STOP-2"], investigator, lesions=(("T1", "30"),), arm="CONTROL")


def test_stop2_doses_are_hidden_from_blinded_users(seeds, investigator, client):
    patient = _stop2_control(seeds, investigator)
    planner = UserFactory(username="pla_planner")
    MembershipFactory(
        user=planner,
        study=seeds["STOP-2"],
        study_site=patient.study_site,
        role=Role.PLANNER,
        blinded=False,
    )
    _record(patient, planner, [("T1", "30", 3, "10")], _weekdays(3), confirmed=True)
    assert ProtocolDeviation.objects.get().arm_revealing
    client.force_login(investigator)  # blinded investigator
    html = client.get(reverse("patient_courses", kwargs={"patient_pk": patient.pk}))
    html = html.content.decode()
    assert "3 fraction(s) delivered" in html
    assert "30.00" not in html and "8 Gy" not in html and "Gy/fraction" not in html
    assert "details hidden: blinded" in html
    assert client.get(reverse("course_new", kwargs={"patient_pk": patient.pk})).status_code == 403


def test_the_courses_page_query_count_is_flat(
    seeds, investigator, client, django_assert_max_num_queries
):
    patient = _patient(seeds["STORM-01"], investigator, lesions=(("T1", "30"),))
    client.force_login(investigator)
    url = reverse("patient_courses", kwargs={"patient_pk": patient.pk})
    _record(patient, investigator, [("T1", "35", 5, "7")], _weekdays(5))
    with django_assert_max_num_queries(15) as small:
        assert client.get(url).status_code == 200
    for _ in range(4):
        _record(patient, investigator, [("T1", "35", 5, "7")], _weekdays(5))
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(url).status_code == 200


def test_the_course_form_warns_then_records_a_confirmed_deviation(seeds, investigator, client):
    patient = _patient(seeds["STORM-01"], investigator)
    t1 = patient.lesions.get(label="T1")
    client.force_login(investigator)
    url = reverse("course_new", kwargs={"patient_pk": patient.pk})
    days = _weekdays(5)
    data = {
        "technique": "truebeam",
        "motion_management": "none",
        "image_guidance": "cbct",
        "planned_start": days[0].isoformat(),
        "rx-TOTAL_FORMS": "3",
        "rx-INITIAL_FORMS": "0",
        "rx-MIN_NUM_FORMS": "0",
        "rx-MAX_NUM_FORMS": "10",
        "rx-0-lesion": t1.pk,
        "rx-0-total_dose_gy": "35",
        "rx-0-fractions": "5",
        "rx-0-dose_per_fraction_gy": "7",
        "fx-TOTAL_FORMS": "5",
        "fx-INITIAL_FORMS": "0",
        "fx-MIN_NUM_FORMS": "0",
        "fx-MAX_NUM_FORMS": "40",
    }
    for i, day in enumerate(days):
        data.update(
            {f"fx-{i}-number": i + 1, f"fx-{i}-day": day.isoformat(), f"fx-{i}-status": "delivered"}
        )
    page = client.post(url, data).content.decode()
    assert "This course departs from the protocol" in page and "T2" in page
    assert not RadiotherapyCourse.objects.exists()
    response = client.post(url, {**data, "confirm_deviations": "on"})
    assert response.status_code == 302
    assert ProtocolDeviation.objects.get().rule == "untreated_progressing"


@pytest.mark.parametrize("constraints_row", [True, False], ids=["constraints", "no-constraints"])
@pytest.mark.parametrize("allocation_read", [True, False], ids=["allocation-read", "not-read"])
def test_the_arm_fixed_prescription_is_enforced_however_the_rules_are_read(
    seeds, investigator, django_assert_max_num_queries, constraints_row, allocation_read
):
    """STOP-2 control: 8 Gy in 1 fraction, read with the study's constraints in one query (in
    two for a study without constraints), whether or not the allocation came with the patient."""
    patient = _stop2_control(seeds, investigator)
    if not constraints_row:
        SbrtConstraint.objects.filter(study=seeds["STOP-2"]).delete()
    if allocation_read:
        patient = Patient.objects.select_related("study_site", "allocation").get(pk=patient.pk)
    else:
        patient = Patient.objects.select_related("study_site").get(pk=patient.pk)
    with django_assert_max_num_queries(1 if constraints_row else 2):
        rules = services.study_rules(patient)
    assert rules.arm_prescription == (D(8), 1)
    assert services.study_rules(patient) is rules  # read once per patient object
    lesion = patient.lesions.get()
    deviations = services.course_deviations(
        patient, [PrescriptionRow(lesion, D(30), 3, D(10))], [FractionRow(1, today())]
    )
    assert "arm_prescription" in [d.rule for d in deviations]
    assert not services.course_deviations(
        patient, [PrescriptionRow(lesion, D(8), 1, D(8))], [FractionRow(1, today())]
    )


def test_a_patient_without_a_fixed_arm_dose_has_none(seeds, investigator):
    patient = _patient(seeds["STORM-01"], investigator, lesions=(("T1", "30"),))
    patient = Patient.objects.select_related("study_site").get(pk=patient.pk)
    assert services.study_rules(patient).arm_prescription is None
    assert services.study_rules(patient).all_progressing_lesions_treated  # STORM-01 rule read
