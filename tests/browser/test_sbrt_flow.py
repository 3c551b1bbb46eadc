"""An investigator enters a StORM-01 patient's SBRT course and its fraction log in a real browser:
the protocol check asks to confirm an untreated progressing lesion, then the course page shows the
delivered fractions, BED and EQD2 and the recorded deviation."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from lesions import services as lesion_services
from lesions.services import LesionRow
from patients.services import patient_enrol
from studies.models import Study
from studies.roles import Role
from tests.browser.test_lesions_flow import _log_in
from tests.factories import MembershipFactory, UserFactory
from tests.patients.conftest import make_ready, today
from treatments.models import Fraction, ProtocolDeviation, RadiotherapyCourse

pytestmark = pytest.mark.browser

COURSES_PATH = re.compile(r"/patients/\d+/sbrt/$")


@pytest.fixture
def patient(transactional_db):
    call_command("load_seed_trials", verbosity=0)
    study = Study.objects.get(code="STORM-01")
    user = UserFactory(username="ivy_investigator")
    MembershipFactory(
        user=user,
        study=study,
        study_site=study.study_sites.order_by("number").first(),
        role=Role.INVESTIGATOR,
        blinded=True,
    )
    patient = make_ready(study, user)
    patient_enrol(patient=patient, by=user)
    patient.refresh_from_db()
    lesion_services.baseline_record(
        patient=patient,
        by=user,
        scan_date=today() - timedelta(days=40),
        modality="CT",
        rows=[
            LesionRow(label, organ, False, "target", Decimal(d), status_at_inclusion="progressing")
            for label, organ, d in (("T1", "lung", "30"), ("T2", "liver", "20"))
        ],
    )
    return patient


def _weekdays(n: int):
    day, days = today() - timedelta(days=20), []
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def test_investigator_enters_a_course_confirms_a_deviation_and_reads_bed(
    page, live_server, patient
):
    days = _weekdays(5)
    _log_in(page, live_server, "ivy_investigator")
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("link", name="Stereotactic radiotherapy").click()
    expect(page).to_have_url(COURSES_PATH)
    page.get_by_role("link", name="New SBRT course").click()

    page.select_option("select[name=technique]", "cyberknife")
    page.select_option("select[name=motion_management]", "tracking")
    page.fill("input[name=planned_start]", days[0].isoformat())
    t1 = patient.lesions.get(label="T1")
    page.select_option("select[name=rx-0-lesion]", str(t1.pk))
    page.fill("input[name=rx-0-total_dose_gy]", "35")
    page.fill("input[name=rx-0-fractions]", "5")
    page.fill("input[name=rx-0-dose_per_fraction_gy]", "7")
    for i, day in enumerate(days):
        page.fill(f"input[name=fx-{i}-number]", str(i + 1))
        page.fill(f"input[name=fx-{i}-day]", day.isoformat())
    page.get_by_role("button", name="Save the course").click()

    # T2 progresses and is not treated: StORM-01 treats every progressing lesion.
    deviations = page.get_by_test_id("deviations")
    expect(deviations).to_contain_text("T2")
    assert not RadiotherapyCourse.objects.filter(patient=patient).exists()
    page.check("input[name=confirm_deviations]")
    page.get_by_role("button", name="Save the course").click()

    expect(page).to_have_url(COURSES_PATH)
    course = page.get_by_test_id("course")
    expect(course).to_contain_text("5 fraction(s) delivered")
    expect(course).to_contain_text("CyberKnife")
    rx = page.get_by_test_id("prescriptions")
    # 35 Gy / 5: BED10 = 35 x (1 + 7/10) = 59.5 Gy; EQD2(10) = 59.5 / 1.2 = 49.58 Gy.
    expect(rx).to_contain_text("59.5")
    expect(rx).to_contain_text("49.58")
    expect(page.get_by_test_id("deviation")).to_contain_text("T2")

    saved = RadiotherapyCourse.objects.get(patient=patient)
    assert Fraction.objects.filter(course=saved, status="delivered").count() == 5
    assert ProtocolDeviation.objects.filter(course=saved).count() == 1
