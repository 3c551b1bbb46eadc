"""Edit checks: each rule on plain data, then the automatic queries they open and close on a real
record (labs, scans through the visit schedule, adverse events), in a bounded number of queries."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError

from patients import ae_services, lab_services, query_services
from patients.ctcae_terms import ensure_terms as ensure_ctcae_terms
from patients.edit_checks import (
    Course,
    Event,
    ImagingVisit,
    Lab,
    PatientData,
    Scan,
    SyncResult,
    death_without_date,
    edit_checks_sync,
    lab_out_of_plausible_range,
    run_checks,
    sbrt_overall_time,
    scan_outside_window,
)
from patients.models import AdverseEvent, Consent
from patients.models_dm import DataQuery, QueryMessage
from patients.models_safety import LabResult
from patients.models_visits import PlannedVisit
from patients.visit_services import visits_sync
from tests.patients.conftest import today
from tests.patients.test_adverse_events import ae_data
from tests.patients.test_visits import _course, _day, _scan, _storm_patient

D0 = date(2026, 3, 1)


def _lab(pk, analyte, value, unit):
    return Lab(pk, analyte, D(value), unit, D0)


# --- the rules on plain data -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "flagged"),
    [
        ("lymphocytes", "100", "10^9/L", False),
        ("lymphocytes", "100.0001", "10^9/L", True),
        ("lymphocytes", "1500", "10^9/L", True),  # /mm3 typed as 10^9/L
        ("haemoglobin", "25", "g/dL", False),
        ("haemoglobin", "25.5", "g/dL", True),
        ("haemoglobin", "0.8", "g/dL", True),  # below 1 g/dL
        ("platelets", "2000", "10^9/L", False),
        ("platelets", "2001", "10^9/L", True),
        ("ast", "19000", "U/L", False),
    ],
)
def test_a_lab_value_outside_the_plausible_range_is_a_finding(analyte, value, unit, flagged):
    found = list(lab_out_of_plausible_range(PatientData(labs=(_lab(7, analyte, value, unit),))))
    assert bool(found) == flagged
    if flagged:
        [finding] = found
        assert (finding.check_key, finding.form_kind, finding.object_id, finding.field) == (
            "lab-range:7",
            "lab",
            7,
            "value",
        )
        assert f"{D(value).normalize():f} {unit}" in finding.message


def _visit(start: date, end: date, done_form: str = "", occurrence: int = 1) -> ImagingVisit:
    return ImagingVisit("CT", occurrence, start, end, done_form)


def test_a_scan_outside_the_window_of_the_visit_it_records_is_a_finding():
    data = PatientData(
        scans=(Scan(3, D0),),
        imaging_visits=(_visit(D0 + timedelta(days=5), D0 + timedelta(days=19), "scan:3"),),
    )
    [finding] = scan_outside_window(data)
    assert (finding.check_key, finding.form_kind, finding.field) == (
        "scan-window:3",
        "assessment",
        "scan_date",
    )
    assert "2026-03-06 to 2026-03-20" in finding.message


def test_a_scan_in_no_window_names_the_nearest_visit_and_one_in_a_window_is_fine():
    visits = (
        _visit(D0, D0 + timedelta(days=14), occurrence=1),
        _visit(D0 + timedelta(days=60), D0 + timedelta(days=74), occurrence=2),
    )
    in_window = Scan(1, D0 + timedelta(days=10))  # in visit 1's window, though not recording it
    between = Scan(2, D0 + timedelta(days=50))
    [finding] = scan_outside_window(PatientData(scans=(in_window, between), imaging_visits=visits))
    assert finding.object_id == 2
    assert "CT #2" in finding.message  # 10 days from visit 2, 36 from visit 1
    # No imaging visit planned (no schedule yet): nothing to check against.
    assert list(scan_outside_window(PatientData(scans=(between,)))) == []


def test_a_grade_5_event_without_a_date_of_death_is_a_finding():
    events = (Event(1, "Pneumonitis", 5, None), Event(2, "Sepsis", 5, D0))
    [finding] = death_without_date(PatientData(events=events))
    assert (finding.check_key, finding.form_kind, finding.field) == (
        "ae-death-date:1",
        "ae",
        "death_on",
    )
    assert "Pneumonitis" in finding.message


def test_a_course_fully_delivered_over_more_days_than_allowed_is_a_finding():
    def course(pk, delivered, days, limit=14):
        return Course(pk, 1, 5, delivered, D0, D0 + timedelta(days=days - 1), limit)

    courses = (
        course(1, 5, 15),  # all given, 15 days > 14: finding
        course(2, 5, 14),  # all given within the limit
        course(3, 4, 20),  # still under way: not yet
        course(4, 5, 30, limit=None),  # no constraint in the study
    )
    [finding] = sbrt_overall_time(PatientData(courses=courses))
    assert (finding.check_key, finding.form_kind, finding.field) == (
        "sbrt-overall-time:1",
        "course",
        "",
    )
    assert "15 days" in finding.message and "14 days" in finding.message


# --- automatic queries on a real record --------------------------------------------------------


@pytest.fixture
def record(world):
    alice = world.user("alice_pi")
    Consent.objects.create(
        patient=world.patient_a,
        consented_on=today() - timedelta(days=300),
        form_version="v1",
        obtained_by=alice,
    )
    world.patient_a.enrolled_on = today() - timedelta(days=290)
    world.patient_a.save()
    [world.lab] = lab_services.lab_record(
        patient=world.patient_a,
        by=alice,
        sampled_on=today() - timedelta(days=10),
        results=[("lymphocytes", D("1.2"), "10^9/L")],
    )
    return world


def _break(lab: LabResult, value: str = "1500") -> None:
    """A value that entry refuses, arriving by another path (an import, the admin)."""
    LabResult.objects.filter(pk=lab.pk).update(value=D(value), value_standard=D(value))


def _auto(patient):
    return list(DataQuery.objects.filter(patient=patient, origin="auto").order_by("pk"))


@pytest.mark.django_db
def test_an_automatic_query_opens_by_itself_and_closes_when_the_data_is_corrected(record):
    patient, alice = record.patient_a, record.user("alice_pi")
    _break(record.lab)
    result = edit_checks_sync(patient)
    assert result.opened == (f"lab-range:{record.lab.pk}",)
    [query] = _auto(patient)
    assert (query.status, query.form_kind, query.object_id, query.field, query.opened_by) == (
        "open",
        "lab",
        record.lab.pk,
        "value",
        None,
    )
    [opened] = query.messages.all()
    assert opened.action == "open" and opened.author is None and "1500" in opened.text
    # Running again opens nothing more.
    assert edit_checks_sync(patient).opened == ()
    # The site corrects the value on the form, with a reason: the query closes itself.
    lab_services.lab_record(
        patient=patient,
        by=alice,
        sampled_on=record.lab.sampled_on,
        results=[("lymphocytes", D("1.5"), "10^9/L")],
        lab=LabResult.objects.get(pk=record.lab.pk),
        reason="unit typed wrong",
    )
    query.refresh_from_db()
    assert query.status == "closed" and query.closed_at is not None
    closing = query.messages.order_by("pk").last()
    assert (closing.action, closing.text, closing.author) == (
        "close",
        "Resolved: data corrected",
        None,
    )


@pytest.mark.django_db
def test_a_finding_the_monitor_accepted_is_not_raised_again_but_a_new_breakage_is(record):
    patient, carl = record.patient_a, record.user("carl_monitor")
    _break(record.lab)
    edit_checks_sync(patient)
    [query] = _auto(patient)
    query_services.query_close(query=query, text="Confirmed with the lab report.", by=carl)
    assert edit_checks_sync(patient).opened == ()
    assert len(_auto(patient)) == 1

    # Another lab: broken, corrected (closed by the check), broken again: a new query opens.
    [other] = lab_services.lab_record(
        patient=patient,
        by=record.user("alice_pi"),
        sampled_on=today() - timedelta(days=5),
        results=[("platelets", D("200"), "10^9/L")],
    )
    _break(other, "5000")
    edit_checks_sync(patient)
    LabResult.objects.filter(pk=other.pk).update(value=D("200"), value_standard=D("200"))
    assert edit_checks_sync(patient).closed == (f"lab-range:{other.pk}",)
    _break(other, "5000")
    assert edit_checks_sync(patient).opened == (f"lab-range:{other.pk}",)
    first, second = [q for q in _auto(patient) if q.object_id == other.pk]
    assert (first.status, second.status) == ("closed", "open")
    # The old query cannot be re-opened beside the live one (one live query per finding).
    with pytest.raises(ValidationError, match="newer query"):
        query_services.query_reopen(query=first, text="again", by=carl)


@pytest.mark.django_db
def test_edit_checks_run_in_the_same_number_of_queries_whatever_the_record_size(
    record, django_assert_max_num_queries
):
    patient, alice = record.patient_a, record.user("alice_pi")
    _break(record.lab)
    with django_assert_max_num_queries(12) as small:
        edit_checks_sync(patient)
    for n in range(15):
        lab_services.lab_record(
            patient=patient,
            by=alice,
            sampled_on=today() - timedelta(days=20 + n),
            results=[("haemoglobin", D("12"), "g/dL")],
        )
    LabResult.objects.filter(analyte="haemoglobin").update(value_standard=D("40"))
    with django_assert_max_num_queries(len(small.captured_queries)):
        result = edit_checks_sync(patient)
    assert len(result.opened) == 15
    # Nothing changed since: one query reads and finds nothing to write.
    with django_assert_max_num_queries(1):
        assert edit_checks_sync(patient) == SyncResult()


@pytest.mark.django_db
def test_recording_an_adverse_event_runs_the_checks(record):
    ensure_ctcae_terms()
    patient, alice = record.patient_a, record.user("alice_pi")
    data = ae_data(grade=5, serious=True, sae_death=True, outcome="fatal", death_on=None)
    broken = AdverseEvent.objects.create(patient=patient, **data)  # not through the service
    ae_services.ae_record(patient=patient, by=alice, data=ae_data())
    [query] = _auto(patient)
    assert (query.form_kind, query.object_id, query.field) == ("ae", broken.pk, "death_on")


@pytest.mark.django_db
def test_a_scan_outside_every_imaging_window_opens_a_query_until_its_date_is_corrected(
    seeds, investigator
):
    patient = _storm_patient(seeds, investigator)
    _course(patient, investigator, _day(120))
    ct1, ct2 = PlannedVisit.objects.filter(patient=patient, definition__code="ct").order_by(
        "occurrence"
    )[:2]
    outside = ct1.window_end + timedelta(days=5)
    assert outside < ct2.window_start and outside <= today()
    scan = _scan(patient, investigator, outside)
    [query] = _auto(patient)
    assert (query.form_kind, query.object_id, query.field) == ("assessment", scan.pk, "scan_date")
    assert query.messages.get().text.startswith(f"The scan of {outside.isoformat()}")
    _scan(patient, investigator, ct1.due_on, assessment=scan, reason="date typed wrong")
    query.refresh_from_db()
    assert query.status == "closed"
    assert QueryMessage.objects.filter(query=query, action="close", author=None).exists()


@pytest.mark.django_db
def test_the_checks_find_nothing_in_a_clean_record(record):
    visits_sync(record.patient_a)
    assert run_checks(PatientData()) == {}
    assert _auto(record.patient_a) == []
