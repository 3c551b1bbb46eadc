"""Adverse events (NCI CTCAE v5.0), serious adverse events, DLT and the safety pages (issue #6)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import formats, timezone, translation

from patients import ae_services
from patients.ctcae_terms import ensure_terms as ensure_ctcae_terms
from patients.models import (
    AdverseEvent,
    Allocation,
    Consent,
    CtcaeTerm,
    Patient,
    SaeReport,
    SafetyRules,
)
from studies.audit import history_for
from studies.models import Arm, OutboxEmail, Study
from studies.roles import Role
from tests.factories import MembershipFactory, PatientFactory, UserFactory
from treatments.models import Fraction, RadiotherapyCourse

pytestmark = pytest.mark.django_db

PV = ["pv@sponsor.example", "safety-desk@sponsor.example"]
DATE_FIELDS = ("onset_on", "resolved_on", "death_on")
OTHER = "General disorders and administration site conditions - Other, specify"


@pytest.fixture(autouse=True)
def _ctcae(db):
    ensure_ctcae_terms()


def today() -> date:
    return timezone.localdate()


def days(n: int) -> date:
    return today() + timedelta(days=n)


def term(name: str) -> CtcaeTerm:
    return CtcaeTerm.objects.get(term=name)


def ae_data(**changes) -> dict:
    """A valid grade 2 pneumonitis 10 days ago; dates may be given as day offsets from today."""
    data = {
        "term": "Pneumonitis",
        "term_detail": "",
        "grade": 2,
        "onset_on": -10,
        "resolved_on": None,
        "attribution_sbrt": "possible",
        "attribution_systemic": "unrelated",
        "attribution_study_drug": "na",
        "serious": False,
        **dict.fromkeys(AdverseEvent.SAE_CRITERIA, False),
        "action": "none",
        "outcome": "recovering",
        "death_on": None,
        "dlt": False,
        **changes,
    }
    if isinstance(data["term"], str):
        data["term"] = term(data["term"])
    for field in DATE_FIELDS:
        if isinstance(data[field], int):
            data[field] = days(data[field])
    return data


SERIOUS = {"grade": 3, "serious": True, "sae_hospitalisation": True}
GRADE5 = {
    "grade": 5,
    "serious": True,
    "sae_death": True,
    "outcome": "fatal",
    "death_on": -2,
}


def consent(patient, by, on: int = -60) -> None:
    Consent.objects.create(
        patient=patient, consented_on=days(on), form_version="v1", obtained_by=by
    )


def deliver(patient, first: int, n: int = 5, *, missed_before: bool = False) -> date:
    """An SBRT course of ``n`` delivered fractions from day offset ``first``; returns the last."""
    course = RadiotherapyCourse.objects.create(
        patient=patient, technique="truebeam", planned_start=days(first - 1)
    )
    number = 1
    if missed_before:
        Fraction.objects.create(
            course=course, number=number, day=days(first - 1), status="missed", reason="machine"
        )
        number += 1
    for i in range(n):
        Fraction.objects.create(course=course, number=number + i, day=days(first + i))
    return days(first + n - 1)


def allocate(patient, arm_code: str, by, part=Allocation.Part.RANDOMISED) -> None:
    arm = Arm.objects.get(study=patient.study_site.study, code=arm_code)
    Allocation.objects.create(patient=patient, arm=arm, part=part, allocated_by=by)


def record(trial, data=None, *, patient=None, ae=None, reason="", by=None):
    return ae_services.ae_record(
        patient=patient or trial.patient_a,
        by=by or trial.user("alice_pi"),
        data=data or ae_data(),
        ae=ae,
        reason=reason,
    )


@pytest.fixture
def trial(world):
    """S1 with its safety rules (DLT window 42 days, stop at 2) and consented patients."""
    SafetyRules.objects.create(
        study=world.s1,
        pharmacovigilance_emails="\n".join(PV),
        dlt_window_days=42,
        dlt_stop_count=2,
    )
    for patient in (world.patient_a, world.patient_b, world.patient_c):
        consent(patient, world.user("alice_pi"))
    return world


# --- recording ---------------------------------------------------------------------------------


def test_a_valid_adverse_event_is_saved_and_audited(trial):
    alice = trial.user("alice_pi")
    ae = record(trial)
    assert (ae.term.term, ae.grade, ae.dlt, ae.dlt_rule) == ("Pneumonitis", 2, False, "")
    first = history_for(ae)[0]
    assert (first.action, first.reason, first.user) == ("insert", "adverse event entry", "alice_pi")
    with pytest.raises(ValidationError) as caught:
        record(trial, ae_data(grade=3), ae=ae)
    assert "reason" in caught.value.message_dict
    ae.refresh_from_db()
    assert ae.grade == 2
    record(trial, ae_data(grade=3), ae=ae, reason="Grade misread from the notes", by=alice)
    last = history_for(ae)[-1]
    assert last.reason == "Grade misread from the notes" and last.user == "alice_pi"
    assert [(c.field, c.old, c.new) for c in last.changes] == [("grade", 2, 3)]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        pytest.param({"grade": 0}, "grade", "1, 2, 3, 4 or 5", id="grade-0"),
        pytest.param({"grade": 6}, "grade", "1, 2, 3, 4 or 5", id="grade-6"),
        pytest.param(
            {**GRADE5, "term": "Lymphocyte count decreased"},
            "grade",
            "does not define grade 5 for “Lymphocyte count decreased”: "
            "it defines grade(s) 1, 2, 3, 4.",
            id="grade-undefined-for-term",
        ),
        pytest.param(
            {"term": "Fatigue", "grade": 4},
            "grade",
            "it defines grade(s) 1, 2, 3.",
            id="fatigue-has-no-grade-4",
        ),
        pytest.param(
            {"resolved_on": -11}, "resolved_on", "resolution cannot be before the onset", id="res"
        ),
        pytest.param(
            {"onset_on": -61}, "onset_on", "before the patient's consent", id="before-consent"
        ),
        pytest.param({"onset_on": 1}, "onset_on", "in the future", id="future-onset"),
        pytest.param({"term": OTHER}, "term_detail", "Other, specify", id="other-specify"),
        pytest.param(
            {"serious": True}, "serious", "at least one seriousness criterion", id="no-criterion"
        ),
        pytest.param(
            {"sae_hospitalisation": True},
            "serious",
            "mark the event as serious",
            id="criterion-not-serious",
        ),
        pytest.param(
            {**GRADE5, "death_on": None}, "death_on", "needs the date of death", id="g5-no-death"
        ),
        pytest.param(
            {**GRADE5, "death_on": -11},
            "death_on",
            "death cannot be before the onset",
            id="death-before-onset",
        ),
        pytest.param(
            {**GRADE5, "outcome": "not_recovered"}, "outcome", "“Fatal”", id="g5-not-fatal"
        ),
        pytest.param(
            {**GRADE5, "sae_death": False, "sae_other": True},
            "sae_death",
            "“results in death”",
            id="g5-without-death-criterion",
        ),
        pytest.param({"death_on": -2}, "death_on", "grade 5 event only", id="death-not-g5"),
        pytest.param({"outcome": "fatal"}, "outcome", "is grade 5", id="fatal-not-g5"),
    ],
)
def test_bad_input_is_refused_with_its_message_and_nothing_saved(trial, changes, field, message):
    with pytest.raises(ValidationError) as caught:
        record(trial, ae_data(**changes))
    errors = caught.value.message_dict
    assert any(message in m for m in errors.get(field, [])), errors
    assert not AdverseEvent.objects.exists()
    assert not OutboxEmail.objects.exists()
    trial.patient_a.refresh_from_db()
    assert trial.patient_a.status == Patient.Status.ENROLLED


def test_other_specify_is_accepted_with_its_detail(trial):
    ae = record(trial, ae_data(term=OTHER, term_detail="  Hiccups after SBRT "))
    assert ae.term_detail == "Hiccups after SBRT"


def test_a_patient_not_enrolled_has_no_adverse_event(trial):
    screening = PatientFactory(
        study_site=trial.site_a, subject_id=None, status="screening", enrolled_on=None
    )
    with pytest.raises(ValidationError, match="enrolled patients only"):
        record(trial, patient=screening)
    assert not AdverseEvent.objects.exists()


def test_grade_5_moves_the_patient_off_study_for_death(trial):
    patient = trial.patient_a
    ae = record(trial, ae_data(**GRADE5))
    patient.refresh_from_db()
    assert patient.status == Patient.Status.OFF_STUDY
    assert patient.off_study_reason == Patient.OffStudyReason.DEATH
    assert patient.status_changed_on == ae.death_on == days(-2)
    assert OutboxEmail.objects.filter(key=f"sae:{ae.pk}:initial").exists()
    # Nothing can start after the patient went off study.
    with pytest.raises(ValidationError) as caught:
        record(trial, ae_data(term="Fatigue", onset_on=-1))
    assert "went off study on" in caught.value.message_dict["onset_on"][0]
    # A second death on another day is refused.
    with pytest.raises(ValidationError) as caught:
        record(trial, ae_data(**{**GRADE5, "term": "Sepsis", "onset_on": -4, "death_on": -3}))
    assert "already recorded on" in caught.value.message_dict["death_on"][0]
    # Lowering the grade of the death would leave the patient off study for nothing.
    with pytest.raises(ValidationError) as caught:
        record(trial, ae_data(grade=4), ae=ae, reason="typo")
    assert "grade" in caught.value.message_dict


def test_onset_after_off_study_is_refused_but_the_death_may_come_later(trial):
    patient = trial.patient_a
    Patient.objects.filter(pk=patient.pk).update(
        status=Patient.Status.OFF_STUDY,
        off_study_reason=Patient.OffStudyReason.LOST_TO_FOLLOW_UP,
        status_changed_on=days(-20),
    )
    with pytest.raises(ValidationError) as caught:
        record(trial, ae_data(onset_on=-10))
    assert "went off study on" in caught.value.message_dict["onset_on"][0]
    ae = record(trial, ae_data(**{**GRADE5, "onset_on": -25, "death_on": -5}))
    patient.refresh_from_db()
    assert ae.grade == 5
    assert (patient.off_study_reason, patient.status_changed_on) == ("lost_to_follow_up", days(-20))


# --- serious adverse events --------------------------------------------------------------------


def test_a_serious_event_queues_one_email_to_pharmacovigilance(trial):
    patient = trial.patient_a
    ae = record(trial, ae_data(**SERIOUS))
    email = OutboxEmail.objects.get()
    assert email.key == f"sae:{ae.pk}:initial" and email.to == PV
    assert "S1-01-001" in email.subject and "Pneumonitis grade 3" in email.subject
    for part in (
        "Patient: S1-01-001, site 01 (Alpha Institute).",
        "Grade: 3 (Severe symptoms; limiting self care ADL; oxygen indicated).",
        "Seriousness criteria: requires or prolongs hospitalisation.",
        f"Onset: {days(-10).isoformat()}.",
        "Attribution: SBRT possible; systemic therapy unrelated; study drug not applicable.",
        f"/patients/{patient.pk}/adverse-events/{ae.pk}/",
        "within 24 hours",
    ):
        assert part in email.body
    assert "alice" not in (email.subject + email.body).lower()  # never a name
    # Saved again, corrected: no second email.
    record(trial, ae_data(**SERIOUS), ae=ae, reason="saved twice")
    record(trial, ae_data(**SERIOUS, resolved_on=-1), ae=ae, reason="resolved")
    assert OutboxEmail.objects.count() == 1
    # An upgrade of the grade is told once.
    record(trial, ae_data(**{**SERIOUS, "grade": 4}), ae=ae, reason="worsened")
    record(trial, ae_data(**{**SERIOUS, "grade": 4}), ae=ae, reason="saved twice")
    upgrade = OutboxEmail.objects.exclude(key=f"sae:{ae.pk}:initial").get()
    assert upgrade.key == f"sae:{ae.pk}:grade4" and "grade 4" in upgrade.subject
    assert OutboxEmail.objects.count() == 2


def test_an_event_changed_to_serious_queues_its_email(trial):
    ae = record(trial)
    assert not OutboxEmail.objects.exists()
    record(trial, ae_data(**SERIOUS), ae=ae, reason="admitted to hospital")
    assert OutboxEmail.objects.get().key == f"sae:{ae.pk}:initial"


def test_without_pharmacovigilance_contacts_the_sponsor_admins_are_told(trial):
    SafetyRules.objects.filter(study=trial.s1).update(pharmacovigilance_emails="")
    record(trial, ae_data(**SERIOUS))
    assert OutboxEmail.objects.get().to == ["sam_sponsor@example.org"]


def _deadline_text(ae) -> str:
    start = OutboxEmail.objects.get(key=f"sae:{ae.pk}:initial").created_at
    with translation.override("en"):
        return formats.date_format(
            timezone.localtime(start + timedelta(hours=24)), "SHORT_DATETIME_FORMAT"
        )


def test_the_ae_page_shows_the_deadline_then_overdue_then_the_reports(trial, login):
    alice = trial.user("alice_pi")
    ae = record(trial, ae_data(**SERIOUS))
    client = login(alice)
    url = reverse("ae_edit", kwargs={"patient_pk": trial.patient_a.pk, "ae_pk": ae.pk})
    page = client.get(url).content.decode()
    assert 'data-testid="sae-deadline"' in page and "within 24 hours" in page
    assert _deadline_text(ae) in page
    assert 'data-testid="sae-overdue"' not in page
    assert "Severe symptoms; limiting self care ADL; oxygen indicated" in page  # grade text
    OutboxEmail.objects.update(created_at=timezone.now() - timedelta(hours=25))
    page = client.get(url).content.decode()
    assert 'data-testid="sae-overdue"' in page
    response = client.post(
        reverse("sae_report_new", kwargs={"patient_pk": trial.patient_a.pk, "ae_pk": ae.pk}),
        {"kind": "initial", "reported_on": today().isoformat(), "narrative": "Admitted, oxygen."},
    )
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert 'data-testid="sae-overdue"' not in page and "Admitted, oxygen." in page


def test_sae_reports_follow_up_until_the_final_one_closes_the_sae(trial):
    alice = trial.user("alice_pi")
    ae = record(trial, ae_data(**SERIOUS))

    def add(kind, on=0, narrative="Narrative."):
        return ae_services.sae_report_add(
            ae=ae, by=alice, kind=kind, reported_on=days(on), narrative=narrative
        )

    with pytest.raises(ValidationError) as caught:
        add("follow_up")
    assert "initial report first" in caught.value.message_dict["kind"][0]
    with pytest.raises(ValidationError) as caught:
        add("initial", on=-11)
    assert "before the onset" in caught.value.message_dict["reported_on"][0]
    with pytest.raises(ValidationError) as caught:
        add("initial", narrative="  ")
    assert "narrative" in caught.value.message_dict
    add("initial")
    with pytest.raises(ValidationError) as caught:
        add("initial")
    assert "recorded already" in caught.value.message_dict["kind"][0]
    add("follow_up")
    add("final")
    assert list(ae.sae_reports.values_list("kind", flat=True)) == [
        "initial",
        "follow_up",
        "final",
    ]
    with pytest.raises(ValidationError, match="closed by its final report"):
        add("follow_up")
    assert SaeReport.objects.count() == 3
    # Reports sent: the event stays serious.
    with pytest.raises(ValidationError) as caught:
        record(trial, ae_data(), ae=ae, reason="not serious after all")
    assert "stays a serious event" in caught.value.message_dict["serious"][0]


def test_a_non_serious_event_has_no_report(trial, login):
    ae = record(trial)
    with pytest.raises(ValidationError, match="not serious"):
        ae_services.sae_report_add(
            ae=ae, by=trial.user("alice_pi"), kind="initial", reported_on=today(), narrative="x"
        )
    url = reverse("sae_report_new", kwargs={"patient_pk": trial.patient_a.pk, "ae_pk": ae.pk})
    assert login(trial.user("alice_pi")).get(url).status_code == 404


# --- dose-limiting toxicity --------------------------------------------------------------------


def test_dlt_is_accepted_within_the_window_from_the_first_delivered_fraction(trial):
    deliver(trial.patient_a, first=-60, missed_before=True)  # the missed fraction does not count
    first = days(-60)
    ae = record(trial, ae_data(grade=3, onset_on=-18, dlt=True))  # day 42 after the first
    assert (ae.onset_on - first).days == 42
    assert ae.dlt and ae.dlt_rule == (
        "grade >= 3 related to treatment within 42 days of the first fraction"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"onset_on": -15}, "outside the DLT window", id="day-43"),
        pytest.param({"onset_on": -59}, "outside the DLT window", id="before-first-fraction"),
        pytest.param({"grade": 2}, "grade 3 or higher", id="grade-2"),
        pytest.param({"attribution_sbrt": "unlikely"}, "related to treatment", id="not-related"),
    ],
)
def test_dlt_outside_the_rule_is_refused(trial, changes, message):
    deliver(trial.patient_a, first=-58)
    with pytest.raises(ValidationError) as caught:
        record(trial, ae_data(**{"grade": 3, "onset_on": -30, "dlt": True, **changes}))
    assert any(message in m for m in caught.value.message_dict["dlt"])
    assert not AdverseEvent.objects.exists()


def test_dlt_needs_a_window_and_a_delivered_fraction(trial):
    with pytest.raises(ValidationError) as caught:
        record(trial, ae_data(grade=3, dlt=True))
    assert "No SBRT fraction has been delivered" in caught.value.message_dict["dlt"][0]
    deliver(trial.patient_a, first=-30)
    SafetyRules.objects.filter(study=trial.s1).update(dlt_window_days=None)
    with pytest.raises(ValidationError) as caught:
        record(trial, ae_data(grade=3, dlt=True))
    assert "defines no DLT window" in caught.value.message_dict["dlt"][0]


# --- pages -------------------------------------------------------------------------------------


def test_acute_and_late_are_derived_on_the_list_at_exactly_late_after_days(trial, login):
    Consent.objects.filter(patient=trial.patient_a).update(consented_on=days(-400))
    last = deliver(trial.patient_a, first=-200)  # last fraction: day -196
    record(trial, ae_data(onset_on=(last - today()).days + 90))
    record(trial, ae_data(term="Fatigue", onset_on=(last - today()).days + 91))
    page = login(trial.user("alice_pi")).get(
        reverse("patient_aes", kwargs={"patient_pk": trial.patient_a.pk})
    )
    content = page.content.decode()
    phases = [
        chunk.split("</td>")[0].strip() for chunk in content.split('data-testid="ae-phase">')[1:]
    ]
    assert phases == ["Acute", "Late"]


def test_the_form_creates_an_event_and_shows_errors_without_saving(trial, login):
    client = login(trial.user("alice_pi"))
    url = reverse("ae_new", kwargs={"patient_pk": trial.patient_a.pk})
    page = client.get(url).content.decode()
    assert '<optgroup label="Investigations">' in page  # works without JavaScript
    assert "js/ctcae_picker.js" in page and "data-ctcae-grade-text" in page
    assert 'type="date"' in page
    post = {
        "term": term("Lymphocyte count decreased").pk,
        "grade": "5",
        "onset_on": days(-5).isoformat(),
        "attribution_sbrt": "probable",
        "attribution_systemic": "unrelated",
        "attribution_study_drug": "na",
        "action": "none",
        "outcome": "fatal",
        "death_on": days(-1).isoformat(),
        "serious": "on",
        "sae_death": "on",
    }
    response = client.post(url, post)
    assert response.status_code == 200
    assert "it defines grade(s) 1, 2, 3, 4." in response.content.decode()
    assert not AdverseEvent.objects.exists()
    post.update(
        grade="3", outcome="recovering", death_on="", sae_death="", sae_hospitalisation="on"
    )
    response = client.post(url, post)
    ae = AdverseEvent.objects.get()
    assert response.status_code == 302
    assert response.url == reverse(
        "ae_edit", kwargs={"patient_pk": trial.patient_a.pk, "ae_pk": ae.pk}
    )
    assert (ae.grade, ae.serious, ae.sae_hospitalisation) == (3, True, True)
    # The chosen grade's CTCAE text is shown next to the grade select, before any JavaScript.
    edit_page = client.get(response.url).content.decode()
    assert 'data-ctcae-grade-text aria-live="polite">&lt;500 - 200/mm3;' in edit_page
    assert OutboxEmail.objects.filter(key=f"sae:{ae.pk}:initial").exists()
    # A correction through the form asks for a reason.
    edit = {**post, "grade": "4"}
    response = client.post(response.url, edit)
    assert "Give a reason" in response.content.decode()
    response = client.post(response.request["PATH_INFO"], {**edit, "reason": "worse"})
    ae.refresh_from_db()
    assert response.status_code == 302 and ae.grade == 4


def test_a_monitor_reads_the_ae_page_but_cannot_enter(trial, login):
    ae = record(trial, ae_data(**SERIOUS))
    client = login(trial.user("carl_monitor"))
    url = reverse("ae_edit", kwargs={"patient_pk": trial.patient_a.pk, "ae_pk": ae.pk})
    page = client.get(url)
    assert page.status_code == 200 and 'data-testid="sae-panel"' in page.content.decode()
    assert '<form method="post"' not in page.content.decode().split("</nav>", 1)[1]
    assert client.post(url, {}).status_code == 403
    new_url = reverse("ae_new", kwargs={"patient_pk": trial.patient_a.pk})
    assert client.get(new_url).status_code == 403
    # Another site's investigator does not even see it.
    other = login(trial.user("bob_pi_site_b"))
    assert other.get(url).status_code == 404


def test_term_search_returns_terms_with_their_defined_grades(trial, client, login):
    url = reverse("ctcae_term_search")
    anonymous = client.get(url, {"q": "lymphocyte"})
    assert anonymous.status_code == 302 and "login" in anonymous.url
    client = login(trial.user("alice_pi"))
    found = client.get(url, {"q": "lymphocyte count"}).json()
    match = next(t for t in found if t["term"] == "Lymphocyte count decreased")
    assert match["soc"] == "Investigations"
    assert set(match["grades"]) == {"1", "2", "3", "4"}  # no grade 5 in CTCAE v5.0
    assert match["grades"]["2"] == "<800 - 500/mm3; <0.8 - 0.5 x 10e9 /L"
    assert client.get(url, {"q": "l"}).json() == []
    by_id = client.get(url, {"id": match["id"]}).json()
    assert [t["term"] for t in by_id] == ["Lymphocyte count decreased"]
    first = client.get(url, {"q": "pneumonitis"}).json()[0]
    assert first["term"] == "Pneumonitis" and "5" in first["grades"]


def _many_aes(trial, patient, n):
    for i in range(n):
        record(
            trial,
            ae_data(
                term=["Pneumonitis", "Fatigue", "Cough", "Nausea"][i % 4],
                grade=1 + i % 3,
                onset_on=-10 - i,
                **({"serious": True, "sae_other": True} if i % 2 else {}),
            ),
            patient=patient,
        )


def test_patient_aes_query_count_is_flat(trial, login, django_assert_max_num_queries):
    deliver(trial.patient_a, first=-40)
    client = login(trial.user("alice_pi"))
    url = reverse("patient_aes", kwargs={"patient_pk": trial.patient_a.pk})
    _many_aes(trial, trial.patient_a, 2)
    with django_assert_max_num_queries(15) as small:
        assert client.get(url).status_code == 200
    _many_aes(trial, trial.patient_a, 8)
    assert AdverseEvent.objects.count() == 10
    with django_assert_max_num_queries(len(small.captured_queries)):
        page = client.get(url)
    assert page.content.decode().count('data-testid="ae-row"') == 10


def test_study_safety_query_count_is_flat(trial, login, django_assert_max_num_queries):
    alice = trial.user("alice_pi")
    allocate(trial.patient_a, "A", alice)
    allocate(trial.patient_b, "B", alice)
    deliver(trial.patient_a, first=-40)
    client = login(trial.user("sam_sponsor"))
    url = reverse("study_safety", kwargs={"study_pk": trial.s1.pk})
    _many_aes(trial, trial.patient_a, 1)
    _many_aes(trial, trial.patient_b, 1)
    with django_assert_max_num_queries(15) as small:
        assert client.get(url).status_code == 200
    _many_aes(trial, trial.patient_a, 4)
    _many_aes(trial, trial.patient_b, 4)
    assert AdverseEvent.objects.count() == 10
    with django_assert_max_num_queries(len(small.captured_queries)):
        page = client.get(url).content.decode()
    assert "Arm A" in page and "Arm B" in page  # open study: by arm


def test_study_safety_shows_no_arm_to_a_blinded_user(trial, login):
    s2 = trial.s2
    pete = trial.user("pete_planner")
    SafetyRules.objects.create(study=s2)
    other = PatientFactory(study_site=trial.site_c, subject_id="S2-01-002")
    consent(other, pete)
    allocate(trial.patient_c, "A", pete)
    allocate(other, "B", pete)
    record(trial, ae_data(grade=3), patient=trial.patient_c, by=pete)
    record(trial, ae_data(grade=1), patient=other, by=pete)
    blinded = UserFactory(username="bea_blinded_stat", is_staff=True)
    MembershipFactory(user=blinded, study=s2, role=Role.STATISTICIAN, blinded=True)
    url = reverse("study_safety", kwargs={"study_pk": s2.pk})
    page = login(blinded).get(url).content.decode()
    assert "Arm A" not in page and "Arm B" not in page
    assert 'data-testid="blinded-note"' in page and 'data-testid="tox-group"' not in page
    assert "Pneumonitis" in page
    unblinded = login(trial.user("una_unblinded_stat")).get(url).content.decode()
    assert "Arm A" in unblinded and "Arm B" in unblinded
    # The unblinded planner of the (only) site sees the arms of the patients of that site.
    assert "Arm A" in login(pete).get(url).content.decode()


def test_study_safety_shows_a_site_user_their_sites_patients_only(trial, login):
    record(trial, ae_data(term="Cough"), patient=trial.patient_a)
    record(trial, ae_data(term="Nausea"), patient=trial.patient_b, by=trial.user("bob_pi_site_b"))
    url = reverse("study_safety", kwargs={"study_pk": trial.s1.pk})
    page = login(trial.user("alice_pi")).get(url).content.decode()
    assert "Cough" in page and "Nausea" not in page
    assert 'data-testid="partial-scope"' in page
    sponsor = login(trial.user("sam_sponsor")).get(url).content.decode()
    assert "Cough" in sponsor and "Nausea" in sponsor


def test_dlt_panel_counts_run_in_patients_against_the_stopping_rule(trial, login):
    s1 = trial.s1
    Study.objects.filter(pk=s1.pk).update(
        design=Study.Design.RUN_IN_RANDOMISED, run_in_size=3, run_in_arm_code="A"
    )
    alice = trial.user("alice_pi")
    run_in = [trial.patient_a] + [
        PatientFactory(study_site=trial.site_a, subject_id=f"S1-01-00{i}") for i in (2, 3)
    ]
    for patient in run_in:
        if patient is not trial.patient_a:
            consent(patient, alice)
        allocate(patient, "A", alice, part=Allocation.Part.RUN_IN)
        deliver(patient, first=-40)
    url = reverse("study_safety", kwargs={"study_pk": s1.pk})
    client = login(trial.user("sam_sponsor"))
    dlt = {"grade": 3, "onset_on": -20, "dlt": True}
    record(trial, ae_data(**dlt), patient=run_in[0])
    record(trial, ae_data(**{**dlt, "term": "Fatigue"}), patient=run_in[0])  # same patient
    page = client.get(url).content.decode()
    assert 'data-testid="dlt-count">1<' in page and 'data-testid="dlt-run-in">3 / 3<' in page
    assert 'data-testid="dlt-stop"' not in page
    record(trial, ae_data(**dlt), patient=run_in[1])
    page = client.get(url).content.decode()
    assert 'data-testid="dlt-count">2<' in page and 'data-testid="dlt-stop"' in page
    assert "Stopping rule met" in page


# --- admin -------------------------------------------------------------------------------------


def test_admin_lists_adverse_events_read_only_and_scoped(
    trial, login, django_assert_max_num_queries
):
    record(trial, ae_data(**SERIOUS), patient=trial.patient_a)
    record(trial, ae_data(term="Cough"), patient=trial.patient_b, by=trial.user("bob_pi_site_b"))
    record(trial, ae_data(term="Nausea"), patient=trial.patient_c, by=trial.user("pete_planner"))
    client = login(trial.user("sam_sponsor"))
    url = reverse("admin:patients_adverseevent_changelist")
    with django_assert_max_num_queries(25):
        page = client.get(url).content.decode()
    assert "Pneumonitis" in page and "Cough" in page and "Nausea" not in page  # S2 is not sam's
    ae = AdverseEvent.objects.get(term__term="Pneumonitis")
    change = client.get(reverse("admin:patients_adverseevent_change", args=[ae.pk]))
    assert change.status_code == 200 and 'name="grade"' not in change.content.decode()
    assert client.get(reverse("admin:patients_adverseevent_add")).status_code == 403
    terms = client.get(reverse("admin:patients_ctcaeterm_changelist"), {"q": "lymphocyte count"})
    assert "Lymphocyte count decreased" in terms.content.decode()
    rules = SafetyRules.objects.get(study=trial.s1)
    edit = client.get(reverse("admin:patients_safetyrules_change", args=[rules.pk]))
    assert 'name="late_after_days"' in edit.content.decode()
