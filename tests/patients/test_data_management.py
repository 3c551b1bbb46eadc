"""Data management (issue #8): form status matrix, source data verification, the investigator's
signature (21 CFR Part 11) and locks, on every write path."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from patients import casebook, dm_services, lab_services, locking
from patients.models import Consent, LabResult
from patients.models_dm import DataLock, Signature, SourceVerification
from studies.audit import event_model_for
from studies.roles import Role
from tests.factories import PASSWORD, MembershipFactory, PatientFactory, UserFactory
from tests.patients.conftest import today
from treatments.models import DrugCycle, DrugRegimen

pytestmark = pytest.mark.django_db


def _day(n: int):
    return today() - timedelta(days=n)


def _lab(patient, by, value="9.5", days_ago=10, analyte="haemoglobin", unit="g/dL"):
    [result] = lab_services.lab_record(
        patient=patient, by=by, sampled_on=_day(days_ago), results=[(analyte, D(value), unit)]
    )
    return result


@pytest.fixture
def dm(world):
    """Patient A of site A with a consent and two haemoglobin results; site A has ranges."""
    alice = world.user("alice_pi")
    Consent.objects.create(
        patient=world.patient_a, consented_on=_day(300), form_version="v1", obtained_by=alice
    )
    lab_services.normal_range_save(
        study_site=world.site_a,
        analyte="haemoglobin",
        lln=D("12.0"),
        uln=D("16.0"),
        unit="g/dL",
        by=alice,
    )
    world.lab1 = _lab(world.patient_a, alice, "9.5", 20)
    world.lab2 = _lab(world.patient_a, alice, "11.0", 10)
    return world


def _statuses(patient, user):
    book = casebook.build(patient, user=user)
    return {form.token: form.status for form in book.forms}, book


# --- the casebook -----------------------------------------------------------------------------


def test_the_casebook_lists_each_form_with_its_status_and_the_expected_missing_ones(dm):
    statuses, book = _statuses(dm.patient_a, dm.user("alice_pi"))
    assert statuses[f"lab:{dm.lab1.pk}"] == casebook.COMPLETE
    assert statuses[f"consent:{Consent.objects.get(patient=dm.patient_a).pk}"] == casebook.COMPLETE
    screening = book.matrix[0]
    # Enrolled without eligibility data or a baseline scan: both show as not started.
    assert screening.cells["eligibility"] == [casebook.NOT_STARTED]
    assert screening.cells["baseline"] == [casebook.NOT_STARTED]
    issues = {
        (i.kind, i.issue) for i in casebook.site_worklist(dm.site_a, user=dm.user("alice_pi"))
    }
    assert ("eligibility", casebook.MISSING) in issues and ("baseline", casebook.MISSING) in issues


def test_the_list_of_forms_is_every_form_with_its_hash_less_the_hash(dm):
    ids = [dm.patient_a.pk, dm.patient_b.pk]
    hashed = casebook.form_rows(ids)
    listed = casebook.form_list(ids)
    assert len(hashed) >= 3  # the consent and the two labs
    assert [row._replace(hash=None) for row in hashed] == listed
    assert all(row.hash is None and row.verified_hash is None for row in listed)


def test_the_content_hash_changes_with_any_value_and_only_then(dm):
    before = casebook.current_hashes(dm.patient_a.pk)
    assert casebook.current_hashes(dm.patient_a.pk) == before
    LabResult.objects.filter(pk=dm.lab1.pk).update(value=D("9.6"))
    after = casebook.current_hashes(dm.patient_a.pk)
    assert after[("lab", dm.lab1.pk)] != before[("lab", dm.lab1.pk)]
    assert after[("lab", dm.lab2.pk)] == before[("lab", dm.lab2.pk)]


def test_the_casebook_page_shows_the_matrix_to_everyone_who_sees_the_patient(dm, client, login):
    url = reverse("casebook", kwargs={"patient_pk": dm.patient_a.pk})
    assert client.get(url).status_code == 302  # anonymous: to the login page
    assert login(dm.user("bob_pi_site_b")).get(url).status_code == 404
    for name in ("alice_pi", "nina_nurse", "carl_monitor", "dora_datamanager"):
        response = login(dm.user(name)).get(url)
        assert response.status_code == 200
        html = response.content.decode()
        assert 'data-testid="form-matrix"' in html and 'data-testid="cell-complete"' in html
    monitor_html = login(dm.user("carl_monitor")).get(url).content.decode()
    assert 'data-testid="verify-button"' in monitor_html
    assert 'data-testid="sign-link"' not in monitor_html
    assert "Raise query" in monitor_html
    assert "Raise query" not in login(dm.user("nina_nurse")).get(url).content.decode()
    assert 'data-testid="sign-link"' in login(dm.user("alice_pi")).get(url).content.decode()


def test_the_patient_page_links_the_casebook_and_queries_only_to_who_may_read_them(dm, login):
    url = reverse("patient_detail", kwargs={"patient_pk": dm.patient_a.pk})
    queries = reverse("patient_queries", kwargs={"patient_pk": dm.patient_a.pk})
    for name, sees_queries in (
        ("nina_nurse", True),
        ("carl_monitor", True),
        ("tom_statistician", False),
    ):
        html = login(dm.user(name)).get(url).content.decode()
        assert 'data-testid="casebook-link"' in html
        assert (queries in html) is sees_queries


def test_the_casebook_query_count_is_flat_from_2_to_12_forms(
    dm, login, django_assert_max_num_queries
):
    client = login(dm.user("carl_monitor"))
    url = reverse("casebook", kwargs={"patient_pk": dm.patient_a.pk})
    client.get(url)
    with django_assert_max_num_queries(12) as small:
        assert client.get(url).status_code == 200
    for n in range(10):
        _lab(dm.patient_a, dm.user("alice_pi"), "10.0", 30 + n)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(url).status_code == 200


def test_the_site_worklist_query_count_is_flat(dm, login, django_assert_max_num_queries):
    client = login(dm.user("carl_monitor"))
    url = reverse("site_forms", kwargs={"site_pk": dm.site_a.pk})
    client.get(url)
    with django_assert_max_num_queries(12) as small:
        assert client.get(url).status_code == 200
    for _n in range(8):
        PatientFactory(study_site=dm.site_a)
    with django_assert_max_num_queries(len(small.captured_queries)):
        html = client.get(url).content.decode()
    # Patient A lacks eligibility and baseline; each new patient also lacks a consent.
    assert html.count('data-testid="issue-missing"') == 2 + 8 * 3
    assert login(dm.user("bob_pi_site_b")).get(url).status_code == 404


def test_a_blinded_user_does_not_see_study_drug_forms_of_a_double_blind_study(world):
    patient = world.patient_c
    regimen = DrugRegimen.objects.create(
        study=world.s2,
        arm=world.s2.arms.get(code="A"),
        agent_id=_agent().pk,
        dose=D("150"),
        dose_basis="flat",
        route="oral",
        days_per_cycle=3,
        cycle_length_days=21,
        max_cycles=4,
    )
    cycle = DrugCycle.objects.create(
        patient=patient,
        regimen=regimen,
        number=1,
        planned_on=_day(5),
        planned_daily_mg=D("150"),
        planned_total_mg=D("450"),
        status="given",
    )
    blinded = UserFactory(username="blind_monitor")
    MembershipFactory(user=blinded, study=world.s2, role=Role.MONITOR, blinded=True)
    seen = {f.token for f in casebook.build(patient, user=blinded).forms}
    assert f"drug:{cycle.pk}" not in seen
    unblinded = {f.token for f in casebook.build(patient, user=world.user("pete_planner")).forms}
    assert f"drug:{cycle.pk}" in unblinded


def _agent():
    from treatments.models import Agent

    return Agent.objects.get_or_create(name="Test agent", defaults={"drug_class": "other"})[0]


# --- source data verification -----------------------------------------------------------------


def test_the_monitor_verifies_forms_and_a_later_change_resets_them(dm, login):
    monitor = login(dm.user("carl_monitor"))
    token = f"lab:{dm.lab1.pk}"
    response = monitor.post(
        reverse("casebook_verify", kwargs={"patient_pk": dm.patient_a.pk}), {"form": [token]}
    )
    assert response.status_code == 302
    statuses, _book = _statuses(dm.patient_a, dm.user("carl_monitor"))
    assert statuses[token] == casebook.VERIFIED
    assert statuses[f"lab:{dm.lab2.pk}"] == casebook.COMPLETE
    # The site corrects the value with a reason: no longer verified, flagged as changed.
    lab_services.lab_record(
        patient=dm.patient_a,
        by=dm.user("alice_pi"),
        sampled_on=dm.lab1.sampled_on,
        results=[("haemoglobin", D("9.7"), "g/dL")],
        lab=dm.lab1,
        reason="Transcription error",
    )
    book = casebook.build(dm.patient_a, user=dm.user("carl_monitor"))
    form = next(f for f in book.forms if f.token == token)
    assert form.status == casebook.COMPLETE and form.changed_since_verification
    assert SourceVerification.objects.get(object_id=dm.lab1.pk).verified_by == dm.user(
        "carl_monitor"
    )


def test_only_the_monitor_verifies(dm, login):
    url = reverse("casebook_verify", kwargs={"patient_pk": dm.patient_a.pk})
    for name in ("alice_pi", "nina_nurse", "dora_datamanager"):
        assert login(dm.user(name)).post(url, {"form": [f"lab:{dm.lab1.pk}"]}).status_code == 403
    assert login(dm.user("bob_pi_site_b")).post(url, {"form": ["lab:1"]}).status_code == 404
    assert not SourceVerification.objects.exists()


# --- signature --------------------------------------------------------------------------------


def _sign(client, patient, password=PASSWORD, **extra):
    return client.post(
        reverse("casebook_sign", kwargs={"patient_pk": patient.pk}),
        {
            "username": extra.pop("username", "alice_pi"),
            "password": password,
            "scope": "casebook",
            **extra,
        },
    )


def test_the_investigator_signs_with_the_password_and_the_signature_records_part_11_items(
    dm, login
):
    alice = dm.user("alice_pi")
    alice.first_name, alice.last_name = "Alice", "Martin"
    alice.save()
    response = _sign(login(alice), dm.patient_a)
    assert response.status_code == 302
    signature = Signature.objects.get(patient=dm.patient_a)
    assert signature.printed_name == "Alice Martin"
    assert signature.meaning == "I confirm the data are accurate and complete."
    assert signature.signed_at.utcoffset() == timedelta(0)
    assert {tuple(f[:2]) for f in signature.forms} >= {("lab", dm.lab1.pk), ("lab", dm.lab2.pk)}
    assert signature.content_hash == casebook.signature_hash(signature.forms)
    statuses, book = _statuses(dm.patient_a, alice)
    assert statuses[f"lab:{dm.lab1.pk}"] == casebook.SIGNED
    assert book.valid_signature is not None
    html = login(alice).get(reverse("casebook", kwargs={"patient_pk": dm.patient_a.pk}))
    assert 'data-testid="signature-valid"' in html.content.decode()


def test_a_wrong_password_signs_nothing_and_counts_toward_the_lockout(dm, login, client):
    alice = dm.user("alice_pi")
    signer = login(alice)
    response = _sign(signer, dm.patient_a, password="wrong password!")
    assert response.status_code == 200
    assert "Wrong password" in response.content.decode()
    assert not Signature.objects.exists()
    from axes.models import AccessAttempt

    assert AccessAttempt.objects.filter(username=alice.username).get().failures_since_start == 1
    for _n in range(4):
        response = _sign(signer, dm.patient_a, password="wrong password!")
    assert response.status_code == 429  # locked out, as after failed logins, and logged out
    assert "_auth_user_id" not in signer.session
    assert not Signature.objects.exists()
    client.logout()
    login_response = client.post(
        reverse("login"), {"username": alice.username, "password": PASSWORD}
    )
    assert login_response.status_code in (403, 429)  # the right password no longer logs in


def test_signing_needs_the_signers_own_user_name(dm, login):
    response = _sign(login(dm.user("alice_pi")), dm.patient_a, username="nina_nurse")
    assert response.status_code == 200
    assert "This is not your user name." in response.content.decode()
    assert not Signature.objects.exists()


def test_only_the_sites_principal_investigator_signs(dm, login):
    url = reverse("casebook_sign", kwargs={"patient_pk": dm.patient_a.pk})
    for name in ("nina_nurse", "carl_monitor", "dora_datamanager"):
        assert login(dm.user(name)).post(url, {"password": PASSWORD}).status_code == 403
    assert login(dm.user("bob_pi_site_b")).get(url).status_code == 404
    assert not Signature.objects.exists()


def test_forms_in_progress_cannot_be_signed(dm):
    from lesions.models import ImagingAssessment

    ImagingAssessment.objects.create(
        patient=dm.patient_a, scan_date=_day(5), modality="CT", is_baseline=False
    )  # no measurement: in progress
    request = _request_for(dm.user("alice_pi"))
    with pytest.raises(Exception, match="in progress"):
        dm_services.casebook_sign(
            request=request, patient=dm.patient_a, by=dm.user("alice_pi"), password=PASSWORD
        )
    assert not Signature.objects.exists()


def _request_for(user):
    from django.test import RequestFactory

    request = RequestFactory().post("/")
    request.user = user
    return request


def _signed(dm):
    return dm_services.casebook_sign(
        request=_request_for(dm.user("alice_pi")),
        patient=dm.patient_a,
        by=dm.user("alice_pi"),
        password=PASSWORD,
    )


def _signature_valid(dm) -> bool:
    return casebook.build(dm.patient_a, user=dm.user("alice_pi")).valid_signature is not None


def test_the_signature_is_invalidated_by_a_change_through_the_form(dm, login):
    _signed(dm)
    assert _signature_valid(dm)
    url = reverse("lab_edit", kwargs={"patient_pk": dm.patient_a.pk, "lab_pk": dm.lab2.pk})
    data = {
        "sampled_on": dm.lab2.sampled_on.isoformat(),
        "analyte": "haemoglobin",
        "value": "11.5",
        "unit": "g/dL",
        "reason": "Typo",
    }
    assert login(dm.user("nina_nurse")).post(url, data).status_code == 302
    assert not _signature_valid(dm)
    html = login(dm.user("alice_pi")).get(
        reverse("casebook", kwargs={"patient_pk": dm.patient_a.pk})
    )
    assert 'data-testid="needs-resigning"' in html.content.decode()


def test_the_signature_is_invalidated_by_a_change_through_the_admin(dm, login):
    _signed(dm)
    from patients.models import NormalRange

    normal_range = NormalRange.objects.get(study_site=dm.site_a, analyte="haemoglobin")
    admin = login(dm.user("sam_sponsor"))
    url = reverse("admin:patients_normalrange_change", args=[normal_range.pk])
    response = admin.post(
        url, {"lln": "11.0", "uln": "16.0", "unit": "g/dL", "reason": "Lab changed its range"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert LabResult.objects.get(pk=dm.lab2.pk).lln == D("11.0")  # re-graded with the new range
    assert not _signature_valid(dm)


def test_the_signature_is_invalidated_by_a_bulk_update_and_by_raw_sql(dm):
    _signed(dm)
    LabResult.objects.filter(pk=dm.lab1.pk).update(value=D("9.4"))
    assert not _signature_valid(dm)
    _signed(dm)
    assert _signature_valid(dm)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE patients_labresult SET unit = 'g/L' WHERE id = %s", [dm.lab2.pk])
    assert not _signature_valid(dm)


def test_the_sponsor_lists_signatures_and_locks_read_only_in_the_admin(dm, login):
    _signed(dm)
    _lock(dm)
    admin = login(dm.user("dora_datamanager"))
    html = admin.get(reverse("admin:patients_signature_changelist")).content.decode()
    assert dm.patient_a.subject_id in html
    assert (
        dm.patient_a.subject_id
        in admin.get(reverse("admin:patients_datalock_changelist")).content.decode()
    )
    signature = Signature.objects.get()
    response = admin.post(
        reverse("admin:patients_signature_change", args=[signature.pk]), {"printed_name": "X"}
    )
    assert response.status_code == 403
    assert Signature.objects.get().printed_name == signature.printed_name


def test_a_deleted_form_invalidates_the_signature_and_signatures_are_never_edited(dm):
    signature = _signed(dm)
    LabResult.objects.filter(pk=dm.lab1.pk).delete()
    assert not _signature_valid(dm)
    with pytest.raises(DatabaseError), transaction.atomic():
        Signature.objects.filter(pk=signature.pk).update(printed_name="Someone else")
    with pytest.raises(DatabaseError), transaction.atomic():
        Signature.objects.filter(pk=signature.pk).delete()


# --- locks -------------------------------------------------------------------------------------


def _lock(dm, level="patient", **extra):
    defaults = {"patient": dm.patient_a} if level in ("patient", "form") else {}
    if level == "site":
        defaults = {"study_site": dm.site_a}
    return locking.lock_create(
        study=dm.s1,
        level=level,
        reason="Interim analysis",
        by=dm.user("dora_datamanager"),
        **{**defaults, **extra},
    )


def test_a_locked_patient_cannot_be_edited_through_the_forms(dm, login):
    _lock(dm)
    nurse = login(dm.user("nina_nurse"))
    url = reverse("lab_edit", kwargs={"patient_pk": dm.patient_a.pk, "lab_pk": dm.lab1.pk})
    response = nurse.get(url)
    assert response.status_code == 409
    assert "These data are locked" in response.content.decode()
    data = {
        "sampled_on": dm.lab1.sampled_on.isoformat(),
        "analyte": "haemoglobin",
        "value": "8.0",
        "unit": "g/dL",
        "reason": "x",
    }
    assert nurse.post(url, data).status_code == 409
    assert (
        nurse.post(reverse("lab_new", kwargs={"patient_pk": dm.patient_a.pk}), data).status_code
        == 409
    )
    assert LabResult.objects.get(pk=dm.lab1.pk).value == D("9.5")
    assert LabResult.objects.filter(patient=dm.patient_a).count() == 2


def test_a_lock_holds_against_bulk_updates_raw_sql_and_deletes(dm):
    _lock(dm, level="site")
    for write in (
        lambda: LabResult.objects.filter(pk=dm.lab1.pk).update(value=D("1")),
        lambda: LabResult.objects.filter(pk=dm.lab1.pk).delete(),
        lambda: Consent.objects.filter(patient=dm.patient_a).update(form_version="v9"),
        lambda: PatientFactory(study_site=dm.site_a),  # no new patient at a locked site
    ):
        with pytest.raises(DatabaseError) as caught, transaction.atomic():
            write()
        assert locking.is_lock_error(caught.value)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE patients_labresult SET value = 1 WHERE id = %s", [dm.lab1.pk])
    assert LabResult.objects.get(pk=dm.lab1.pk).value == D("9.5")
    # Site B of the same study is not locked.
    PatientFactory(study_site=dm.site_b)


def test_a_lock_holds_against_the_admin(dm, login):
    _lock(dm, level="study")
    from patients.models import NormalRange

    normal_range = NormalRange.objects.get(study_site=dm.site_a, analyte="haemoglobin")
    url = reverse("admin:patients_normalrange_change", args=[normal_range.pk])
    response = login(dm.user("sam_sponsor")).post(
        url, {"lln": "11.0", "uln": "16.0", "unit": "g/dL", "reason": "Lab changed its range"}
    )
    assert response.status_code == 409  # re-grading the locked results was refused
    assert NormalRange.objects.get(pk=normal_range.pk).lln == D("12.0")  # nothing half-saved
    assert LabResult.objects.get(pk=dm.lab1.pk).lln == D("12.0")


def test_a_form_lock_freezes_that_form_only(dm):
    _lock(dm, level="form", form_kind="lab", object_id=dm.lab1.pk)
    with pytest.raises(DatabaseError), transaction.atomic():
        LabResult.objects.filter(pk=dm.lab1.pk).update(value=D("1"))
    LabResult.objects.filter(pk=dm.lab2.pk).update(value=D("11.1"))
    statuses, _book = _statuses(dm.patient_a, dm.user("carl_monitor"))
    assert statuses[f"lab:{dm.lab1.pk}"] == casebook.LOCKED
    assert statuses[f"lab:{dm.lab2.pk}"] == casebook.COMPLETE


def test_the_data_manager_locks_and_unlocks_with_reasons_both_audited(dm, login):
    manager = login(dm.user("dora_datamanager"))
    lock_url = reverse("casebook_lock", kwargs={"patient_pk": dm.patient_a.pk})
    manager.post(lock_url, {"reason": ""})
    assert not DataLock.objects.exists()  # a reason is required
    assert manager.post(lock_url, {"reason": "Database freeze"}).status_code == 302
    lock = DataLock.objects.get()
    assert (lock.level, lock.locked_by) == ("patient", dm.user("dora_datamanager"))
    unlock_url = reverse("unlock", kwargs={"lock_pk": lock.pk})
    manager.post(unlock_url, {"reason": ""})
    assert DataLock.objects.get().released_at is None
    manager.post(unlock_url, {"reason": "Query answered late"})
    lock.refresh_from_db()
    assert lock.released_at is not None and lock.release_reason == "Query answered late"
    events = event_model_for(DataLock).objects.filter(pgh_obj_id=lock.pk).order_by("pgh_id")
    assert [e.pgh_context.metadata["reason"] for e in events] == [
        "Database freeze",
        "Query answered late",
    ]
    LabResult.objects.filter(pk=dm.lab1.pk).update(value=D("9.9"))  # editable again


def test_only_data_managers_lock_and_unlock(dm, login):
    lock_url = reverse("casebook_lock", kwargs={"patient_pk": dm.patient_a.pk})
    for name in ("alice_pi", "nina_nurse", "carl_monitor", "tom_statistician"):
        assert login(dm.user(name)).post(lock_url, {"reason": "x"}).status_code == 403
    assert not DataLock.objects.exists()
    lock = _lock(dm)
    for name in ("alice_pi", "carl_monitor"):
        response = login(dm.user(name)).post(
            reverse("unlock", kwargs={"lock_pk": lock.pk}), {"reason": "x"}
        )
        assert response.status_code == 403
    outsider = login(dm.user("pete_planner"))
    assert (
        outsider.post(reverse("unlock", kwargs={"lock_pk": lock.pk}), {"reason": "x"}).status_code
        == 404
    )
    assert DataLock.objects.get().released_at is None


def test_the_study_locks_page_locks_the_study_and_a_site(dm, login):
    manager = login(dm.user("dora_datamanager"))
    url = reverse("study_locks", kwargs={"study_pk": dm.s1.pk})
    assert manager.post(url, {"reason": "Final analysis"}).status_code == 302
    assert DataLock.objects.get().level == "study"
    response = manager.post(
        reverse("site_lock", kwargs={"site_pk": dm.site_b.pk}), {"reason": "Site closed"}
    )
    assert response.status_code == 302
    html = manager.get(url).content.decode()
    assert "Final analysis" in html and "Site closed" in html
    assert login(dm.user("alice_pi")).get(url).status_code == 403
    assert login(dm.user("pete_planner")).get(url).status_code == 404


def test_a_site_monitor_lists_no_lock_of_another_sites_patient(dm, login):
    locking.lock_create(
        study=dm.s1,
        level="patient",
        patient=dm.patient_b,
        reason="Site B audit",
        by=dm.user("dora_datamanager"),
    )
    _lock(dm)
    site_monitor = UserFactory(username="mia_site_monitor")
    MembershipFactory(user=site_monitor, study=dm.s1, study_site=dm.site_a, role=Role.MONITOR)
    html = login(site_monitor).get(reverse("study_locks", kwargs={"study_pk": dm.s1.pk}))
    page = html.content.decode()
    assert "Interim analysis" in page
    assert "Site B audit" not in page and dm.patient_b.subject_id not in page
    everything = login(dm.user("dora_datamanager")).get(
        reverse("study_locks", kwargs={"study_pk": dm.s1.pk})
    )
    assert "Site B audit" in everything.content.decode()


# --- The site worklist hashes only verified and signed forms (issue #9) ----------------------


def _changed(dm) -> set[tuple[str, int]]:
    return {
        (i.kind, i.object_id)
        for i in casebook.site_worklist(dm.site_a, user=dm.user("alice_pi"))
        if i.issue == casebook.CHANGED
    }


def test_the_site_worklist_flags_forms_changed_since_verification_or_signature(dm):
    assert _changed(dm) == set()
    dm_services.forms_verify(
        patient=dm.patient_a, keys={("lab", dm.lab1.pk)}, by=dm.user("carl_monitor")
    )
    assert _changed(dm) == set()
    assert casebook.completeness_by_site(dm.s1.pk)[dm.site_a.pk].verified == 1
    LabResult.objects.filter(pk=dm.lab1.pk).update(value=D("9.6"))  # no signal, no audit hook
    assert _changed(dm) == {("lab", dm.lab1.pk)}
    assert casebook.completeness_by_site(dm.s1.pk)[dm.site_a.pk].verified == 0

    _signed(dm)  # the whole casebook, as it is now
    assert _changed(dm) == {("lab", dm.lab1.pk)}  # still changed since verification
    assert casebook.completeness_by_site(dm.s1.pk)[dm.site_a.pk].signed >= 2
    with connection.cursor() as cursor:
        cursor.execute("UPDATE patients_labresult SET unit = 'g/L' WHERE id = %s", [dm.lab2.pk])
    # The signature no longer holds: every form it covers shows as changed.
    changed = _changed(dm)
    assert ("lab", dm.lab2.pk) in changed and ("lab", dm.lab1.pk) in changed
    assert casebook.completeness_by_site(dm.s1.pk)[dm.site_a.pk].signed == 0


def test_the_site_worklist_query_count_is_flat_with_verified_and_signed_forms(
    dm, login, django_assert_max_num_queries
):
    dm_services.forms_verify(
        patient=dm.patient_a, keys={("lab", dm.lab1.pk)}, by=dm.user("carl_monitor")
    )
    _signed(dm)
    client = login(dm.user("carl_monitor"))
    url = reverse("site_forms", kwargs={"site_pk": dm.site_a.pk})
    client.get(url)
    with django_assert_max_num_queries(12) as small:
        assert client.get(url).status_code == 200
    for n in range(10):
        _lab(dm.patient_a, dm.user("alice_pi"), "10.0", 30 + n)
    _signed(dm)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(url).status_code == 200
