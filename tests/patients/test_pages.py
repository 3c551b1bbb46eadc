"""The patient pages: screening, checklist, consent, enrolment, unblinding, and the list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from patients import services
from patients.models import EmergencyUnblinding, Patient
from studies.models import OutboxEmail
from studies.roles import Role
from studies.services import randomisation_list_generate
from tests.factories import PASSWORD, MembershipFactory, PatientFactory, UserFactory
from tests.patients.conftest import fill_facts, make_ready, screen, site_of, today

pytestmark = pytest.mark.django_db


def test_a_nurse_screens_a_patient_from_the_form(seeds, investigator, client):
    storm = seeds["STORM-01"]
    client.force_login(investigator)
    url = reverse("patient_screen", kwargs={"site_pk": site_of(storm).pk})
    response = client.post(
        url,
        {
            "screening_number": "SCR-01",
            "screened_on": today().isoformat(),
            "sex": "M",
            "age_at_consent": "70",
        },
    )
    patient = Patient.objects.get(screening_number="SCR-01")
    assert response["Location"] == reverse("patient_detail", kwargs={"patient_pk": patient.pk})
    assert patient.status == "screening" and patient.subject_id is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"screened_on": "2999-01-01"}, "This date is in the future."),
        ({"age_at_consent": "130"}, "less than or equal to 120"),
        ({"screening_number": "DUP"}, "already used at this site"),
    ],
)
def test_bad_screening_input_gets_a_clear_error_and_saves_nothing(
    seeds, investigator, client, data, message
):
    storm = seeds["STORM-01"]
    screen(storm, investigator, number="DUP")
    client.force_login(investigator)
    before = Patient.objects.count()
    form = {
        "screening_number": "NEW",
        "screened_on": today().isoformat(),
        "sex": "F",
        "age_at_consent": "60",
        **data,
    }
    response = client.post(reverse("patient_screen", kwargs={"site_pk": site_of(storm).pk}), form)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Patient.objects.count() == before


def test_the_checklist_page_shows_computed_results_and_refuses_a_contradiction(
    seeds, investigator, client
):
    storm = seeds["STORM-01"]
    patient = screen(storm, investigator, age_at_consent=17)
    fill_facts(patient)
    client.force_login(investigator)
    url = reverse("patient_eligibility", kwargs={"patient_pk": patient.pk})
    page = client.get(url).content.decode()
    assert "age 17" in page and "not satisfied" in page
    answers = {f"criterion_{c.criterion.pk}": "yes" for c in services.eligibility_checks(patient)}
    response = client.post(url, answers)
    assert response.status_code == 200
    assert "The entered data contradict this answer" in response.content.decode()
    assert not patient.eligibility.exists()


def test_a_future_consent_date_is_refused_on_the_form(seeds, investigator, client):
    patient = screen(seeds["STORM-01"], investigator)
    client.force_login(investigator)
    response = client.post(
        reverse("patient_consent", kwargs={"patient_pk": patient.pk}),
        {"consented_on": (today() + timedelta(days=2)).isoformat(), "form_version": "v3"},
    )
    assert "This date is in the future." in response.content.decode()
    assert not patient.consents.exists()


def test_enrolment_needs_the_confirmation_step(seeds, investigator, client):
    patient = make_ready(seeds["STORM-01"], investigator)
    client.force_login(investigator)
    url = reverse("patient_enrol", kwargs={"patient_pk": patient.pk})
    assert client.post(url, {}).status_code == 200  # no confirmation: nothing happens
    patient.refresh_from_db()
    assert patient.subject_id is None
    response = client.post(url, {"confirm": "yes"})
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.subject_id.startswith("STORM01-")


def test_enrolling_an_ineligible_patient_shows_why(seeds, investigator, client):
    patient = screen(seeds["STORM-01"], investigator)
    client.force_login(investigator)
    response = client.post(
        reverse("patient_enrol", kwargs={"patient_pk": patient.pk}), {"confirm": "yes"}
    )
    assert "Record the patient" in response.content.decode()


def test_site_staff_can_screen_but_monitors_cannot(seeds, investigator, client):
    storm = seeds["STORM-01"]
    monitor = UserFactory(username="mo_monitor")
    MembershipFactory(user=monitor, study=storm, role=Role.MONITOR, blinded=True)
    client.force_login(monitor)
    url = reverse("patient_screen", kwargs={"site_pk": site_of(storm).pk})
    assert client.get(url).status_code == 403


def test_patient_list_searches_and_filters(seeds, investigator, client):
    storm = seeds["STORM-01"]
    screen(storm, investigator, number="FIND-ME")
    screen(storm, investigator, number="OTHER")
    client.force_login(investigator)
    url = reverse("patient_list", kwargs={"site_pk": site_of(storm).pk})
    page = client.get(url, {"q": "find"}).content.decode()
    assert "FIND-ME" in page and "OTHER" not in page
    page = client.get(url, {"status": "enrolled"}).content.decode()
    assert "FIND-ME" not in page


def test_patient_list_query_count_is_flat_from_10_to_500_patients(
    seeds, investigator, client, django_assert_max_num_queries
):
    study_site = site_of(seeds["STORM-01"])
    client.force_login(investigator)
    url = reverse("patient_list", kwargs={"site_pk": study_site.pk})
    PatientFactory.create_batch(10, study_site=study_site)
    with django_assert_max_num_queries(12) as small:
        assert client.get(url).status_code == 200
    PatientFactory.create_batch(490, study_site=study_site)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(url, {"page": 3}).status_code == 200


def _stop2_randomised(seeds, investigator):
    stop2 = seeds["STOP-2"]
    randomisation_list_generate(study=stop2, by=investigator, slots_per_stratum=10)
    patient = make_ready(stop2, investigator)
    services.patient_enrol(patient=patient, by=investigator)
    patient.refresh_from_db()
    return stop2, patient


def test_emergency_unblinding_needs_the_password_and_tells_the_sponsor(seeds, investigator, client):
    stop2, patient = _stop2_randomised(seeds, investigator)
    sponsor = UserFactory(username="spo_admin", email="sponsor@example.org")
    MembershipFactory(user=sponsor, study=stop2, role=Role.SPONSOR_ADMIN, blinded=True)
    client.force_login(investigator)
    detail = reverse("patient_detail", kwargs={"patient_pk": patient.pk})
    arm_name = patient.allocation.arm.name
    page = client.get(detail).content.decode()
    url = reverse("patient_unblind", kwargs={"patient_pk": patient.pk})
    assert arm_name not in page and url in page  # the PI is offered emergency unblinding
    response = client.post(url, {"reason": "Grade 4 pneumonitis", "password": "wrong"})
    assert "This password is not correct." in response.content.decode()
    assert not EmergencyUnblinding.objects.exists() and not OutboxEmail.objects.exists()
    response = client.post(url, {"reason": "Grade 4 pneumonitis", "password": PASSWORD})
    assert response.status_code == 302
    assert arm_name in client.get(detail).content.decode()
    email = OutboxEmail.objects.get()
    assert email.to == ["sponsor@example.org"]
    assert patient.subject_id in email.body and "Grade 4 pneumonitis" in email.body
    assert arm_name not in email.body and arm_name not in email.subject
    # Another blinded user still does not see the arm.
    client.force_login(sponsor)
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=sponsor, name="t", confirmed=True)
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    assert arm_name not in client.get(detail).content.decode()


def test_only_the_pi_of_the_site_may_unblind(seeds, investigator, client):
    stop2, patient = _stop2_randomised(seeds, investigator)
    nurse = UserFactory(username="nu_nurse")
    MembershipFactory(
        user=nurse, study=stop2, study_site=site_of(stop2), role=Role.SUBINVESTIGATOR, blinded=True
    )
    client.force_login(nurse)
    url = reverse("patient_unblind", kwargs={"patient_pk": patient.pk})
    assert client.get(url).status_code == 403


def _facts_post(patient, **changes):
    """The eligibility-data form as the browser would post it, with the lab rows untouched."""
    from patients.forms import lab_formset

    labs = lab_formset(None, patient)
    data = {
        "ecog": "1",
        "current_line": "1",
        "prior_lines": "1",
        "liver_metastases": "unknown",
        "childbearing_potential": "false",
        "pregnancy_test_negative": "unknown",
        "lesions-TOTAL_FORMS": "3",
        "lesions-INITIAL_FORMS": "0",
        "lesions-MIN_NUM_FORMS": "0",
        "lesions-MAX_NUM_FORMS": "10",
        "labs-TOTAL_FORMS": str(labs.total_form_count()),
        "labs-INITIAL_FORMS": "0",
        "labs-MIN_NUM_FORMS": "0",
        "labs-MAX_NUM_FORMS": "9",
        "lesions-0-organ": "lung",
        "lesions-0-diameter_mm": "25",
        "lesions-0-progressing": "on",
        # Empty extra rows come with "progressing" ticked, as the browser shows them.
        "lesions-1-progressing": "on",
        "lesions-2-progressing": "on",
    }
    for i, form in enumerate(labs.forms):
        data[f"labs-{i}-analyte"] = form.initial["analyte"]
    data.update(changes)
    return data


def test_first_entry_of_eligibility_data_needs_no_reason_and_skips_empty_lab_rows(
    seeds, investigator, client
):
    patient = screen(seeds["STORM-01"], investigator)
    client.force_login(investigator)
    url = reverse("patient_facts", kwargs={"patient_pk": patient.pk})
    response = client.post(url, _facts_post(patient))
    assert response.status_code == 302, response.content.decode()[-3000:]
    patient.facts.refresh_from_db()
    assert patient.facts.ecog == 1
    assert patient.screening_lesions.count() == 1 and patient.screening_labs.count() == 0


def test_changing_saved_eligibility_data_needs_a_reason(seeds, investigator, client):
    from studies.audit import history_for

    patient = screen(seeds["STORM-01"], investigator)
    client.force_login(investigator)
    url = reverse("patient_facts", kwargs={"patient_pk": patient.pk})
    client.post(url, _facts_post(patient))
    data = _facts_post(patient, ecog="2")
    data["lesions-0-organ"] = ""  # the saved lesion is shown again; leave the extra rows empty
    data.update({"lesions-INITIAL_FORMS": "0"})
    response = client.post(url, {**data, "lesions-0-organ": "liver", "lesions-0-diameter_mm": "9"})
    assert "Give a reason for changing saved data" in response.content.decode()
    patient.facts.refresh_from_db()
    assert patient.facts.ecog == 1
    response = client.post(
        url,
        {
            **data,
            "lesions-0-organ": "liver",
            "lesions-0-diameter_mm": "9",
            "reason": "ECOG re-assessed",
        },
    )
    assert response.status_code == 302
    patient.facts.refresh_from_db()
    assert patient.facts.ecog == 2
    assert history_for(patient.facts)[-1].reason == "ECOG re-assessed"
