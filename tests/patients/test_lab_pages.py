"""Laboratory results: entry and correction, CTCAE grades at the boundaries, normal ranges,
the patient's page (worst grades per period, lymphocyte chart), the admin, and the ATRA trial's
lymphopenia endpoint by arm, shown to unblinded statisticians and sponsors only."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from scipy.stats import fisher_exact as scipy_fisher

from patients import lab_services
from patients.models import Allocation, Consent
from patients.models_safety import LabResult, NormalRange, SafetyRules
from studies.audit import event_model_for
from studies.roles import Role
from tests.factories import MembershipFactory, PatientFactory, UserFactory
from tests.patients.conftest import site_of, today
from treatments.models import Fraction, RadiotherapyCourse

pytestmark = pytest.mark.django_db

CONSENTED = 300  # days ago


# --- helpers -----------------------------------------------------------------------------------


def _day(n: int):
    """``n`` days ago."""
    return today() - timedelta(days=n)


def _consent(patient, by, days_ago: int = CONSENTED) -> None:
    Consent.objects.create(
        patient=patient, consented_on=_day(days_ago), form_version="v1", obtained_by=by
    )


def _sbrt(patient, first_days_ago: int, fractions: int = 5) -> None:
    """A course with ``fractions`` delivered fractions on consecutive days."""
    course = RadiotherapyCourse.objects.create(
        patient=patient, technique="truebeam", planned_start=_day(first_days_ago)
    )
    for number in range(fractions):
        Fraction.objects.create(course=course, number=number + 1, day=_day(first_days_ago - number))


def _record(patient, by, rows, days_ago: int = 10, **extra):
    return lab_services.lab_record(
        patient=patient,
        by=by,
        sampled_on=_day(days_ago),
        results=[(analyte, D(value), unit) for analyte, value, unit in rows],
        **extra,
    )


def _range(study_site, by, analyte, lln, uln, unit, reason=""):
    return lab_services.normal_range_save(
        study_site=study_site,
        analyte=analyte,
        lln=D(lln) if lln is not None else None,
        uln=D(uln) if uln is not None else None,
        unit=unit,
        by=by,
        reason=reason,
    )


@pytest.fixture
def labs(world):
    """World with consents for patients A and B; site A's laboratory has normal ranges (in
    other units than some of the values, to exercise the LLN conversion)."""
    alice, bob = world.user("alice_pi"), world.user("bob_pi_site_b")
    _consent(world.patient_a, alice)
    _consent(world.patient_b, bob)
    for analyte, lln, uln, unit in (
        ("lymphocytes", "1.0", "4.0", "G/L"),
        ("neutrophils", "1800", "7500", "/mm3"),
        ("platelets", "150", "400", "10^9/L"),
        ("haemoglobin", "12.0", "16.0", "g/dL"),
        ("creatinine", "45", "90", "umol/L"),
    ):
        _range(world.site_a, alice, analyte, lln, uln, unit)
    return world


# --- CTCAE grades through the service ----------------------------------------------------------

BOUNDARIES = [
    # lymphocytes, LLN 1.0 G/L: 800 -> 1, 500 -> 2, 200 -> 3 (milder grade on the bound)
    ("lymphocytes", "1000", "/mm3", 0),
    ("lymphocytes", "999", "/mm3", 1),
    ("lymphocytes", "800", "/mm3", 1),
    ("lymphocytes", "799", "/mm3", 2),
    ("lymphocytes", "500", "/mm3", 2),
    ("lymphocytes", "499", "/mm3", 3),
    ("lymphocytes", "200", "/mm3", 3),
    ("lymphocytes", "199", "/mm3", 4),
    ("lymphocytes", "0.8", "G/L", 1),
    ("lymphocytes", "0.79", "G/L", 2),
    ("lymphocytes", "0.5", "G/L", 2),
    ("lymphocytes", "0.49", "10^9/L", 3),
    ("lymphocytes", "0.2", "G/L", 3),
    ("lymphocytes", "0.19", "10^3/uL", 4),
    # neutrophils, LLN 1800 /mm3
    ("neutrophils", "1500", "/mm3", 1),
    ("neutrophils", "1499", "/mm3", 2),
    ("neutrophils", "1000", "/uL", 2),
    ("neutrophils", "999", "/uL", 3),
    ("neutrophils", "500", "/mm3", 3),
    ("neutrophils", "0.49", "G/L", 4),
    ("neutrophils", "1.8", "G/L", 0),
    # platelets, LLN 150 x 10^9/L
    ("platelets", "75", "10^9/L", 1),
    ("platelets", "74.9", "10^9/L", 2),
    ("platelets", "50", "G/L", 2),
    ("platelets", "49", "G/L", 3),
    ("platelets", "25", "10^9/L", 3),
    ("platelets", "24000", "/mm3", 4),
    # haemoglobin, LLN 12.0 g/dL: graded on the column of the entered unit
    ("haemoglobin", "10.0", "g/dL", 1),
    ("haemoglobin", "9.9", "g/dL", 2),
    ("haemoglobin", "8.0", "g/dL", 2),
    ("haemoglobin", "7.9", "g/dL", 3),
    ("haemoglobin", "100", "g/L", 1),
    ("haemoglobin", "99", "g/L", 2),
    ("haemoglobin", "80", "g/L", 2),
    ("haemoglobin", "79", "g/L", 3),
    ("haemoglobin", "6.2", "mmol/L", 1),
    ("haemoglobin", "6.1", "mmol/L", 2),
    ("haemoglobin", "4.9", "mmol/L", 2),  # 4.9 / 0.6206 = 7.9 g/dL, yet grade 2
    ("haemoglobin", "4.8", "mmol/L", 3),
    ("haemoglobin", "7.5", "mmol/L", 0),  # 12.08 g/dL >= LLN 12.0 g/dL
    ("haemoglobin", "7.4", "mmol/L", 1),  # 11.92 g/dL < LLN 12.0 g/dL
]


@pytest.mark.parametrize(("analyte", "value", "unit", "grade"), BOUNDARIES)
def test_the_service_stores_the_ctcae_grade_at_every_boundary(labs, analyte, value, unit, grade):
    [result] = _record(labs.patient_a, labs.user("alice_pi"), [(analyte, value, unit)])
    result.refresh_from_db()
    assert result.grade == grade, result.grade_rule
    assert result.grade_problem == ""
    assert result.ctcae_term in {
        "Lymphocyte count decreased",
        "Neutrophil count decreased",
        "Platelet count decreased",
        "Anemia",
    }
    assert result.grade_rule.endswith(f"grade {grade}") or "absolute band" in result.grade_rule


def test_a_result_keeps_the_converted_value_and_a_copy_of_the_normal_range(labs):
    [result] = _record(labs.patient_a, labs.user("alice_pi"), [("lymphocytes", "450", "/mm3")])
    result.refresh_from_db()
    assert (result.value_standard, result.standard_unit) == (D("0.45"), "10^9/L")
    assert (result.lln, result.uln, result.range_unit) == (D("1.0"), D("4.0"), "G/L")
    [creatinine] = _record(labs.patient_a, labs.user("alice_pi"), [("creatinine", "1.2", "mg/dL")])
    creatinine.refresh_from_db()
    assert (creatinine.value_standard, creatinine.standard_unit) == (D("106.08"), "umol/L")
    assert creatinine.grade is None and creatinine.grade_problem == ""  # not a graded term


def test_a_missing_normal_range_gives_no_grade_and_the_page_shows_the_problem(labs, login):
    bob = labs.user("bob_pi_site_b")  # site B's laboratory has no normal range yet
    [high] = _record(labs.patient_b, bob, [("lymphocytes", "1200", "/mm3")], days_ago=20)
    [low] = _record(labs.patient_b, bob, [("lymphocytes", "700", "/mm3")], days_ago=10)
    high.refresh_from_db(), low.refresh_from_db()
    assert high.grade is None and high.grade_problem == "normal range missing"
    assert low.grade == 2 and low.grade_problem == ""  # grades 2-4 need no LLN
    page = login(bob).get(reverse("patient_labs", kwargs={"patient_pk": labs.patient_b.pk}))
    html = page.content.decode()
    assert 'data-testid="grade-problems"' in html and 'data-testid="grade-problem"' in html
    assert "normal range (LLN) for this analyte is missing" in html
    # Entering the range re-grades the stored results.
    _range(labs.site_b, bob, "lymphocytes", "1500", "4000", "/mm3")
    high.refresh_from_db(), low.refresh_from_db()
    assert high.grade == 1 and high.grade_problem == ""
    assert (high.lln, high.range_unit) == (D("1500"), "/mm3")
    assert low.grade == 2 and low.lln == D("1500")
    html = login(bob).get(page.wsgi_request.path).content.decode()
    assert 'data-testid="grade-problems"' not in html


def test_changing_a_normal_range_needs_a_reason_and_re_grades_the_sites_results(labs):
    alice = labs.user("alice_pi")
    [result] = _record(labs.patient_a, alice, [("lymphocytes", "900", "/mm3")])
    assert LabResult.objects.get(pk=result.pk).grade == 1  # LLN 1.0 G/L
    with pytest.raises(ValidationError) as refused:
        _range(labs.site_a, alice, "lymphocytes", "0.85", "4.0", "G/L")
    assert "reason" in refused.value.message_dict
    _range(labs.site_a, alice, "lymphocytes", "0.85", "4.0", "G/L", reason="New analyser")
    result.refresh_from_db()
    assert result.grade == 0 and result.lln == D("0.85")
    event = event_model_for(LabResult).objects.filter(pgh_obj_id=result.pk).latest("pgh_id")
    assert event.pgh_context.metadata["reason"] == "New analyser"
    # Removing the range (both limits empty) re-grades too: grade 0 or 1 cannot be told.
    _range(labs.site_a, alice, "lymphocytes", None, None, "", reason="Wrong analyte")
    result.refresh_from_db()
    assert result.grade is None and result.grade_problem == "normal range missing"
    assert not NormalRange.objects.filter(study_site=labs.site_a, analyte="lymphocytes").exists()


@pytest.mark.parametrize(
    ("analyte", "lln", "uln", "unit", "field", "message"),
    [
        ("haemoglobin", "12", "16", "G/L", "unit", "accepted: g/dL, g/L, mmol/L"),
        ("lymphocytes", "1.0", "4.0", "", "unit", "Unknown unit"),
        ("lymphocytes", "0", "4.0", "G/L", "lln", "above 0"),
        ("lymphocytes", "-1", "4.0", "G/L", "lln", "cannot be negative"),
        ("platelets", "400", "150", "G/L", "uln", "below the lower limit"),
        ("lymphocytes", None, None, "G/L", "lln", "lower or the upper limit"),
        ("lymphocytes", "1500", "4000", "G/L", "lln", "not a plausible"),
    ],
)
def test_bad_normal_ranges_are_refused(labs, analyte, lln, uln, unit, field, message):
    with pytest.raises(ValidationError) as refused:
        _range(labs.site_b, labs.user("bob_pi_site_b"), analyte, lln, uln, unit)
    assert message in " ".join(refused.value.message_dict[field])
    assert not NormalRange.objects.filter(study_site=labs.site_b).exists()


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "days_ago", "key", "message"),
    [
        ([("lymphocytes", "800", "/mm3")], CONSENTED + 1, "sampled_on", "before the patient"),
        ([("lymphocytes", "800", "/mm3")], -1, "sampled_on", "in the future"),
        ([("lymphocytes", "-5", "/mm3")], 10, "lymphocytes", "cannot be negative"),
        ([("lymphocytes", "800", "cells")], 10, "lymphocytes", "Unknown unit"),
        (
            [("haemoglobin", "12", "G/L")],
            10,
            "haemoglobin",
            "“G/L” is a unit of Lymphocytes, Neutrophils, Platelets, Leukocytes, not of "
            "Haemoglobin; accepted: g/dL, g/L, mmol/L.",
        ),
        ([("lymphocytes", "1500", "G/L")], 10, "lymphocytes", "not a plausible"),
        ([("haemoglobin", "120", "g/dL")], 10, "haemoglobin", "not a plausible"),
        ([("lymphocytes", "0.0001", "G/L")], 10, "lymphocytes", "3 decimal places"),
        (
            [("lymphocytes", "800", "/mm3"), ("lymphocytes", "900", "/mm3")],
            10,
            "lymphocytes",
            "entered twice",
        ),
        # One bad row refuses the whole sample: the good one is not saved either.
        (
            [("platelets", "150", "G/L"), ("neutrophils", "-1", "G/L")],
            10,
            "neutrophils",
            "cannot be negative",
        ),
        ([], 10, "results", "at least one"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_is_saved(
    labs, rows, days_ago, key, message
):
    with pytest.raises(ValidationError) as refused:
        _record(labs.patient_a, labs.user("alice_pi"), rows, days_ago=days_ago)
    assert message in " ".join(refused.value.message_dict[key])
    assert not LabResult.objects.exists()


def test_a_second_result_for_the_same_analyte_and_date_is_refused(labs):
    alice = labs.user("alice_pi")
    _record(labs.patient_a, alice, [("lymphocytes", "800", "/mm3")])
    with pytest.raises(ValidationError) as refused:
        _record(labs.patient_a, alice, [("lymphocytes", "0.9", "G/L"), ("platelets", "90", "G/L")])
    assert "already recorded for this date" in refused.value.message_dict["lymphocytes"][0]
    assert LabResult.objects.count() == 1


def test_a_patient_not_enrolled_gets_no_laboratory_result(labs):
    screening = PatientFactory(study_site=labs.site_a, status="screening", enrolled_on=None)
    _consent(screening, labs.user("alice_pi"))
    with pytest.raises(ValidationError, match="enrolled patients only"):
        _record(screening, labs.user("alice_pi"), [("lymphocytes", "800", "/mm3")])
    assert not LabResult.objects.exists()


# --- correction and audit ----------------------------------------------------------------------


def test_a_correction_needs_a_reason_and_is_audited_with_it(labs):
    alice = labs.user("alice_pi")
    [result] = _record(labs.patient_a, alice, [("lymphocytes", "450", "/mm3")])
    with pytest.raises(ValidationError) as refused:
        _record(labs.patient_a, alice, [("lymphocytes", "0.85", "G/L")], lab=result)
    assert "reason" in refused.value.message_dict
    result.refresh_from_db()
    assert (result.value, result.unit, result.grade) == (D("450"), "/mm3", 3)
    _record(
        labs.patient_a, alice, [("lymphocytes", "0.85", "G/L")], lab=result, reason="Typing error"
    )
    result.refresh_from_db()
    assert (result.value, result.unit, result.grade, result.value_standard) == (
        D("0.85"),
        "G/L",
        1,
        D("0.85"),
    )
    events = event_model_for(LabResult).objects.filter(pgh_obj_id=result.pk).order_by("pgh_id")
    assert [e.pgh_label for e in events] == ["insert", "update"]
    assert events[0].pgh_context.metadata["reason"] == "Laboratory result"
    assert events[1].pgh_context.metadata["reason"] == "Typing error"
    assert events[1].pgh_context.metadata["user"] == alice.pk
    assert (events[0].grade, events[1].grade) == (3, 1)


def test_correcting_on_the_page_asks_for_a_reason_then_saves(labs, login):
    alice = labs.user("alice_pi")
    [result] = _record(labs.patient_a, alice, [("haemoglobin", "7.9", "g/dL")])
    client = login(alice)
    url = reverse("lab_edit", kwargs={"patient_pk": labs.patient_a.pk, "lab_pk": result.pk})
    assert client.get(url).status_code == 200
    data = {
        "sampled_on": _day(10).isoformat(),
        "analyte": "haemoglobin",
        "value": "9.7",
        "unit": "g/dL",
    }
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Give a reason for changing saved data" in response.content.decode()
    assert LabResult.objects.get(pk=result.pk).value == D("7.9")
    response = client.post(url, {**data, "reason": "Transcription error"})
    assert response.status_code == 302
    result.refresh_from_db()
    assert (result.value, result.grade) == (D("9.7"), 2)
    event = event_model_for(LabResult).objects.filter(pgh_obj_id=result.pk).latest("pgh_id")
    assert event.pgh_context.metadata["reason"] == "Transcription error"
    # A unit of another analyte is refused with the accepted ones listed.
    response = client.post(url, {**data, "unit": "/mm3", "reason": "again"})
    assert "accepted: g/dL, g/L, mmol/L" in response.content.decode()


# --- pages -------------------------------------------------------------------------------------


def test_a_sample_with_several_analytes_is_entered_on_one_page(labs, login):
    client = login(labs.user("alice_pi"))
    url = reverse("lab_new", kwargs={"patient_pk": labs.patient_a.pk})
    page = client.get(url).content.decode()
    assert 'type="date"' in page and 'name="lymphocytes_unit"' in page
    assert '<option value="G/L" selected>' in page  # the site laboratory's unit preselected
    response = client.post(
        url,
        {
            "sampled_on": _day(5).isoformat(),
            "lymphocytes_value": "450",
            "lymphocytes_unit": "/mm3",
            "haemoglobin_value": "6.1",
            "haemoglobin_unit": "mmol/L",
            "platelets_value": "",
            "platelets_unit": "G/L",
        },
    )
    assert response.status_code == 302
    grades = dict(LabResult.objects.values_list("analyte", "grade"))
    assert grades == {"lymphocytes": 3, "haemoglobin": 2}
    html = client.get(response.url).content.decode()
    assert html.count('data-testid="lab-row"') == 2 and "0.45 10^9/L" in html


def test_the_sample_page_shows_service_refusals_on_the_fields(labs, login):
    client = login(labs.user("alice_pi"))
    url = reverse("lab_new", kwargs={"patient_pk": labs.patient_a.pk})
    response = client.post(
        url,
        {
            "sampled_on": _day(5).isoformat(),
            "lymphocytes_value": "-3",
            "lymphocytes_unit": "/mm3",
        },
    )
    assert response.status_code == 200
    assert "A laboratory value cannot be negative." in response.content.decode()
    response = client.post(url, {"sampled_on": _day(5).isoformat()})
    assert "Enter at least one result." in response.content.decode()
    assert not LabResult.objects.exists()


def test_another_sites_patient_is_not_found_and_read_only_roles_cannot_enter(labs, login):
    alice = login(labs.user("alice_pi"))
    [result] = _record(labs.patient_b, labs.user("bob_pi_site_b"), [("platelets", "90", "G/L")])
    other = {"patient_pk": labs.patient_b.pk}
    assert alice.get(reverse("patient_labs", kwargs=other)).status_code == 404
    assert alice.get(reverse("lab_new", kwargs=other)).status_code == 404
    assert alice.get(reverse("lab_edit", kwargs={**other, "lab_pk": result.pk})).status_code == 404
    mine = {"patient_pk": labs.patient_a.pk}
    assert alice.get(reverse("lab_edit", kwargs={**mine, "lab_pk": result.pk})).status_code == 404
    monitor = login(labs.user("carl_monitor"))
    assert monitor.get(reverse("patient_labs", kwargs=other)).status_code == 200
    assert monitor.get(reverse("lab_new", kwargs=other)).status_code == 403
    assert monitor.post(reverse("lab_new", kwargs=other), {}).status_code == 403


def test_worst_grade_per_period_and_the_lymphocyte_chart(labs, login):
    alice = labs.user("alice_pi")
    patient = labs.patient_a
    _sbrt(patient, first_days_ago=60)  # fractions 60..56 days ago
    _record(patient, alice, [("lymphocytes", "1.2", "G/L"), ("haemoglobin", "11", "g/dL")], 70)
    _record(patient, alice, [("lymphocytes", "0.6", "G/L")], days_ago=58)
    _record(patient, alice, [("lymphocytes", "0.15", "G/L")], days_ago=30)
    _record(patient, alice, [("lymphocytes", "0.7", "G/L")], days_ago=14)
    sbrt = lab_services.sbrt_dates([patient.pk])[patient.pk]
    assert sbrt == (_day(60), _day(56))
    worst = {
        row.analyte: (*(c.grade for c in row.by_period), row.overall.grade)
        for row in lab_services.worst_grades(LabResult.objects.filter(patient=patient), sbrt)
    }
    assert worst["lymphocytes"] == (0, 2, 4, 4)
    assert worst["haemoglobin"] == (1, None, None, 1)
    assert worst["platelets"] == (None, None, None, None)
    html = login(alice).get(reverse("patient_labs", kwargs={"patient_pk": patient.pk}))
    html = html.content.decode()
    assert 'data-testid="lymphocyte-chart"' in html and "<svg" in html
    for band in ("Grade 2", "Grade 3", "Grade 4"):
        assert band in html
    assert ">SBRT<" in html  # the SBRT period is shaded and labelled
    assert html.count('data-testid="lab-row"') == 5
    assert "SBRT day 3" in html and "end of SBRT + 42 d (week 6)" in html
    assert "10 d before SBRT" in html


def test_the_patient_page_query_count_is_flat_from_2_to_20_results(
    labs, login, django_assert_max_num_queries
):
    alice = labs.user("alice_pi")
    patient = labs.patient_a
    _sbrt(patient, first_days_ago=80)
    client = login(alice)
    url = reverse("patient_labs", kwargs={"patient_pk": patient.pk})
    _record(patient, alice, [("lymphocytes", "0.9", "G/L"), ("platelets", "40", "G/L")], 90)
    with django_assert_max_num_queries(12) as small:
        assert client.get(url).content.decode().count('data-testid="lab-row"') == 2
    for days_ago in range(1, 10):
        _record(
            patient, alice, [("lymphocytes", "0.5", "G/L"), ("haemoglobin", "9", "g/dL")], days_ago
        )
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(url).content.decode().count('data-testid="lab-row"') == 20


def test_the_normal_ranges_page_is_edited_by_the_site_and_read_by_the_monitor(labs, login):
    alice = labs.user("alice_pi")
    [result] = _record(labs.patient_a, alice, [("neutrophils", "1600", "/mm3")])
    assert LabResult.objects.get(pk=result.pk).grade == 1  # LLN 1800
    client = login(alice)
    url = reverse("normal_ranges", kwargs={"site_pk": labs.site_a.pk})
    html = client.get(url).content.decode()
    assert 'name="neutrophils_lln"' in html and "1800" in html
    data = {
        "lymphocytes_lln": "1.0",
        "lymphocytes_uln": "4.0",
        "lymphocytes_unit": "G/L",
        "neutrophils_lln": "1.5",
        "neutrophils_uln": "7.5",
        "neutrophils_unit": "G/L",
        "platelets_lln": "150",
        "platelets_uln": "400",
        "platelets_unit": "10^9/L",
        "haemoglobin_lln": "12.0",
        "haemoglobin_uln": "16.0",
        "haemoglobin_unit": "g/dL",
        "creatinine_lln": "45",
        "creatinine_uln": "90",
        "creatinine_unit": "umol/L",
        "bilirubin_uln": "17",
        "bilirubin_unit": "umol/L",
    }
    response = client.post(url, data)
    assert response.status_code == 200  # changing saved ranges needs a reason
    assert "Give a reason for changing saved data" in response.content.decode()
    assert not NormalRange.objects.filter(study_site=labs.site_a, analyte="bilirubin").exists()
    response = client.post(url, {**data, "haemoglobin_unit": "G/L", "reason": "New lab"})
    assert "Select a valid choice. G/L is not one of the available choices." in (
        response.content.decode()
    )  # the select offers haemoglobin units only; the service words it for other callers
    assert NormalRange.objects.get(study_site=labs.site_a, analyte="neutrophils").unit == "/mm3"
    response = client.post(url, {**data, "reason": "New laboratory contract"})
    assert response.status_code == 302
    assert NormalRange.objects.get(study_site=labs.site_a, analyte="bilirubin").uln == D("17")
    result.refresh_from_db()
    assert result.grade == 0 and result.range_unit == "G/L"  # 1600 /mm3 >= LLN 1.5 G/L
    monitor = login(labs.user("carl_monitor"))
    html = monitor.get(url).content.decode()
    assert ">1.5<" in html and 'name="neutrophils_lln"' not in html
    assert monitor.post(url, {**data, "reason": "x"}).status_code == 403
    assert (
        login(alice).get(reverse("normal_ranges", kwargs={"site_pk": labs.site_b.pk})).status_code
        == 404
    )


# --- admin -------------------------------------------------------------------------------------


def test_admin_lists_results_read_only_and_ranges_without_per_row_queries(
    labs, login, django_assert_max_num_queries
):
    alice = labs.user("alice_pi")
    client = login(labs.user("sam_sponsor"))
    results_url = reverse("admin:patients_labresult_changelist")
    ranges_url = reverse("admin:patients_normalrange_changelist")
    _record(labs.patient_a, alice, [("lymphocytes", "0.6", "G/L")], days_ago=20)
    with django_assert_max_num_queries(30) as small_results:
        assert client.get(results_url).status_code == 200
    with django_assert_max_num_queries(30) as small_ranges:
        assert client.get(ranges_url).status_code == 200
    for days_ago in range(1, 10):
        _record(labs.patient_a, alice, [("lymphocytes", "0.6", "G/L")], days_ago=days_ago)
    _range(labs.site_b, labs.user("bob_pi_site_b"), "platelets", "150", "400", "G/L")
    _range(labs.site_b, labs.user("bob_pi_site_b"), "lymphocytes", "1", "4", "G/L")
    with django_assert_max_num_queries(len(small_results.captured_queries)):
        html = client.get(results_url).content.decode()
    assert html.count("S1-01-001") >= 10
    with django_assert_max_num_queries(len(small_ranges.captured_queries)):
        assert client.get(ranges_url).status_code == 200
    result = LabResult.objects.first()
    change = reverse("admin:patients_labresult_change", args=[result.pk])
    assert client.post(change, {"value": "5"}).status_code == 403
    assert LabResult.objects.get(pk=result.pk).value == D("0.6")


def test_the_sponsor_edits_a_normal_range_in_the_admin_with_a_reason_and_results_are_regraded(
    labs, login
):
    [result] = _record(labs.patient_a, labs.user("alice_pi"), [("lymphocytes", "0.9", "G/L")])
    assert LabResult.objects.get(pk=result.pk).grade == 1
    normal_range = NormalRange.objects.get(study_site=labs.site_a, analyte="lymphocytes")
    client = login(labs.user("sam_sponsor"))
    url = reverse("admin:patients_normalrange_change", args=[normal_range.pk])
    response = client.post(url, {"lln": "0.9", "uln": "4", "unit": "g/L", "reason": "x"})
    assert "not of Lymphocytes" in response.content.decode()
    response = client.post(url, {"lln": "0.9", "uln": "4", "unit": "G/L"})
    assert "Give a reason" in response.content.decode()
    response = client.post(url, {"lln": "0.9", "uln": "4", "unit": "G/L", "reason": "Audit"})
    assert response.status_code == 302
    result.refresh_from_db()
    assert result.grade == 0 and result.lln == D("0.9")
    # Another study's sponsor does not see it.
    other = UserFactory(username="other_sponsor", is_staff=True)
    MembershipFactory(user=other, study=labs.s2, role=Role.SPONSOR_ADMIN, blinded=False)
    assert login(other).get(url).status_code == 404


# --- the ATRA trial's lymphopenia endpoint ----------------------------------------------------


def _atra_patient(study, by, number: int, arm: str, *, part="randomised", end=100, counts=()):
    """An enrolled ATRA patient whose SBRT ended ``end`` days ago (None: no SBRT), with
    lymphocyte counts (days after the end of SBRT, value in G/L)."""
    patient = PatientFactory(
        study_site=site_of(study), subject_id=f"ATRA-01-{number:03d}", enrolled_on=_day(200)
    )
    _consent(patient, by, days_ago=200)
    Allocation.objects.create(
        patient=patient, arm=study.arms.get(code=arm), part=part, allocated_by=by
    )
    if end is not None:
        _sbrt(patient, first_days_ago=end + 4)
    for after, value in counts:
        _record(patient, by, [("lymphocytes", value, "G/L")], days_ago=end - after)
    return patient


@pytest.fixture
def atra(seeds, investigator):
    study = seeds["ATRA-SBRT"]
    _range(site_of(study), investigator, "lymphocytes", "1.0", "4.0", "G/L")
    n = iter(range(1, 100))
    # SBRT+ATRA (experimental): 1 event in 5 evaluable; 1 not evaluable (count outside).
    _atra_patient(study, investigator, next(n), "SBRT_ATRA", counts=[(42, "0.6")])
    for _i in range(4):
        _atra_patient(study, investigator, next(n), "SBRT_ATRA", counts=[(40, "1.1")])
    _atra_patient(study, investigator, next(n), "SBRT_ATRA", counts=[(20, "0.3")])
    # SBRT (control): 4 events in 5; tie at 39/45 -> the later (45: 0.45, grade 3) is used;
    # one without SBRT.
    _atra_patient(study, investigator, next(n), "SBRT", counts=[(39, "1.5"), (45, "0.45")])
    for _i in range(3):
        _atra_patient(study, investigator, next(n), "SBRT", counts=[(44, "0.7")])
    _atra_patient(study, investigator, next(n), "SBRT", counts=[(42, "0.9")])
    _atra_patient(study, investigator, next(n), "SBRT", end=None)
    # The safety run-in is not in the comparison (its event must not count).
    _atra_patient(study, investigator, next(n), "SBRT_ATRA", part="run_in", counts=[(42, "0.1")])
    return study


def _statistician(study, *, blinded=False, username="stella_stat"):
    user = UserFactory(username=username, is_staff=True)
    MembershipFactory(user=user, study=study, role=Role.STATISTICIAN, blinded=blinded)
    return user


def test_the_endpoint_by_arm_with_fishers_test(atra, login):
    response = login(_statistician(atra)).get(
        reverse("study_lymphopenia", kwargs={"study_pk": atra.pk})
    )
    assert response.status_code == 200
    html = response.content.decode()
    summary = lab_services.lymphopenia_summary(atra, response.wsgi_request.user)
    by_arm = {a.arm: a for a in summary.arms}
    assert (by_arm["SBRT_ATRA"].evaluable, by_arm["SBRT_ATRA"].events) == (5, 1)
    assert (by_arm["SBRT"].evaluable, by_arm["SBRT"].events) == (5, 4)
    assert summary.comparison.table == ((1, 4), (4, 1))
    one_sided = scipy_fisher([[1, 4], [4, 1]], alternative="less").pvalue
    two_sided = scipy_fisher([[1, 4], [4, 1]]).pvalue
    assert f'data-testid="p-one-sided">{one_sided:.4f}<' in html
    assert f'data-testid="p-two-sided">{two_sided:.4f}<' in html
    assert "20.0 %" in html and "80.0 %" in html
    assert "1 no lymphocyte count in the window" in html
    assert "1 no delivered SBRT fraction" in html
    assert "within ± 7 days (days 35 to 49)" in html
    assert "Safety run-in (not in the comparison)" in html and "ATRA-01-013" in html


def test_the_endpoint_window_comes_from_the_studys_safety_rules(atra, login):
    SafetyRules.objects.update_or_create(
        study=atra, defaults={"lymphopenia_day": 20, "lymphopenia_window_days": 2}
    )
    user = _statistician(atra)
    summary = lab_services.lymphopenia_summary(atra, user)
    by_arm = {a.arm: a for a in summary.arms}
    # Only the SBRT+ATRA patient with a count on day 20 is evaluable now.
    assert (by_arm["SBRT_ATRA"].evaluable, by_arm["SBRT_ATRA"].events) == (1, 1)
    assert by_arm["SBRT"].evaluable == 0
    html = login(user).get(reverse("study_lymphopenia", kwargs={"study_pk": atra.pk}))
    assert "within ± 2 days (days 18 to 22)" in html.content.decode()


def test_site_users_and_monitors_never_see_the_endpoint(atra, investigator, login):
    url = reverse("study_lymphopenia", kwargs={"study_pk": atra.pk})
    assert login(investigator).get(url).status_code == 403
    monitor = UserFactory(username="mona_monitor", is_staff=True)
    MembershipFactory(user=monitor, study=atra, role=Role.MONITOR, blinded=False)
    assert login(monitor).get(url).status_code == 403
    sponsor = UserFactory(username="spencer_sponsor", is_staff=True)
    MembershipFactory(user=sponsor, study=atra, role=Role.SPONSOR_ADMIN, blinded=False)
    assert login(sponsor).get(url).status_code == 200


def test_blinded_users_get_403_and_other_studies_404(world, login):
    url = reverse("study_lymphopenia", kwargs={"study_pk": world.s2.pk})  # double-blind
    blinded = _statistician(world.s2, blinded=True, username="blind_stat")
    assert login(blinded).get(url).status_code == 403
    html = login(world.user("una_unblinded_stat")).get(url).content.decode()
    assert 'data-testid="p-two-sided">1.0000<' in html  # no patient yet; two arms, no direction
    assert 'data-testid="p-one-sided"' not in html  # S2 names no experimental arm
    assert login(world.user("pete_planner")).get(url).status_code == 403  # a site role
    assert login(world.user("tom_statistician")).get(url).status_code == 404  # not in S2
