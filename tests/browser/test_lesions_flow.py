"""An investigator records a StORM-01 patient's baseline and two follow-up scans in a real browser
and reads the RECIST 1.1 response the application computed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from patients.services import patient_enrol
from studies.models import Study
from studies.roles import Role
from tests.factories import PASSWORD, MembershipFactory, UserFactory
from tests.patients.conftest import make_ready

pytestmark = pytest.mark.browser

LESIONS_PATH = re.compile(r"/patients/\d+/lesions/$")

# label, organ, category, diameter (mm), planned for SBRT: the baseline formset rows.
BASELINE_LESIONS = (
    ("T1", "lung", "target", "30", True),
    ("T2", "liver", "target", "16", False),
    ("NT1", "bone", "non_target", "", False),
)


@pytest.fixture
def study(transactional_db):
    """StORM-01 as seeded: single arm, responses need confirmation."""
    call_command("load_seed_trials", verbosity=0)
    return Study.objects.get(code="STORM-01")


@pytest.fixture
def investigator(study):
    user = UserFactory(username="ivy_investigator")
    MembershipFactory(
        user=user,
        study=study,
        study_site=study.study_sites.order_by("number").first(),
        role=Role.INVESTIGATOR,
        blinded=True,
    )
    return user


@pytest.fixture
def patient(study, investigator):
    patient = make_ready(study, investigator)
    patient_enrol(patient=patient, by=investigator)
    patient.refresh_from_db()
    return patient


def _log_in(page, live_server, username: str) -> None:
    page.goto(live_server.url + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]:has-text('Log in')")
    expect(page.get_by_test_id("current-user")).to_be_visible()


def _record_follow_up(page, scan_date: str, diameters: dict[str, str], previous: dict[str, str]):
    """From the lesions page: open the follow-up form, check the previous values, save."""
    page.get_by_role("link", name="New follow-up scan").click()
    page.fill("input[name=scan_date]", scan_date)
    page.select_option("select[name=modality]", "CT")
    page.select_option("select[name=non_target_status]", "NON_CR_NON_PD")
    page.select_option("select[name=new_lesions]", "NO")
    for label, diameter in diameters.items():
        row = page.locator(f"tr[data-lesion={label}]")
        expect(row).to_contain_text(previous[label])
        row.locator("select[name$='-state']").select_option("present")
        row.locator("input[name$='-diameter_mm']").fill(diameter)
    page.get_by_role("button", name="Save the scan").click()
    expect(page).to_have_url(LESIONS_PATH)


def test_investigator_enters_a_baseline_and_two_scans_and_reads_the_response(
    page, live_server, patient
):
    today = timezone.localdate()
    _log_in(page, live_server, "ivy_investigator")

    page.goto(f"{live_server.url}/patients/{patient.pk}/")
    page.get_by_role("link", name="Lesions and response").click()
    expect(page).to_have_url(LESIONS_PATH)

    # Baseline: two targets (T1 to be irradiated) and one non-target.
    page.get_by_role("link", name="Record the baseline scan").click()
    page.fill("input[name=scan_date]", (today - timedelta(days=120)).isoformat())
    page.select_option("select[name=modality]", "CT")
    for i, (label, organ, category, diameter, sbrt) in enumerate(BASELINE_LESIONS):
        page.fill(f"input[name=lesions-{i}-label]", label)
        page.select_option(f"select[name=lesions-{i}-organ]", organ)
        page.select_option(f"select[name=lesions-{i}-category]", category)
        page.fill(f"input[name=lesions-{i}-diameter_mm]", diameter)
        if sbrt:
            page.check(f"input[name=lesions-{i}-planned_for_sbrt]")
    page.get_by_role("button", name="Save the baseline").click()
    expect(page).to_have_url(LESIONS_PATH)
    expect(page.get_by_test_id("scan-table")).to_contain_text("46.0")

    # First follow-up: 22 + 10.2 = 32.2 mm, exactly -30.0 %: PR (not yet confirmed).
    _record_follow_up(
        page,
        (today - timedelta(days=60)).isoformat(),
        {"T1": "22", "T2": "10.2"},
        previous={"T1": "30.0 mm", "T2": "16.0 mm"},
    )
    overall = page.locator("td[data-testid=overall]")
    expect(overall).to_have_count(2)  # baseline (empty) and the follow-up
    expect(page.get_by_test_id("scan-table")).to_contain_text("-30.0 %")
    expect(overall.nth(1)).to_have_text("PR")

    # Second follow-up 40 days later: 31 mm, PR again, so the first PR is confirmed.
    _record_follow_up(
        page,
        (today - timedelta(days=20)).isoformat(),
        {"T1": "21", "T2": "10"},
        previous={"T1": "22.0 mm", "T2": "10.2 mm"},
    )
    expect(overall).to_have_count(3)
    expect(overall.nth(2)).to_have_text("PR")
    expect(page.get_by_test_id("bor")).to_contain_text("PR")

    # The burden curve: baseline and two follow-ups.
    curve = page.locator("figure svg")
    expect(curve).to_have_count(1)
    expect(curve.locator("circle")).to_have_count(3)

    # Local control: T1 was planned for SBRT.
    expect(page.get_by_role("heading", name="Local control of irradiated lesions")).to_be_visible()
    local_control = page.get_by_test_id("local-control")
    for label, irradiated in (("T1", "yes"), ("T2", "no"), ("NT1", "no")):
        row = local_control.locator("tbody tr").filter(
            has=page.get_by_role("cell", name=label, exact=True)
        )
        expect(row.locator("td").nth(1)).to_have_text(irradiated)
