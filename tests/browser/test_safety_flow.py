"""An investigator records a grade 3 lymphopenia as an adverse event, picking the CTCAE v5.0 term
through the search box and reading its grade definition, then enters the lymphocyte count and
sees the grade the application computed from the site laboratory's normal range."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from patients.ctcae_terms import ensure_terms
from patients.models import AdverseEvent, LabResult, NormalRange
from patients.services import patient_enrol
from studies.models import Study
from studies.roles import Role
from tests.browser.test_lesions_flow import _log_in
from tests.factories import MembershipFactory, UserFactory
from tests.patients.conftest import make_ready, today

pytestmark = pytest.mark.browser


@pytest.fixture
def patient(transactional_db):
    call_command("load_seed_trials", verbosity=0)
    ensure_terms()  # a transactional test's flush empties the migration-loaded list
    study = Study.objects.get(code="STORM-01")
    study_site = study.study_sites.order_by("number").first()
    user = UserFactory(username="ivy_investigator")
    MembershipFactory(
        user=user, study=study, study_site=study_site, role=Role.INVESTIGATOR, blinded=True
    )
    patient = make_ready(study, user)
    patient_enrol(patient=patient, by=user)
    patient.refresh_from_db()
    NormalRange.objects.create(study_site=study_site, analyte="lymphocytes", lln=1000, unit="/mm3")
    return patient


def test_investigator_records_a_lymphopenia_and_its_count_and_sees_the_grades(
    page, live_server, patient
):
    onset = today().isoformat()  # the patient consented today
    _log_in(page, live_server, "ivy_investigator")
    page.goto(f"{live_server.url}/patients/{patient.pk}/")

    # The adverse event, with the term found by typing part of it.
    page.get_by_role("link", name="Adverse events").click()
    page.get_by_test_id("ae-new").click()
    page.get_by_test_id("ctcae-search").fill("lymphocyte count")
    page.get_by_test_id("ctcae-result").filter(has_text="Lymphocyte count decreased").first.click()
    page.select_option("select[name=grade]", "3")
    expect(page.locator("[data-ctcae-grade-text]")).to_contain_text("<500 - 200/mm3")
    page.fill("input[name=onset_on]", onset)
    page.select_option("select[name=attribution_sbrt]", "probable")
    page.select_option("select[name=attribution_systemic]", "unlikely")
    page.select_option("select[name=outcome]", "recovering")
    page.get_by_role("button", name="Save the adverse event").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Lymphocyte count decreased")
    expect(page.get_by_test_id("ae-grade-text")).to_contain_text("<500 - 200/mm3")
    page.get_by_role("link", name="← Adverse events").click()
    row = page.get_by_test_id("ae-row")
    expect(row).to_contain_text("Lymphocyte count decreased")
    expect(row).to_contain_text("Grade 3")
    assert AdverseEvent.objects.get(patient=patient).grade == 3

    # The count that goes with it: 450 /mm3 is CTCAE grade 3 (< 500 and >= 200).
    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("link", name="Laboratory results").click()
    page.get_by_role("link", name="New sample").click()
    page.fill("input[name=sampled_on]", onset)
    page.fill("input[name=lymphocytes_value]", "450")
    page.select_option("select[name=lymphocytes_unit]", "/mm3")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/patients/\d+/labs/$"))
    lab_row = page.locator("tr[data-testid=lab-row][data-analyte=lymphocytes]")
    expect(lab_row.get_by_test_id("grade")).to_have_text("3")
    assert LabResult.objects.get(patient=patient).grade == 3
