"""An investigator takes a STEREOSARC patient from screening to randomisation in a real browser."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from studies.models import Study
from studies.roles import Role
from studies.services import randomisation_list_generate
from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.browser

PATIENT_PATH = re.compile(r"/patients/\d+/$")
CHECKLIST_PATH = re.compile(r"/patients/\d+/eligibility/$")
ARMS = re.compile(r"^(SBRT \+ Atezolizumab|SBRT)$")

# analyte, value, unit, upper limit of normal: what STEREOSARC inclusion 7 needs.
STEREOSARC_LABS = (
    ("anc", "2000", "/uL", ""),
    ("platelets", "150000", "/uL", ""),
    ("haemoglobin", "12", "g/dL", ""),
    ("creatinine", "80", "umol/L", "100"),
    ("bilirubin", "10", "umol/L", "17"),
    ("ast", "30", "U/L", "40"),
    ("alt", "30", "U/L", "40"),
)


@pytest.fixture
def study(transactional_db):
    """STEREOSARC as seeded, with a randomisation list (no stratification factor)."""
    call_command("load_seed_trials", verbosity=0)
    study = Study.objects.get(code="STEREOSARC")
    list_maker = UserFactory(username="sam_sponsor")
    randomisation_list_generate(study=study, by=list_maker, slots_per_stratum=20)
    return study


@pytest.fixture
def study_site(study):
    return study.study_sites.order_by("number").first()


@pytest.fixture
def investigator(study, study_site):
    user = UserFactory(username="ivy_investigator")
    MembershipFactory(
        user=user, study=study, study_site=study_site, role=Role.INVESTIGATOR, blinded=True
    )
    return user


def _log_in(page, live_server, username: str) -> None:
    page.goto(live_server.url + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]:has-text('Log in')")
    expect(page.get_by_test_id("current-user")).to_be_visible()


def _fill_lab_rows(page, sampled_on: str) -> None:
    """The labs formset offers one row per analyte, the analyte already chosen: fill them in."""
    total = int(page.locator("input[name=labs-TOTAL_FORMS]").input_value())
    rows = {page.locator(f"select[name=labs-{i}-analyte]").input_value(): i for i in range(total)}
    for analyte, value, unit, uln in STEREOSARC_LABS:
        i = rows[analyte]
        page.fill(f"input[name=labs-{i}-value]", value)
        page.select_option(f"select[name=labs-{i}-unit]", unit)
        page.fill(f"input[name=labs-{i}-uln]", uln)
        page.fill(f"input[name=labs-{i}-sampled_on]", sampled_on)


def test_investigator_screens_checks_eligibility_consents_and_randomises_a_patient(
    page, live_server, study_site, investigator
):
    today = timezone.localdate()
    _log_in(page, live_server, "ivy_investigator")

    # Screening.
    page.goto(f"{live_server.url}/sites/{study_site.pk}/patients/")
    page.get_by_role("link", name="Screen a new patient").click()
    page.fill("input[name=screening_number]", "SCR-042")
    page.fill("input[name=screened_on]", today.isoformat())
    page.select_option("select[name=sex]", "M")
    page.fill("input[name=age_at_consent]", "55")
    page.get_by_role("button", name="Add to the screening log").click()
    expect(page).to_have_url(PATIENT_PATH)
    expect(page.get_by_test_id("patient-status")).to_contain_text("Screening")

    # Eligibility data: facts, two progressing lesions and the labs, in one save.
    page.get_by_role("link", name="Eligibility data").click()
    page.fill("input[name=ecog]", "1")
    page.fill("input[name=current_line]", "1")
    page.fill("input[name=prior_lines]", "1")
    page.fill("input[name=planned_treatment_start]", (today + timedelta(days=7)).isoformat())
    for i, (organ, diameter) in enumerate((("lung", "22"), ("liver", "18"))):
        page.fill(f"input[name=lesions-{i}-organ]", organ)
        page.fill(f"input[name=lesions-{i}-diameter_mm]", diameter)
        page.check(f"input[name=lesions-{i}-progressing]")
    _fill_lab_rows(page, (today - timedelta(days=2)).isoformat())
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(CHECKLIST_PATH)

    # Checklist: the computed column agrees; answer every criterion as satisfied.
    for criterion in ("inclusion-7", "inclusion-5"):
        row = page.locator(f"tr[data-criterion={criterion}]")
        expect(row.locator(".badge")).to_have_text("satisfied")
    radios = page.locator("input[type=radio][value=yes]")
    expect(radios).not_to_have_count(0)
    for i in range(radios.count()):
        radios.nth(i).check()
    page.get_by_role("button", name="Save the checklist").click()
    expect(page).to_have_url(PATIENT_PATH)

    # Consent.
    page.get_by_role("link", name="Record consent").click()
    page.fill("input[name=consented_on]", today.isoformat())
    page.fill("input[name=form_version]", "v2.0")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(PATIENT_PATH)

    # Randomisation.
    page.get_by_role("link", name="Randomise").click()
    page.get_by_role("button", name="Confirm randomisation").click()
    expect(page).to_have_url(PATIENT_PATH)

    expect(page.get_by_test_id("subject-id")).to_have_text(f"STEREOSARC-{study_site.number}-001")
    expect(page.get_by_test_id("patient-status")).to_contain_text("Enrolled")
    expect(page.get_by_test_id("patient-arm")).to_have_text(ARMS)
