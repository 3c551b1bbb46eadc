"""Recording lesions and scans: RECIST rules enforced, every result recomputed on each change."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from lesions import services
from lesions.models import ImagingAssessment, Lesion, PatientResponse, TimepointResult
from lesions.services import LesionRow, MeasurementRow
from tests.patients.conftest import make_ready, today

pytestmark = pytest.mark.django_db

D = Decimal


def _rows(*specs):
    return [
        LesionRow(
            label=label,
            organ=organ,
            is_node=node,
            category=cat,
            diameter_mm=D(d) if d is not None else None,
        )
        for label, organ, node, cat, d in specs
    ]


BASE = _rows(
    ("T1", "lung", False, "target", "30"),
    ("T2", "liver", False, "target", "16"),
    ("NT1", "bone", False, "non_target", None),
)


def _baseline(patient, by, rows=BASE, days_ago=120):
    return services.baseline_record(
        patient=patient,
        scan_date=today() - timedelta(days=days_ago),
        modality="CT",
        rows=rows,
        by=by,
    )


def _scan(patient, by, days_ago, t1, t2, *, assessment=None, reason="", new="NO"):
    lesions = {le.label: le.pk for le in patient.lesions.all()}
    return services.assessment_record(
        patient=patient,
        by=by,
        scan_date=today() - timedelta(days=days_ago),
        modality="CT",
        non_target_status="NON_CR_NON_PD",
        new_lesions=new,
        measurements={
            lesions["T1"]: MeasurementRow("present", D(t1)),
            lesions["T2"]: MeasurementRow("present", D(t2)),
        },
        assessment=assessment,
        reason=reason,
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            _rows(
                *[
                    (f"T{i}", o, False, "target", "20")
                    for i, o in enumerate(
                        ["lung", "liver", "bone", "adrenal", "kidney", "spleen"], 1
                    )
                ]
            ),
            "at most 5",
        ),
        (
            _rows(
                ("T1", "liver", False, "target", "20"),
                ("T2", "liver", False, "target", "20"),
                ("T3", "liver", False, "target", "20"),
            ),
            "at most 2 target lesions per organ",
        ),
        (_rows(("T1", "lung", False, "target", "9.9")), "10 mm"),
        (_rows(("T1", "lymph node", True, "target", "14")), "15 mm"),
    ],
)
def test_a_baseline_breaking_a_recist_rule_is_refused_whole(enrolled, investigator, rows, message):
    with pytest.raises(ValidationError) as caught:
        _baseline(enrolled, investigator, rows)
    assert message in " ".join(caught.value.messages)
    assert not Lesion.objects.filter(patient=enrolled).exists()
    assert not ImagingAssessment.objects.filter(patient=enrolled).exists()


def test_follow_up_scans_get_their_responses_computed(enrolled, investigator):
    _baseline(enrolled, investigator)  # sum 46 mm
    _scan(enrolled, investigator, 60, "22", "10.2")  # 32.2 mm: exactly -30 % -> PR
    _scan(enrolled, investigator, 20, "21", "10")  # 31 mm: PR, confirmed >= 28 days later
    results = list(
        TimepointResult.objects.filter(assessment__patient=enrolled).order_by(
            "assessment__scan_date"
        )
    )
    assert [(r.sum_mm, r.change_from_baseline_pct, r.overall) for r in results] == [
        (D("32.2"), D("-30.0"), "PR"),
        (D("31.0"), D("-32.6"), "PR"),
    ]
    response = PatientResponse.objects.get(patient=enrolled)
    assert response.best_overall_response == "PR" and response.progression_on is None


def test_editing_the_baseline_updates_every_later_result(enrolled, investigator):
    scan = _baseline(enrolled, investigator)
    _scan(enrolled, investigator, 60, "22", "10.2")
    m = scan.measurements.get(lesion__label="T1")
    m.diameter_mm = D("40")  # baseline 56 mm: 32.2 is now -42.5 %
    m.save()
    services.recompute(enrolled)
    result = TimepointResult.objects.get(assessment__patient=enrolled)
    assert result.change_from_baseline_pct == D("-42.5")


def test_correcting_a_middle_scan_needs_a_reason_and_recomputes(enrolled, investigator):
    _baseline(enrolled, investigator)  # 46 mm
    middle = _scan(enrolled, investigator, 60, "22", "10.2")  # 32.2 mm, the nadir
    _scan(enrolled, investigator, 20, "34", "16")  # 50 mm >= 1.2 x 32.2 and +17.8 mm: PD
    assert PatientResponse.objects.get(patient=enrolled).progression_on is not None
    with pytest.raises(ValidationError, match="reason"):
        _scan(enrolled, investigator, 60, "38", "16", assessment=middle)
    _scan(enrolled, investigator, 60, "38", "16", assessment=middle, reason="Typo in T1")
    last = (
        TimepointResult.objects.filter(assessment__patient=enrolled)
        .order_by("-assessment__scan_date")
        .first()
    )
    # The nadir is now the baseline (46 mm) and 50 mm < 1.2 x 46 = 55.2 mm: no longer PD.
    assert (last.nadir_mm, last.overall) == (D("46.0"), "SD")
    assert PatientResponse.objects.get(patient=enrolled).progression_on is None


def test_a_scan_before_baseline_or_in_the_future_is_refused(enrolled, investigator):
    _baseline(enrolled, investigator)
    with pytest.raises(ValidationError, match="after the baseline"):
        _scan(enrolled, investigator, 130, "20", "10")
    with pytest.raises(ValidationError, match="future"):
        _scan(enrolled, investigator, -3, "20", "10")
    assert ImagingAssessment.objects.filter(patient=enrolled).count() == 1


def test_a_measurement_of_another_patients_lesion_is_refused(enrolled, investigator, seeds):
    from patients import services as patient_services

    other = make_ready(seeds["STORM-01"], investigator, number="S777")
    patient_services.patient_enrol(patient=other, by=investigator)
    other.refresh_from_db()
    _baseline(enrolled, investigator)
    _baseline(other, investigator)
    foreign = other.lesions.get(label="T1")
    with pytest.raises(ValidationError, match="another patient"):
        services.assessment_record(
            patient=enrolled,
            by=investigator,
            scan_date=today() - timedelta(days=30),
            modality="CT",
            non_target_status="NE",
            new_lesions="NO",
            measurements={foreign.pk: MeasurementRow("present", D("10"))},
        )


def test_local_control_separates_in_field_from_out_of_field_progression(enrolled, investigator):
    rows = [
        LesionRow("T1", "lung", False, "target", D("20"), planned_for_sbrt=True),
        LesionRow("T2", "liver", False, "target", D("20")),
    ]
    services.baseline_record(
        patient=enrolled,
        scan_date=today() - timedelta(days=120),
        modality="CT",
        rows=rows,
        by=investigator,
    )
    lesions = {le.label: le.pk for le in enrolled.lesions.all()}
    services.assessment_record(
        patient=enrolled,
        by=investigator,
        scan_date=today() - timedelta(days=60),
        modality="CT",
        non_target_status="",
        new_lesions="NO",
        measurements={
            lesions["T1"]: MeasurementRow("present", D("12")),
            lesions["T2"]: MeasurementRow("present", D("26")),
        },  # T2: +30 %, +6 mm
    )
    response = PatientResponse.objects.get(patient=enrolled)
    assert response.in_field_progression_on is None
    assert response.out_of_field_progression_on == today() - timedelta(days=60)
    t2 = next(row for row in response.local_control if row["lesion"] == "T2")
    assert (t2["treated"], t2["nadir_mm"]) == (False, "20.0")
