"""A monitor raises a query on a haemoglobin result from the casebook; the investigator corrects
the value on the lab form (with the reason for change) and answers; the monitor closes the query;
the investigator signs the casebook with their password and sees the signature."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from patients import lab_services
from patients.models import DataQuery, LabResult, NormalRange, Signature
from patients.services import patient_enrol
from studies.models import Study
from studies.roles import Role
from tests.browser.test_lesions_flow import _log_in
from tests.factories import MembershipFactory, UserFactory
from tests.patients.conftest import make_ready, today

pytestmark = pytest.mark.browser


@pytest.fixture
def lab(transactional_db):
    call_command("load_seed_trials", verbosity=0)
    study = Study.objects.get(code="STORM-01")
    study_site = study.study_sites.order_by("number").first()
    investigator = UserFactory(username="ivy_investigator", first_name="Ivy", last_name="Roux")
    MembershipFactory(user=investigator, study=study, study_site=study_site, role=Role.INVESTIGATOR)
    monitor = UserFactory(username="carl_monitor")
    MembershipFactory(user=monitor, study=study, role=Role.MONITOR, blinded=True)
    patient = make_ready(study, investigator)
    patient_enrol(patient=patient, by=investigator)
    patient.refresh_from_db()
    NormalRange.objects.create(study_site=study_site, analyte="haemoglobin", lln=12, unit="g/dL")
    [result] = lab_services.lab_record(
        patient=patient,
        by=investigator,
        sampled_on=today() - timedelta(days=1) if patient.enrolled_on < today() else today(),
        results=[("haemoglobin", Decimal("7.9"), "g/dL")],
    )
    return result


def _log_out(page):
    page.context.clear_cookies()


def test_a_query_is_raised_answered_with_a_correction_closed_then_the_casebook_signed(
    page, live_server, lab
):
    patient = lab.patient
    casebook_url = f"{live_server.url}/patients/{patient.pk}/casebook/"

    # The monitor raises a query on the value from the casebook.
    _log_in(page, live_server, "carl_monitor")
    page.goto(casebook_url)
    row = page.get_by_test_id(f"form-row-lab:{lab.pk}")
    expect(row.get_by_test_id(f"status-lab:{lab.pk}")).to_have_text("Complete")
    row.get_by_role("link", name="Raise query").click()
    page.select_option("select[name=field]", "value")
    page.fill("textarea[name=text]", "Please check the haemoglobin against the lab report.")
    page.get_by_role("button", name="Open the query").click()
    expect(page.get_by_test_id("query-status")).to_have_text("Open")
    query = DataQuery.objects.get(patient=patient)
    assert (query.form_kind, query.object_id, query.field) == ("lab", lab.pk, "value")

    # The investigator corrects the value on the form, then answers.
    _log_out(page)
    _log_in(page, live_server, "ivy_investigator")
    page.goto(f"{live_server.url}/queries/{query.pk}/")
    page.get_by_role("link", name="Open the form").click()
    page.fill("input[name=value]", "9.7")
    page.get_by_role("button", name="Save").click()  # a change of saved data asks for a reason
    page.fill("[name=reason]", "Transcription error (lab report)")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/labs/$"))
    lab.refresh_from_db()
    assert lab.value == Decimal("9.7")
    page.goto(f"{live_server.url}/queries/{query.pk}/")
    page.fill("textarea[name=text]", "Corrected to 9.7 g/dL as on the lab report.")
    page.get_by_test_id("step-answer").click()
    expect(page.get_by_test_id("query-status")).to_have_text("Answered")

    # The monitor closes it.
    _log_out(page)
    _log_in(page, live_server, "carl_monitor")
    page.goto(f"{live_server.url}/queries/{query.pk}/")
    page.fill("textarea[name=text]", "Verified against source.")
    page.get_by_test_id("step-close").click()
    expect(page.get_by_test_id("query-status")).to_have_text("Closed")
    query.refresh_from_db()
    assert query.status == "closed"

    # The investigator signs the casebook: a wrong password first, then the right one.
    _log_out(page)
    _log_in(page, live_server, "ivy_investigator")
    page.goto(casebook_url)
    page.get_by_test_id("sign-link").click()
    expect(page.get_by_test_id("meaning")).to_have_text(
        "I confirm the data are accurate and complete."
    )
    page.fill("input[name=username]", "ivy_investigator")
    page.fill("input[name=password]", "not my password")
    page.get_by_test_id("sign-button").click()
    expect(page.get_by_text("Wrong password")).to_be_visible()
    assert not Signature.objects.exists()
    from tests.factories import PASSWORD

    page.fill("input[name=password]", PASSWORD)
    page.get_by_test_id("sign-button").click()
    expect(page.get_by_test_id("signature-valid")).to_contain_text("Ivy Roux")
    signature = Signature.objects.get(patient=patient)
    assert ["lab", lab.pk] in [f[:2] for f in signature.forms]
    assert LabResult.objects.get(pk=lab.pk).value == Decimal("9.7")
