"""Study drug: the ATRA dose from the BSA, the calendar from the first fraction, bad input
refused, compliance, corrections audited, and the pages closed to blinded and other users.

ATRA trial (seed 003): ATRA 150 mg/m²/day, days 1-3 every 21 days, up to 4 cycles, from the
first day of radiotherapy; Mosteller, nearest 10 mg.  170 cm, 70 kg: sqrt(170 x 70 / 3600) =
1.8181 -> 1.82 m²; 150 x 1.82 = 273 mg -> 270 mg/day, 810 mg per cycle.
STEREOSARC arm A: atezolizumab 1200 mg flat, IV, every 21 days, 6 cycles.
"""

from __future__ import annotations

import html
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from patients import services as patient_services
from patients.models import Consent
from studies.audit import history_for
from studies.roles import Role
from studies.services import randomisation_list_upload
from tests.factories import MembershipFactory, UserFactory
from tests.patients.conftest import make_ready, site_of, today
from treatments import drug_services
from treatments.models import Agent, DrugCycle, DrugRegimen, Fraction, RadiotherapyCourse

pytestmark = pytest.mark.django_db

FIRST_FRACTION_AGO = 70  # days: four 21-day cycles fit before today
EXPLANATION = (
    "Mosteller: sqrt(170 cm x 70 kg / 3600) = 1.82 m2; "
    "150 mg/m2 x 1.82 m2 = 273 mg -> 270 mg (nearest 10 mg)"
)


def _enrolled(study, by, arm=None, number="S001"):
    if arm is not None:
        strata = [ss.number for ss in study.study_sites.all()]
        randomisation_list_upload(
            study=study, by=by, rows=[{"stratum": s, "sequence": "1", "arm": arm} for s in strata]
        )
    patient = make_ready(study, by, number)
    patient_services.patient_enrol(patient=patient, by=by)
    patient.refresh_from_db()
    Consent.objects.filter(patient=patient).update(consented_on=today() - timedelta(days=80))
    return patient


def _sbrt(patient, first=None):
    """A course planned 5 days earlier, a missed fraction, then the first delivered one."""
    first = first or today() - timedelta(days=FIRST_FRACTION_AGO)
    course = RadiotherapyCourse.objects.create(
        patient=patient, technique="truebeam", planned_start=first - timedelta(days=5)
    )
    Fraction.objects.create(
        course=course, number=1, day=first - timedelta(days=1), status="missed", reason="machine"
    )
    Fraction.objects.create(course=course, number=2, day=first)
    Fraction.objects.create(course=course, number=3, day=first + timedelta(days=2))
    return first


@pytest.fixture
def atra(seeds, investigator):
    patient = _enrolled(seeds["ATRA-SBRT"], investigator)
    assert patient.allocation.arm.code == "SBRT_ATRA"  # safety run-in
    first = _sbrt(patient)
    regimen = DrugRegimen.objects.get(study=seeds["ATRA-SBRT"])
    return patient, regimen, first


@pytest.fixture
def atezo(seeds, investigator):
    patient = _enrolled(seeds["STEREOSARC"], investigator, arm="A")
    first = _sbrt(patient)
    regimen = DrugRegimen.objects.get(study=seeds["STEREOSARC"])
    return patient, regimen, first


def _data(**values):
    data = {
        "given_on": None,
        "height_cm": D(170),
        "weight_kg": D(70),
        "given_total_mg": D(810),
        "status": "given",
        "reason": "",
    }
    data.update(values)
    return data


def _record(patient, by, regimen, number, first, *, delay=0, cycle=None, change="", **values):
    day = first + timedelta(days=21 * (number - 1) + delay)
    values.setdefault("given_on", day)
    return drug_services.cycle_record(
        patient=patient,
        by=by,
        regimen=regimen,
        number=number,
        data=_data(**values),
        cycle=cycle,
        reason=change,
    )


def _post(patient, regimen, number, **values):
    data = {
        "given_on": "",
        "height_cm": "170",
        "weight_kg": "70",
        "given_total_mg": "810",
        "status": "given",
        "reason": "",
    }
    data.update({k: str(v) for k, v in values.items()})
    url = reverse("cycle_new", kwargs={"patient_pk": patient.pk})
    return f"{url}?regimen={regimen.pk}&number={number}", data


def _page(client, patient):
    response = client.get(reverse("patient_drug", kwargs={"patient_pk": patient.pk}))
    assert response.status_code == 200
    return html.unescape(response.content.decode())


# ---------------------------------------------------------------------------
# Doses and calendar
# ---------------------------------------------------------------------------


def test_the_atra_dose_is_computed_from_the_bsa_and_shown_with_its_formula(
    atra, investigator, client
):
    patient, regimen, first = atra
    client.force_login(investigator)
    url, data = _post(patient, regimen, 1, given_on=first.isoformat())
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    cycle = DrugCycle.objects.get()
    assert cycle.bsa_m2 == D("1.82")
    assert cycle.planned_daily_mg == D(270) and cycle.planned_total_mg == D(810)
    assert cycle.dose_explanation == EXPLANATION
    assert cycle.planned_on == first
    page = _page(client, patient)
    assert (
        "all-trans retinoic acid (ATRA) 150 mg/m²/day oral, days 1-3 every 21 days, "
        "up to 4 cycles, from the first SBRT fraction; BSA: Mosteller" in page
    )
    row = page.split('data-testid="cycle-1"')[1].split("</tr>")[0]
    assert "1.82" in row and ">270<" in row and ">810<" in row and EXPLANATION in row


def test_the_form_shows_the_computed_bsa_on_error_and_on_request(atra, investigator, client):
    patient, regimen, first = atra
    client.force_login(investigator)
    url, data = _post(patient, regimen, 1, given_on=first.isoformat(), status="delayed")
    page = html.unescape(client.post(url, data).content.decode())
    assert "Give the reason: this cycle was not given as planned (Delayed)." in page
    assert "1.82 m²" in page and EXPLANATION in page
    assert "270 mg per day, 810 mg this cycle" in page
    url, data = _post(patient, regimen, 1, height_cm="180", weight_kg="90")
    page = html.unescape(client.post(url, {**data, "compute": "1"}).content.decode())
    assert "2.12 m²" in page and "318 mg -> 320 mg" in page  # sqrt(180 x 90 / 3600) = 2.1213
    assert not DrugCycle.objects.exists()


def test_the_calendar_counts_from_the_first_delivered_fraction(atra, investigator, client):
    patient, regimen, first = atra
    anchor = drug_services.calendar_anchor(patient)
    assert anchor.day == first and anchor.from_delivered_fraction  # not the missed fraction
    rows = drug_services.planned_calendar(patient, regimen, [])
    assert [r.planned_on for r in rows] == [first + timedelta(days=21 * n) for n in range(4)]
    _record(patient, investigator, regimen, 2, first, delay=5, status="delayed", reason="ANC low")
    rows = drug_services.planned_calendar(patient, regimen, DrugCycle.objects.all())
    assert rows[1].cycle is not None and rows[1].delay_days == 5
    client.force_login(investigator)
    page = _page(client, patient)
    row2 = page.split('data-testid="cycle-2"')[1].split("</tr>")[0]
    planned, given = first + timedelta(days=21), first + timedelta(days=26)
    assert planned.isoformat() in row2 and given.isoformat() in row2 and ">5<" in row2
    assert "ANC low" in row2
    row3 = page.split('data-testid="cycle-3"')[1].split("</tr>")[0]
    assert (first + timedelta(days=42)).isoformat() in row3 and "number=3" in row3


def test_before_any_fraction_the_calendar_counts_from_the_planned_start(seeds, investigator):
    patient = _enrolled(seeds["ATRA-SBRT"], investigator)
    regimen = DrugRegimen.objects.get(study=seeds["ATRA-SBRT"])
    assert drug_services.planned_calendar(patient, regimen, [])[0].planned_on is None
    start = today() + timedelta(days=3)
    RadiotherapyCourse.objects.create(patient=patient, technique="truebeam", planned_start=start)
    rows = drug_services.planned_calendar(patient, regimen, [])
    assert rows[1].planned_on == start + timedelta(days=21)


def test_atezolizumab_is_a_flat_dose_without_height_or_weight(atezo, investigator, client):
    patient, regimen, first = atezo
    client.force_login(investigator)
    url, data = _post(patient, regimen, 1, given_on=first.isoformat(), given_total_mg="1200")
    form_page = client.get(url).content.decode()
    assert (
        'name="height_cm"' not in form_page and "1200 mg per day, 1200 mg this cycle" in form_page
    )
    del data["height_cm"], data["weight_kg"]
    assert client.post(url, data).status_code == 302
    cycle = DrugCycle.objects.get()
    assert (cycle.planned_daily_mg, cycle.planned_total_mg, cycle.bsa_m2) == (1200, 1200, None)
    page = _page(client, patient)
    assert "atezolizumab 1200 mg intravenous, day 1 every 21 days, up to 6 cycles" in page
    assert "BSA" not in page


def test_a_patient_whose_arm_gets_no_study_drug_is_told_so(seeds, investigator, client):
    patient = _enrolled(seeds["STEREOSARC"], investigator, arm="B")
    assert not drug_services.regimens_for(patient).exists()
    client.force_login(investigator)
    page = _page(client, patient)
    assert "No study drug is given in this patient's arm." in page
    assert "atezolizumab" not in page


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"given_on": -11}, "This day is before consent"),
        ({"height_cm": "300"}, "A height of 300 cm is implausible: give it in cm, between 100"),
        ({"weight_kg": "10"}, "A weight of 10 kg is implausible: give it in kg, between 25 and"),
        ({"height_cm": ""}, "The dose is per m² of body surface area: give the height"),
        ({"status": "delayed"}, "Give the reason: this cycle was not given as planned"),
        (
            {"status": "omitted", "given_on": None, "reason": "toxicity"},
            "An omitted cycle was not given: its dose given is 0 mg.",
        ),
        ({"status": "omitted", "given_total_mg": "0", "reason": "x"}, "leave the day given"),
        ({"given_total_mg": "900"}, "900 mg is more than planned (810 mg this cycle)."),
        ({"status": "reduced", "reason": "neutropenia"}, "A reduced cycle was given below"),
        ({"given_total_mg": "540"}, "choose “Dose reduced” or “Interrupted”"),
        ({"given_on": 99}, "This date is in the future."),
    ],
)
def test_bad_input_is_refused_with_its_message_and_nothing_saved(
    atra, investigator, client, values, message
):
    patient, regimen, first = atra
    for key in ("given_on",):
        if isinstance(values.get(key), int):  # days from the first fraction
            values = {**values, key: (first + timedelta(days=values[key])).isoformat()}
    values = {k: "" if v is None else v for k, v in values.items()}
    client.force_login(investigator)
    url, data = _post(patient, regimen, 1, given_on=first.isoformat())
    response = client.post(url, {**data, **values})
    assert response.status_code == 200
    assert message in html.unescape(response.content.decode())
    assert not DrugCycle.objects.exists()


def test_a_cycle_beyond_the_maximum_is_refused(atra, investigator, client):
    patient, regimen, first = atra
    with pytest.raises(ValidationError, match="at most 4 cycles"):
        _record(patient, investigator, regimen, 5, first)
    client.force_login(investigator)
    url, data = _post(patient, regimen, 5, given_on=first.isoformat())
    assert "at most 4 cycles" in client.post(url, data).content.decode()
    assert not DrugCycle.objects.exists()


def test_a_drug_of_another_arm_is_refused(seeds, investigator, client):
    other = _enrolled(seeds["STEREOSARC"], investigator, arm="B")
    first = _sbrt(other)
    atezolizumab = DrugRegimen.objects.get(study=seeds["STEREOSARC"])
    with pytest.raises(ValidationError, match="atezolizumab is not given in this patient's arm"):
        _record(other, investigator, atezolizumab, 1, first, given_total_mg=D(1200))
    client.force_login(investigator)  # the form does not even offer it
    url, data = _post(other, atezolizumab, 1)
    assert client.get(url).status_code == 404
    assert not DrugCycle.objects.exists()


def test_a_patient_not_enrolled_gets_no_study_drug(seeds, investigator, atra):
    _patient, regimen, first = atra
    screened = make_ready(seeds["ATRA-SBRT"], investigator, "S009")
    with pytest.raises(ValidationError, match="enrolled patients only"):
        _record(screened, investigator, regimen, 1, first)


def test_an_omitted_cycle_is_saved_with_no_dose(atra, investigator):
    patient, regimen, first = atra
    cycle = _record(
        patient,
        investigator,
        regimen,
        1,
        first,
        status="omitted",
        given_on=None,
        given_total_mg=None,
        reason="grade 3 headache",
    )
    assert cycle.given_total_mg == 0 and cycle.planned_total_mg == 810 and cycle.given_on is None


# ---------------------------------------------------------------------------
# Compliance, corrections
# ---------------------------------------------------------------------------


def test_compliance_is_the_given_share_of_the_planned_dose(atra, investigator, client):
    patient, regimen, first = atra
    _record(patient, investigator, regimen, 1, first)
    _record(patient, investigator, regimen, 2, first, delay=7, status="delayed", reason="ANC")
    _record(
        patient,
        investigator,
        regimen,
        3,
        first,
        status="reduced",
        reason="headache",
        given_total_mg=D(540),
    )
    _record(
        patient,
        investigator,
        regimen,
        4,
        first,
        status="omitted",
        reason="progression",
        given_on=None,
        given_total_mg=None,
    )
    rows = drug_services.planned_calendar(patient, regimen, DrugCycle.objects.all())
    result = drug_services.compliance(rows)
    assert (result.recorded, result.planned_mg, result.given_mg) == (4, 3240, 2160)
    assert result.percent == D("66.7")
    assert (result.delayed, result.reduced, result.interrupted, result.omitted) == (1, 1, 0, 1)
    client.force_login(investigator)
    page = " ".join(_page(client, patient).split())
    assert "Relative dose intensity: 66.7 % (2160 mg given of 3240 mg planned, 4 recorded" in page
    assert "Delayed: 1 · reduced: 1 · interrupted: 0 · omitted: 1." in page


def test_correcting_a_cycle_needs_a_reason_and_is_audited(atra, investigator, client):
    patient, regimen, first = atra
    cycle = _record(patient, investigator, regimen, 1, first)
    client.force_login(investigator)
    url = reverse("cycle_edit", kwargs={"patient_pk": patient.pk, "cycle_pk": cycle.pk})
    form_page = client.get(url).content.decode()
    assert 'name="reason_for_change"' in form_page and 'value="810.00"' in form_page
    _, data = _post(
        patient,
        regimen,
        1,
        given_on=first.isoformat(),
        status="reduced",
        given_total_mg="540",
        reason="headache",
    )
    response = client.post(url, data)
    assert "Give a reason for changing saved data" in response.content.decode()
    cycle.refresh_from_db()
    assert cycle.status == "given" and cycle.given_total_mg == 810
    response = client.post(url, {**data, "reason_for_change": "pharmacy count: 540 mg"})
    assert response.status_code == 302
    cycle.refresh_from_db()
    assert cycle.status == "reduced" and cycle.given_total_mg == 540
    event_model = apps.get_model("treatments", "DrugCycleEvent")
    event = event_model.objects.filter(pgh_obj_id=cycle.pk).order_by("-pgh_id").first()
    assert event.pgh_label == "update" and event.given_total_mg == 540
    assert event.pgh_context.metadata["reason"] == "pharmacy count: 540 mg"
    assert event.pgh_context.metadata["user"] == investigator.pk
    assert history_for(cycle)[0].reason == "Study drug cycle"
    with pytest.raises(ValidationError, match="reason"):
        _record(patient, investigator, regimen, 1, first, cycle=cycle)


def test_a_recorded_cycle_cannot_be_recorded_twice(atra, investigator, client):
    patient, regimen, first = atra
    cycle = _record(patient, investigator, regimen, 1, first)
    with pytest.raises(ValidationError, match="already recorded"):
        _record(patient, investigator, regimen, 1, first)
    client.force_login(investigator)
    url, _data = _post(patient, regimen, 1)
    response = client.get(url)
    assert response["Location"] == reverse(
        "cycle_edit", kwargs={"patient_pk": patient.pk, "cycle_pk": cycle.pk}
    )


# ---------------------------------------------------------------------------
# Who sees and enters
# ---------------------------------------------------------------------------


def test_a_blinded_user_gets_403_and_an_unblinded_one_sees_the_drug(
    seeds, investigator, client, login
):
    stop2 = seeds["STOP-2"]
    patient = _enrolled(stop2, investigator, arm="SABR")
    _sbrt(patient)
    regimen = DrugRegimen.objects.create(
        study=stop2,
        arm=stop2.arms.get(code="SABR"),
        agent=Agent.objects.get(name="atezolizumab"),
        dose=1200,
        dose_basis="flat",
        route="iv",
        cycle_length_days=21,
        max_cycles=6,
    )
    urls = [
        reverse("patient_drug", kwargs={"patient_pk": patient.pk}),
        reverse("cycle_new", kwargs={"patient_pk": patient.pk}) + f"?regimen={regimen.pk}&number=1",
    ]
    client.force_login(investigator)  # blinded in STOP-2
    for url in urls:
        assert client.get(url).status_code == 403
    assert client.post(urls[1], {"status": "given", "given_total_mg": "1200"}).status_code == 403
    assert not DrugCycle.objects.exists()
    planner = UserFactory(username="drug_planner")
    MembershipFactory(
        user=planner,
        study=stop2,
        study_site=patient.study_site,
        role=Role.PLANNER,
        blinded=False,
    )
    login(planner)
    assert "atezolizumab 1200 mg" in _page(client, patient)
    assert client.get(urls[1]).status_code == 200


def test_a_user_of_another_site_gets_404(atezo, investigator, seeds, client):
    patient, regimen, first = atezo
    cycle = _record(patient, investigator, regimen, 1, first, given_total_mg=D(1200))
    stereosarc = seeds["STEREOSARC"]
    other_site = stereosarc.study_sites.exclude(pk=site_of(stereosarc).pk).first()
    stranger = UserFactory(username="other_site_pi")
    MembershipFactory(
        user=stranger, study=stereosarc, study_site=other_site, role=Role.INVESTIGATOR
    )
    client.force_login(stranger)
    for url in (
        reverse("patient_drug", kwargs={"patient_pk": patient.pk}),
        reverse("cycle_new", kwargs={"patient_pk": patient.pk}) + f"?regimen={regimen.pk}&number=2",
        reverse("cycle_edit", kwargs={"patient_pk": patient.pk, "cycle_pk": cycle.pk}),
    ):
        assert client.get(url).status_code == 404
        response = client.post(url, {"status": "given", "reason_for_change": "x"})
        assert response.status_code in (404, 405)  # the calendar is GET only
    assert DrugCycle.objects.count() == 1


def test_a_monitor_reads_the_calendar_but_cannot_record(atra, investigator, seeds, client):
    patient, regimen, first = atra
    _record(patient, investigator, regimen, 1, first)
    monitor = UserFactory(username="drug_monitor")
    MembershipFactory(user=monitor, study=seeds["ATRA-SBRT"], role=Role.MONITOR, blinded=True)
    client.force_login(monitor)
    page = _page(client, patient)
    assert EXPLANATION in page and "Record</a>" not in page and "Correct</a>" not in page
    url, data = _post(patient, regimen, 2, given_on=(first + timedelta(days=21)).isoformat())
    assert client.get(url).status_code == 403
    assert client.post(url, data).status_code == 403
    assert DrugCycle.objects.count() == 1
    client.force_login(investigator)
    page = _page(client, patient)
    assert "Record</a>" in page and "Correct</a>" in page


def test_the_calendar_page_query_count_does_not_grow_with_cycles(
    atra, investigator, client, django_assert_max_num_queries
):
    patient, regimen, first = atra
    _record(patient, investigator, regimen, 1, first)
    client.force_login(investigator)
    url = reverse("patient_drug", kwargs={"patient_pk": patient.pk})
    client.get(url)  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    for number in (2, 3, 4):
        _record(patient, investigator, regimen, number, first)
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get(url)
    assert response.content.decode().count("Correct</a>") == 4
