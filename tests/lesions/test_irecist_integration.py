"""iRECIST beside RECIST 1.1 for the arms that report it (STEREOSARC's atezolizumab arm)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from lesions import services
from lesions.models import PatientResponse, TimepointResult
from lesions.services import LesionRow, MeasurementRow, NewLesionRow
from patients import services as patient_services
from studies.services import randomisation_list_upload
from tests.patients.conftest import make_ready, today

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def atezolizumab_patient(seeds, investigator):
    sarc = seeds["STEREOSARC"]
    strata = [ss.number for ss in sarc.study_sites.all()]
    randomisation_list_upload(
        study=sarc,
        by=investigator,
        rows=[{"stratum": s, "sequence": "1", "arm": "A"} for s in strata],
    )
    patient = make_ready(sarc, investigator)
    patient_services.patient_enrol(patient=patient, by=investigator)
    patient.refresh_from_db()
    assert patient.allocation.arm.uses_irecist
    services.baseline_record(
        patient=patient,
        by=investigator,
        modality="CT",
        scan_date=today() - timedelta(days=150),
        rows=[LesionRow("T1", "lung", False, "target", D("30"))],
    )
    return patient


def _scan(patient, by, days_ago, t1, **kwargs):
    lesion = patient.lesions.get(label="T1")
    return services.assessment_record(
        patient=patient,
        by=by,
        scan_date=today() - timedelta(days=days_ago),
        modality="CT",
        non_target_status="",
        new_lesions=kwargs.pop("new_lesions", "NO"),
        measurements={lesion.pk: MeasurementRow("present", D(t1)), **kwargs.pop("more", {})},
        **kwargs,
    )


def _irecist(patient):
    return list(
        TimepointResult.objects.filter(assessment__patient=patient)
        .order_by("assessment__scan_date")
        .values_list("overall", "irecist_overall")
    )


def test_a_first_progression_is_iupd_and_5_mm_more_confirms_it(atezolizumab_patient, investigator):
    _scan(atezolizumab_patient, investigator, 100, "37")  # +7 mm, +23 %: RECIST PD
    _scan(atezolizumab_patient, investigator, 60, "42")  # +5 mm since iUPD, 40 days later
    assert _irecist(atezolizumab_patient) == [("PD", "iUPD"), ("PD", "iCPD")]
    response = PatientResponse.objects.get(patient=atezolizumab_patient)
    assert response.irecist_best_response == "iCPD"
    assert response.first_iupd_on == today() - timedelta(days=100)
    assert response.icpd_on == today() - timedelta(days=60)


def test_less_than_5_mm_more_leaves_the_progression_unconfirmed(atezolizumab_patient, investigator):
    _scan(atezolizumab_patient, investigator, 100, "37")
    _scan(atezolizumab_patient, investigator, 60, "41.9")
    assert _irecist(atezolizumab_patient)[-1] == ("PD", "iUPD")


def test_new_lesions_must_be_listed_for_irecist(atezolizumab_patient, investigator):
    with pytest.raises(ValidationError, match="List each new lesion"):
        _scan(atezolizumab_patient, investigator, 100, "30", new_lesions="YES")
    _scan(
        atezolizumab_patient,
        investigator,
        100,
        "30",
        new_lesions="YES",
        new_lesion_rows=[NewLesionRow("N1", "liver", D("12"))],
    )
    assert _irecist(atezolizumab_patient) == [("PD", "iUPD")]


def test_the_lesion_page_shows_irecist_beside_recist(atezolizumab_patient, investigator, client):
    _scan(atezolizumab_patient, investigator, 100, "37")
    client.force_login(investigator)
    html = client.get(
        reverse("patient_lesions", kwargs={"patient_pk": atezolizumab_patient.pk})
    ).content.decode()
    assert "iUPD" in html and 'data-testid="ibor"' in html


def test_the_other_arm_reports_recist_only(seeds, investigator):
    sarc = seeds["STEREOSARC"]
    strata = [ss.number for ss in sarc.study_sites.all()]
    randomisation_list_upload(
        study=sarc,
        by=investigator,
        rows=[{"stratum": s, "sequence": "1", "arm": "B"} for s in strata],
    )
    patient = make_ready(sarc, investigator)
    patient_services.patient_enrol(patient=patient, by=investigator)
    patient.refresh_from_db()
    services.baseline_record(
        patient=patient,
        by=investigator,
        modality="CT",
        scan_date=today() - timedelta(days=150),
        rows=[LesionRow("T1", "lung", False, "target", D("30"))],
    )
    _scan(patient, investigator, 100, "37")
    assert _irecist(patient) == [("PD", "")]
    assert PatientResponse.objects.get(patient=patient).irecist_best_response == ""
