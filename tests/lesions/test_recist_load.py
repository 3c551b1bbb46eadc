"""The recomputation's load (``lesions.services._load``): two statements, and exactly what the
four statements it replaced gave the engines and the comparison with the stored results."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lesions import services
from lesions.models import ImagingAssessment, Lesion, PatientResponse, TimepointResult
from lesions.services import (
    _STORED_RESPONSE,
    _STORED_TIMEPOINT,
    LesionRow,
    MeasurementRow,
    NewLesionRow,
    _Lesion,
    _Loaded,
    _Patient,
    _Scan,
)
from patients import services as patient_services
from patients.models import Patient
from studies.services import randomisation_list_upload
from tests.patients.conftest import make_ready, today

pytestmark = pytest.mark.django_db
D = Decimal

# The four statements of the previous load, kept here as the reference the new one must match.
_REFERENCE_SQL = {
    "patients": (  # and the stored PatientResponse
        "SELECT p.id, p.enrolled_on, s.response_confirmation_required, s.min_sd_days,"  # noqa: S608
        " s.irecist_new_lesions_block_reset, COALESCE(arm.uses_irecist, false), "
        + _STORED_RESPONSE
        + " FROM patients_patient p"
        " JOIN studies_studysite ss ON ss.id = p.study_site_id"
        " JOIN studies_study s ON s.id = ss.study_id"
        " LEFT JOIN patients_allocation al ON al.patient_id = p.id"
        " LEFT JOIN studies_arm arm ON arm.id = al.arm_id"
        " LEFT JOIN lesions_patientresponse r ON r.patient_id = p.id"
        " WHERE p.id = ANY(%s)"
    ),
    "scans": (  # and the stored TimepointResult
        "SELECT a.id, a.patient_id, a.scan_date, a.is_baseline, a.non_target_status,"  # noqa: S608
        " a.new_lesions, a.non_target_increase, "
        + _STORED_TIMEPOINT
        + " FROM lesions_imagingassessment a"
        " LEFT JOIN lesions_timepointresult t ON t.assessment_id = a.id"
        " WHERE a.patient_id = ANY(%s) ORDER BY a.patient_id, a.scan_date"
    ),
    "lesions": (
        "SELECT id, patient_id, label, organ, is_node, category, planned_for_sbrt, new_is_target"
        " FROM lesions_lesion WHERE patient_id = ANY(%s) ORDER BY patient_id, category, label"
    ),
    "measurements": (
        "SELECT m.assessment_id, m.lesion_id, m.state, m.diameter_mm::text, m.fragments_mm,"
        " m.coalesced_into_id, m.status FROM lesions_measurement m"
        " JOIN lesions_lesion le ON le.id = m.lesion_id WHERE le.patient_id = ANY(%s)"
    ),
}


def _split(rows: list[tuple], at: int) -> tuple[list[tuple], list[tuple]]:
    return [row[:at] for row in rows], [row[at:] for row in rows if row[at] is not None]


def _reference_load(patient_ids: list[int]) -> _Loaded:
    """The previous ``_load``, as it was (four statements in one pipeline)."""
    connection.ensure_connection()
    with ExitStack() as stack:
        cursors = {name: stack.enter_context(connection.cursor()) for name in _REFERENCE_SQL}
        with connection.connection.pipeline():
            for name, cursor in cursors.items():
                cursor.execute(_REFERENCE_SQL[name], [patient_ids])
        rows = {name: cursor.fetchall() for name, cursor in cursors.items()}
    patients, stored_responses = _split(rows["patients"], len(_Patient._fields))
    scans, stored_timepoints = _split(rows["scans"], len(_Scan._fields))
    scans_of: dict = {}
    for row in scans:
        scans_of.setdefault(row[1], []).append(_Scan._make(row))
    lesions = {row[0]: _Lesion._make(row) for row in rows["lesions"]}
    lesions_of: dict = {}
    for le in lesions.values():
        lesions_of.setdefault(le.patient_id, []).append(le)
    by_scan: dict = {}
    for row in rows["measurements"]:
        by_scan.setdefault(row[0], []).append(row)
    return _Loaded(
        {row[0]: _Patient._make(row) for row in patients},
        scans_of,
        lesions,
        lesions_of,
        by_scan,
        stored_timepoints,
        stored_responses,
    )


def _comparable(loaded: _Loaded) -> _Loaded:
    """``loaded`` with the two orders the reference statements left to the database put in
    one order: the stored responses (no ORDER BY) and each scan's measurements (none either;
    the engines read them as a set). Every other order is compared as it is: scans by patient
    and date, each patient's lesions by category and label, stored timepoints by scan."""
    return _Loaded(
        loaded.patients,
        loaded.scans_of,
        loaded.lesions,
        loaded.lesions_of,
        {pk: sorted(rows, key=lambda row: row[1]) for pk, rows in loaded.by_scan.items()},
        loaded.stored_timepoints,
        sorted(loaded.stored_responses, key=lambda row: row[0]),
    )


def _enrolled(study, by, number: str) -> Patient:
    patient = make_ready(study, by, number)
    patient_services.patient_enrol(patient=patient, by=by)
    patient.refresh_from_db()
    return patient


def _follow_up(patient, by, days_ago: int, values: dict[str, str], **kwargs):
    lesions = {le.label: le.pk for le in patient.lesions.all()}
    return services.assessment_record(
        patient=patient,
        by=by,
        scan_date=today() - timedelta(days=days_ago),
        modality="CT",
        non_target_status=kwargs.pop("non_target_status", "NON_CR_NON_PD"),
        new_lesions=kwargs.pop("new_lesions", "NO"),
        measurements={
            lesions[label]: MeasurementRow("present", D(value)) for label, value in values.items()
        },
        **kwargs,
    )


@pytest.fixture
def portfolio(seeds, investigator) -> list[Patient]:
    """Patients covering the load's edge cases:

    * an enrolled patient with no scan (no lesion, no stored result);
    * a patient with three scans (the middle one recorded last: ids not in date order), a
      non-target lesion never measured, a new lesion, stored results for its follow-ups (none
      for the baseline scan) and a stored response;
    * a patient whose follow-up's stored result and stored response were removed (scans
      without a stored result, a patient with scans and no stored response);
    * an iRECIST patient (an allocated arm) with a new non-target lesion followed apart.
    """
    storm, sarc = seeds["STORM-01"], seeds["STEREOSARC"]
    by = investigator
    no_scan = _enrolled(storm, by, "S001")

    history = _enrolled(storm, by, "S002")
    services.baseline_record(
        patient=history,
        scan_date=today() - timedelta(days=150),
        modality="CT",
        rows=[
            LesionRow("T2", "liver", False, "target", D("16")),
            LesionRow("T1", "lung", False, "target", D("30")),
            LesionRow("NT1", "bone", False, "non_target", None),
            LesionRow("N1", "lymph node", True, "target", D("18")),
        ],
        by=by,
    )
    _follow_up(
        history,
        by,
        30,
        {"T1": "21.5", "T2": "11", "N1": "9"},
        new_lesions="YES",
        new_lesion_rows=[NewLesionRow("L1", "liver", D("12"))],
    )
    _follow_up(history, by, 90, {"T1": "20", "T2": "10", "N1": "9"})  # recorded after a later one

    stripped = _enrolled(storm, by, "S003")
    services.baseline_record(
        patient=stripped,
        scan_date=today() - timedelta(days=100),
        modality="CT",
        rows=[LesionRow("T1", "lung", False, "target", D("25"))],
        by=by,
    )
    follow_up = _follow_up(stripped, by, 40, {"T1": "24"})
    TimepointResult.objects.filter(assessment=follow_up).delete()
    PatientResponse.objects.filter(patient=stripped).delete()

    randomisation_list_upload(
        study=sarc,
        by=by,
        rows=[{"stratum": ss.number, "sequence": "1", "arm": "A"} for ss in sarc.study_sites.all()],
    )
    immuno = _enrolled(sarc, by, "S004")
    assert immuno.allocation.arm.uses_irecist
    services.baseline_record(
        patient=immuno,
        scan_date=today() - timedelta(days=150),
        modality="CT",
        rows=[LesionRow("T1", "lung", False, "target", D("30"))],
        by=by,
    )
    _follow_up(
        immuno,
        by,
        60,
        {"T1": "28"},
        non_target_status="",
        new_lesions="YES",
        new_lesion_rows=[NewLesionRow("NL1", "skin", None, is_target=False)],
    )
    return [no_scan, history, stripped, immuno]


def test_the_portfolio_has_the_edge_cases(portfolio):
    """The fixture builds what the comparison below is meant to cover."""
    no_scan, history, stripped, immuno = portfolio
    assert not no_scan.assessments.exists()
    assert not history.lesions.get(label="NT1").measurements.exists()
    assert history.lesions.filter(category=Lesion.Category.NEW).count() == 1
    assert TimepointResult.objects.filter(assessment__patient=history).count() == 2
    assert PatientResponse.objects.filter(patient=history).exists()
    assert ImagingAssessment.objects.filter(patient=stripped).count() == 2
    assert not TimepointResult.objects.filter(assessment__patient=stripped).exists()
    assert not PatientResponse.objects.filter(patient=stripped).exists()
    assert immuno.lesions.filter(category=Lesion.Category.NEW, new_is_target=False).exists()


def test_load_gives_what_the_four_statements_gave(portfolio):
    ids = [patient.pk for patient in portfolio]
    ids.append(max(ids) + 1000)  # no such patient: nothing loaded for it
    expected = _reference_load(ids)
    loaded = services._load(ids)
    assert _comparable(loaded) == _comparable(expected)
    # What the comparison covers is there: every edge case reached the load.
    no_scan, history, stripped, immuno = portfolio
    assert set(loaded.patients) == set(ids[:-1])
    assert no_scan.pk not in loaded.scans_of
    scans = loaded.scans_of[history.pk]
    assert [s.scan_date for s in scans] == sorted(s.scan_date for s in scans)
    assert [s.pk for s in scans] != sorted(s.pk for s in scans)  # date order is not id order
    assert [le.label for le in loaded.lesions_of[history.pk]] == ["L1", "NT1", "N1", "T1", "T2"]
    assert loaded.patients[immuno.pk].uses_irecist
    assert {row[0] for row in loaded.stored_responses} == {history.pk, immuno.pk}


@pytest.mark.parametrize("which", [0, 1, 2, 3])
def test_load_of_one_patient_gives_what_the_four_statements_gave(portfolio, which):
    """A CRF save loads one patient."""
    ids = [portfolio[which].pk]
    assert _comparable(services._load(ids)) == _comparable(_reference_load(ids))


def test_load_sends_two_statements(portfolio):
    ids = [patient.pk for patient in portfolio]
    with CaptureQueriesContext(connection) as captured:
        services._load(ids)
    assert len(captured.captured_queries) == 2
    with CaptureQueriesContext(connection) as captured:
        services._load(ids[1:2])
    assert len(captured.captured_queries) == 2


def test_the_recomputation_still_gives_the_stored_results(portfolio):
    """The load feeds the engines and the comparison with the stored results: recomputing the
    portfolio stores a response again for the patient that had lost it, and changes nothing
    for the others."""
    no_scan, history, stripped, immuno = portfolio
    before = {
        pk: list(PatientResponse.objects.filter(patient_id=pk).values_list("best_overall_response"))
        for pk in (history.pk, immuno.pk)
    }
    bests = services.recompute_many([p.pk for p in portfolio])
    assert set(bests) == {history.pk, stripped.pk, immuno.pk}
    assert PatientResponse.objects.filter(patient=stripped).exists()
    assert TimepointResult.objects.filter(assessment__patient=stripped).count() == 1
    for pk, rows in before.items():
        assert (
            list(PatientResponse.objects.filter(patient_id=pk).values_list("best_overall_response"))
            == rows
        )
