"""Spider and waterfall plots of a study: scoped, coloured by arm only for unblinded users."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from lesions import services
from lesions.services import LesionRow, MeasurementRow
from patients import services as patient_services
from studies.roles import Role
from studies.services import randomisation_list_generate
from tests.factories import MembershipFactory, UserFactory
from tests.patients.conftest import make_ready, today

pytestmark = pytest.mark.django_db


def _patient_with_scans(study, by, number, change):
    patient = make_ready(study, by, number=number)
    patient_services.patient_enrol(patient=patient, by=by)
    patient.refresh_from_db()
    services.baseline_record(
        patient=patient,
        by=by,
        scan_date=today() - timedelta(days=90),
        modality="CT",
        rows=[LesionRow("T1", "lung", False, "target", Decimal("40"))],
    )
    lesion = patient.lesions.get()
    services.assessment_record(
        patient=patient,
        by=by,
        scan_date=today() - timedelta(days=30),
        modality="CT",
        non_target_status="",
        new_lesions="NO",
        measurements={lesion.pk: MeasurementRow("present", Decimal(40 + change))},
    )
    return patient


def _strokes(html: str) -> set[str]:
    return set(re.findall(r'<polyline[^>]*stroke="(#[0-9a-f]{6})"', html))


@pytest.fixture
def stop2_world(seeds, investigator):
    stop2 = seeds["STOP-2"]
    randomisation_list_generate(study=stop2, by=investigator, slots_per_stratum=20)
    for n in range(4):
        _patient_with_scans(stop2, investigator, f"R{n}", change=[-20, 4, -8, 10][n])
    return stop2


def test_a_blinded_user_sees_one_colour_and_no_arm(stop2_world, investigator, client):
    client.force_login(investigator)  # blinded investigator of STOP-2
    html = client.get(reverse("study_response", kwargs={"study_pk": stop2_world.pk})).content
    html = html.decode()
    assert len(_strokes(html)) == 1
    for arm in stop2_world.arms.all():
        assert arm.name not in html
    assert "One colour" in html


def test_an_unblinded_statistician_sees_the_arms_in_colour(stop2_world, client):
    stat = UserFactory(username="unblinded_stat")
    MembershipFactory(user=stat, study=stop2_world, role=Role.STATISTICIAN, blinded=False)
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client.force_login(stat)
    device = TOTPDevice.objects.create(user=stat, name="t", confirmed=True)
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    html = client.get(reverse("study_response", kwargs={"study_pk": stop2_world.pk}))
    html = html.content.decode()
    assert len(_strokes(html)) == 2  # 4 patients, 1:1 blocks: both arms present
    assert "Coloured by arm" in html


def test_the_waterfall_has_one_bar_per_measured_patient(stop2_world, investigator, client):
    client.force_login(investigator)
    html = client.get(reverse("study_response", kwargs={"study_pk": stop2_world.pk}))
    assert html.content.decode().count("<rect") == 4


def test_query_count_is_flat_as_patients_grow(
    seeds, investigator, client, django_assert_max_num_queries
):
    storm = seeds["STORM-01"]
    client.force_login(investigator)
    url = reverse("study_response", kwargs={"study_pk": storm.pk})
    _patient_with_scans(storm, investigator, "Q0", -10)
    with django_assert_max_num_queries(12) as small:
        assert client.get(url).status_code == 200
    for n in range(1, 6):
        _patient_with_scans(storm, investigator, f"Q{n}", n)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(url).status_code == 200
