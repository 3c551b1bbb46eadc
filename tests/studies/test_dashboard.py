"""The sponsor's study dashboard: who may open it, what blinded users see, enrolment against
target, screen-failure reasons, query ageing and completeness per site, the endpoints computed
from the data (checked by hand), the SVG pictures, and a query count that does not grow."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from lesions.models import ImagingAssessment, PatientResponse
from patients import casebook
from patients.ctcae_terms import ensure_terms as ensure_ctcae_terms
from patients.models import (
    AdverseEvent,
    Allocation,
    Consent,
    CtcaeTerm,
    DataQuery,
    EligibilityAnswer,
    Patient,
)
from patients.models_safety import LabResult
from studies.dashboards import svg
from studies.dashboards.endpoints import LYMPHOPENIA, PFS6, PFS_NEST, PRIMARY_ENDPOINTS, TTNT
from studies.dashboards.selectors import dashboard_data
from studies.models import EligibilityCriterion, Study
from studies.roles import Role
from tests.factories import (
    ArmFactory,
    MembershipFactory,
    PatientFactory,
    StudyFactory,
    StudySiteFactory,
    UserFactory,
)
from treatments.models import Fraction, RadiotherapyCourse, SystemicLine

pytestmark = pytest.mark.django_db


def today() -> date:
    return timezone.localdate()


def ago(days: int) -> date:
    return today() - timedelta(days=days)


def url(study) -> str:
    return reverse("study_dashboard", kwargs={"study_pk": study.pk})


def page(client, study) -> str:
    response = client.get(url(study))
    assert response.status_code == 200
    return response.content.decode()


# --- building data -----------------------------------------------------------------------------


def enrol(site, *, days_ago: int, arm=None, part=Allocation.Part.RANDOMISED, by=None) -> Patient:
    patient = PatientFactory(
        study_site=site,
        enrolled_on=ago(days_ago),
        status_changed_on=ago(days_ago),
        screening_outcome=Patient.ScreeningOutcome.ELIGIBLE,
    )
    if arm is not None:
        Allocation.objects.create(
            patient=patient, arm=arm, part=part, allocated_by=by or UserFactory()
        )
    return patient


def sbrt(patient, *, first: int, last: int | None = None) -> None:
    """Delivered fractions ``first`` and ``last`` days ago."""
    course = RadiotherapyCourse.objects.create(
        patient=patient, technique="truebeam", planned_start=ago(first)
    )
    Fraction.objects.create(course=course, number=1, day=ago(first))
    if last is not None and last != first:
        Fraction.objects.create(course=course, number=2, day=ago(last))


def line(patient, number: int, *, start: int, end: int | None = None, reason: str = "") -> None:
    SystemicLine.objects.create(
        patient=patient,
        line_number=number,
        start=ago(start),
        end=ago(end) if end is not None else None,
        stop_reason=reason,
    )


def scan(patient, days_ago: int) -> None:
    ImagingAssessment.objects.create(patient=patient, scan_date=ago(days_ago), modality="CT")


def progression(patient, days_ago: int) -> None:
    PatientResponse.objects.create(patient=patient, progression_on=ago(days_ago))


def ae_death(patient, days_ago: int) -> None:
    ensure_ctcae_terms()
    AdverseEvent.objects.create(
        patient=patient,
        term=CtcaeTerm.objects.get(term="Fatigue"),
        grade=5,
        onset_on=ago(days_ago),
        attribution_sbrt="unlikely",
        attribution_systemic="unlikely",
        outcome="fatal",
        death_on=ago(days_ago),
    )


def lymphocytes(patient, days_ago: int, value: str, grade: int | None) -> None:
    LabResult.objects.create(
        patient=patient,
        sampled_on=ago(days_ago),
        analyte="lymphocytes",
        value=Decimal(value),
        unit="G/L",
        value_standard=Decimal(value),
        standard_unit="10^9/L",
        grade=grade,
    )


def query(patient, *, days_open: int, status=DataQuery.Status.OPEN, kind="ae") -> DataQuery:
    return DataQuery.objects.create(
        patient=patient,
        form_kind=kind,
        object_id=patient.pk,
        status=status,
        opened_at=timezone.now() - timedelta(days=days_open, hours=1),
    )


def member(study, role, *, blinded=True, name=None):
    user = UserFactory(username=name) if name else UserFactory()
    MembershipFactory(user=user, study=study, study_site=None, role=role, blinded=blinded)
    return user


def arms_of(study):
    return {arm.code: arm for arm in study.arms.all()}


# --- access ------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(world, client):
    response = client.get(url(world.s1))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_a_user_outside_the_study_gets_404(world, login):
    assert login(world.user("una_unblinded_stat")).get(url(world.s1)).status_code == 404
    assert login(world.user("alice_pi")).get(url(world.s2)).status_code == 404


@pytest.mark.parametrize(
    ("name", "study"),
    [("alice_pi", "s1"), ("nina_nurse", "s1"), ("bob_pi_site_b", "s1"), ("pete_planner", "s2")],
)
def test_site_staff_get_403(world, login, name, study):
    assert login(world.user(name)).get(url(getattr(world, study))).status_code == 403


@pytest.mark.parametrize(
    "name", ["carl_monitor", "dora_datamanager", "sam_sponsor", "tom_statistician"]
)
def test_sponsor_roles_and_the_monitor_open_the_dashboard(world, login, name):
    html = page(login(world.user(name)), world.s1)
    assert "S1-TRIAL: study dashboard" in html


# --- blinding ----------------------------------------------------------------------------------


@pytest.fixture
def two_arm_data(world):
    """Both studies: two patients per arm with SBRT, a next line and a progression, so every
    time-to-event endpoint has data."""
    for study, site in ((world.s1, world.site_a), (world.s2, world.site_c)):
        for code in ("A", "B"):
            for offset in (0, 10):
                patient = enrol(site, days_ago=300 + offset, arm=arms_of(study)[code])
                sbrt(patient, first=290 + offset)
                line(patient, 1, start=400, end=200 + offset, reason="progression")
                line(patient, 2, start=200 + offset)
                scan(patient, 100)
                progression(patient, 150 + offset if code == "A" else 100)
    return world


ARM_NAMES = ("Arm A", "Arm B")


def _assert_no_arm(html: str) -> None:
    for name in ARM_NAMES:
        assert name not in html
    assert "(safety run-in)" not in html and "Fisher" not in html


def test_an_unblinded_statistician_sees_every_endpoint_by_arm_in_a_double_blind_study(
    two_arm_data, login
):
    html = page(login(two_arm_data.user("una_unblinded_stat")), two_arm_data.s2)
    assert "Endpoints by arm" in html
    data = dashboard_data(two_arm_data.user("una_unblinded_stat"), two_arm_data.s2)
    nest = next(e for e in data.endpoints if e.key == PFS_NEST)
    assert [g.label for g in nest.survival] == ["Arm A", "Arm B"]
    assert [g.n for g in nest.survival] == [2, 2]
    for name in ARM_NAMES:
        assert name in html


@pytest.mark.parametrize("role", [Role.STATISTICIAN, Role.DATA_MANAGER, Role.SPONSOR_ADMIN])
def test_blinded_sponsor_users_see_pooled_endpoints_and_no_arm_in_a_double_blind_study(
    two_arm_data, login, role
):
    user = member(two_arm_data.s2, role, blinded=True)
    html = page(login(user), two_arm_data.s2)
    _assert_no_arm(html)
    assert "Endpoints of all patients pooled" in html
    data = dashboard_data(user, two_arm_data.s2)
    nest = next(e for e in data.endpoints if e.key == PFS_NEST)
    assert [(g.label, g.n) for g in nest.survival] == [("All patients", 4)]


def test_in_an_open_study_statisticians_see_arms_even_with_a_blinded_membership(
    two_arm_data, login
):
    # Open label: sees_allocation is true for everyone; the by-arm view is for statisticians.
    html = page(login(two_arm_data.user("tom_statistician")), two_arm_data.s1)
    assert "Arm A" in html and "Arm B" in html


@pytest.mark.parametrize("name", ["carl_monitor", "dora_datamanager", "sam_sponsor"])
def test_in_an_open_study_other_sponsor_roles_still_see_the_pooled_view(two_arm_data, login, name):
    html = page(login(two_arm_data.user(name)), two_arm_data.s1)
    _assert_no_arm(html)
    assert "All patients" in html


def test_a_blinded_user_is_not_shown_queries_on_arm_revealing_forms(world, login):
    patient = enrol(world.site_c, days_ago=20, arm=arms_of(world.s2)["A"])
    query(patient, days_open=3, kind="drug")  # study-drug cycles exist in one arm only
    query(patient, days_open=3, kind="ae")
    blinded = member(world.s2, Role.DATA_MANAGER, blinded=True)
    [blinded_row] = dashboard_data(blinded, world.s2).queries
    [unblinded_row] = dashboard_data(world.user("una_unblinded_stat"), world.s2).queries
    assert (blinded_row.total, unblinded_row.total) == (1, 2)


# --- enrolment ---------------------------------------------------------------------------------


def test_enrolment_is_counted_per_month_and_site_against_the_targets(world, login):
    site_a, site_b = world.site_a, world.site_b
    Patient.objects.filter(pk__in=[world.patient_a.pk, world.patient_b.pk]).update(
        enrolled_on=None, subject_id=None
    )
    site_a.target_enrolment, site_b.target_enrolment = 4, 10
    site_a.save()
    site_b.save()
    Study.objects.filter(pk=world.s1.pk).update(target_enrolment=20, start_date=ago(100))
    this_month = today().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    for site, when in ((site_a, last_month), (site_a, last_month), (site_a, this_month)):
        PatientFactory(study_site=site, enrolled_on=when)
    PatientFactory(study_site=site_b, enrolled_on=this_month)
    data = dashboard_data(world.user("sam_sponsor"), Study.objects.get(pk=world.s1.pk))
    enrolment = data.enrolment
    assert enrolment.months[-2:] == (last_month, this_month)
    assert enrolment.months[0] == ago(100).replace(day=1)  # from the study's start
    by_site = {row.site.number: row for row in enrolment.sites}
    assert by_site["01"].cumulative[-2:] == (2, 3) and by_site["01"].percent_of_target == 75
    assert by_site["02"].cumulative[-2:] == (0, 1) and by_site["02"].percent_of_target == 10
    assert enrolment.total[-2:] == (2, 4) and enrolment.percent_of_target == 20
    html = page(login(world.user("sam_sponsor")), world.s1)
    assert 'data-testid="enrolment-total-chart"' in html
    assert html.count('class="target"') == 3  # the study's target and both sites'
    assert 'stroke-dasharray="6 4"' in html


def test_the_enrolment_chart_draws_each_target_dashed_in_its_series_colour():
    picture = svg.enrolment_chart(
        ["2026-01", "2026-02", "2026-03"],
        [svg.LineSeries("01 <Alpha>", (1, 2, 4), 5), svg.LineSeries("02", (0, 0, 1), None)],
        "Enrolment",
    )
    assert picture.startswith("<svg") and picture.count("<polyline") == 2
    assert picture.count('class="target"') == 1
    assert f'stroke="{svg.PALETTE[0]}" stroke-dasharray="6 4"' in picture
    assert "&lt;Alpha&gt;" in picture and "<Alpha>" not in picture


# --- screening ---------------------------------------------------------------------------------


def test_screen_failures_are_counted_by_criterion_and_declines_by_reason(world, login):
    alice = world.user("alice_pi")
    i3 = EligibilityCriterion.objects.create(
        study=world.s1, kind="inclusion", number=3, text="WHO performance status 0-1"
    )
    e2 = EligibilityCriterion.objects.create(
        study=world.s1, kind="exclusion", number=2, text="Brain metastases"
    )
    for site, misses in (
        (world.site_a, [i3]),
        (world.site_a, [i3, e2]),
        (world.site_b, [i3]),
        (world.site_b, []),
    ):
        patient = PatientFactory(
            study_site=site,
            subject_id=None,
            enrolled_on=None,
            status=Patient.Status.SCREEN_FAILURE,
            screening_outcome=Patient.ScreeningOutcome.SCREEN_FAILURE,
        )
        for criterion in misses:
            EligibilityAnswer.objects.create(
                patient=patient, criterion=criterion, satisfied=False, answered_by=alice
            )
    for reason in ("Too far to travel", "too far  to travel", "Prefers standard care"):
        PatientFactory(
            study_site=world.site_a,
            subject_id=None,
            enrolled_on=None,
            status=Patient.Status.SCREEN_FAILURE,
            screening_outcome=Patient.ScreeningOutcome.DECLINED,
            declined_reason=reason,
        )
    screening = dashboard_data(world.user("dora_datamanager"), world.s1).screening
    assert screening.screen_failures == 4 and screening.declined == 3
    assert [(c.label, c.count) for c in screening.failed_criteria] == [("I3", 3), ("E2", 1)]
    assert screening.failures_without_criterion == 1
    assert [(r.label, r.count) for r in screening.declined_reasons] == [
        ("Too far to travel", 2),
        ("Prefers standard care", 1),
    ]
    html = page(login(world.user("dora_datamanager")), world.s1)
    assert 'data-criterion="I3"' in html and "WHO performance status 0-1" in html
    assert 'data-testid="failures-chart"><svg' in html


# --- data management ---------------------------------------------------------------------------


def test_open_and_answered_queries_are_aged_per_site(world, login):
    for days in (0, 6, 7, 30, 45):
        query(world.patient_a, days_open=days)
    query(world.patient_a, days_open=12, status=DataQuery.Status.ANSWERED)
    query(world.patient_a, days_open=90, status=DataQuery.Status.CLOSED)  # not counted
    rows = {q.site.number: q for q in dashboard_data(world.user("carl_monitor"), world.s1).queries}
    a = rows["01"]
    assert (a.under_week, a.week_to_month, a.over_month) == (2, 3, 1)
    assert a.oldest_days == 45
    b = rows["02"]
    assert (b.total, b.oldest_days) == (0, None)
    html = page(login(world.user("carl_monitor")), world.s1)
    assert 'data-testid="queries-chart"><svg' in html


def test_completeness_per_site_comes_from_the_casebook(world, login):
    expected = casebook.completeness_by_site(world.s1.pk)
    rows = dashboard_data(world.user("dora_datamanager"), world.s1).completeness
    assert rows is not None
    for row in rows:
        found = expected.get(row.site.pk)
        assert row.expected == (found.expected if found else 0)
        assert row.missing == (found.missing if found else 0)


def test_the_page_works_while_the_casebook_cannot_give_completeness(world, login, monkeypatch):
    monkeypatch.delattr(casebook, "completeness_by_site")
    html = page(login(world.user("dora_datamanager")), world.s1)
    assert 'data-testid="completeness-unavailable"' in html
    assert dashboard_data(world.user("dora_datamanager"), world.s1).completeness is None


# --- endpoints, computed by hand ---------------------------------------------------------------


@pytest.fixture
def seed_like():
    """A fresh study per seed code, each at one site with an unblinded statistician."""

    def make(code: str, *, design=Study.Design.RANDOMISED, run_in_arm_code=""):
        study = StudyFactory(code=code, design=design, run_in_arm_code=run_in_arm_code)
        arms = {c: ArmFactory(study=study, code=c, name=f"Arm {c}") for c in ("A", "B")}
        site = StudySiteFactory(study=study, number="01")
        stat = member(study, Role.STATISTICIAN, blinded=False)
        return study, arms, site, stat

    return make


def _endpoint(data, key):
    return next(e for e in data.endpoints if e.key == key)


def test_pfs_at_6_months_is_the_kaplan_meier_estimate_at_183_days(seed_like, login):
    study, arms, site, stat = seed_like("STEREOSARC")
    first = enrol(site, days_ago=300, arm=arms["A"])
    progression(first, 300 - 100)  # progression on day 100
    second = enrol(site, days_ago=300, arm=arms["A"])
    ae_death(second, 300 - 150)  # death on day 150
    for _ in range(2):  # event-free, last scan on day 250
        censored = enrol(site, days_ago=300, arm=arms["A"])
        scan(censored, 300 - 250)
    data = dashboard_data(stat, study)
    pfs = data.endpoints[0]
    assert (pfs.key, pfs.primary) == (PFS6, True)
    [group] = pfs.survival
    assert (group.label, group.n, group.events) == ("Arm A", 4, 2)
    # S(100) = 3/4, S(150) = 3/4 x 2/3 = 1/2, unchanged at 183 with 2 at risk.
    assert group.highlight.estimate.survival == pytest.approx(0.5)
    assert group.highlight.estimate.at_risk == 2
    assert group.highlight.survival_text == "50.0 %"
    assert group.curve.median == 150
    html = page(login(stat), study)
    first_section = html.index('data-testid="endpoint"')
    assert html[first_section:].startswith('data-testid="endpoint" data-endpoint="pfs6"')
    assert 'data-primary="true"' in html[first_section : first_section + 80]
    assert "Primary endpoint" in html and 'class="landmark"' in html


def test_a_progression_dated_before_enrolment_is_left_out_and_counted(seed_like):
    study, arms, site, stat = seed_like("STEREOSARC")
    ok = enrol(site, days_ago=100, arm=arms["A"])
    scan(ok, 10)
    wrong = enrol(site, days_ago=100, arm=arms["A"])
    progression(wrong, 120)
    pfs = _endpoint(dashboard_data(stat, study), PFS6)
    assert pfs.inconsistent == 1 and pfs.survival[0].n == 1


def test_time_to_next_systemic_therapy_runs_from_the_first_fraction_to_the_next_line(seed_like):
    study, arms, site, stat = seed_like("STORM-01", design=Study.Design.SINGLE_ARM)
    sbrt_arm = arms["A"]
    single = Allocation.Part.SINGLE_ARM
    switched = enrol(site, days_ago=400, arm=sbrt_arm, part=single)
    sbrt(switched, first=390, last=386)
    line(switched, 1, start=600, end=270, reason="progression")
    line(switched, 2, start=270)  # next line 120 days after the first fraction: event
    ongoing = enrol(site, days_ago=400, arm=sbrt_arm, part=single)
    sbrt(ongoing, first=380)
    line(ongoing, 1, start=600)
    scan(ongoing, 80)  # still on line 1 at the last contact, day 300: censored
    died = enrol(site, days_ago=400, arm=sbrt_arm, part=single)
    sbrt(died, first=370)
    Patient.objects.filter(pk=died.pk).update(
        status=Patient.Status.OFF_STUDY, status_changed_on=ago(170), off_study_reason="death"
    )  # death on day 200 before any next line: an event (time to next treatment or death)
    enrol(site, days_ago=30, arm=sbrt_arm, part=single)  # no SBRT yet: not in the analysis
    data = dashboard_data(stat, study)
    ttnt = data.endpoints[0]
    assert (ttnt.key, ttnt.primary) == (TTNT, True)
    [group] = ttnt.survival
    assert group.label == "Arm A"
    events = [(s.time, s.events, s.censored) for s in group.curve.steps]
    assert events == [(120, 1, 0), (200, 1, 0), (300, 0, 1)]
    assert ttnt.not_entered == 1  # no SBRT yet
    assert group.curve.median == 200  # S(120) = 2/3, S(200) = 1/3


def test_pfs_nest_runs_from_the_start_of_the_next_line_to_progression_on_it(seed_like, login):
    study, arms, site, stat = seed_like("STOP-2")
    study.blinding = Study.Blinding.DOUBLE_BLIND
    study.save()
    progressed = enrol(site, days_ago=300, arm=arms["A"])
    sbrt(progressed, first=290)
    line(progressed, 1, start=500, end=200, reason="progression")
    line(progressed, 2, start=200, end=110, reason="progression")  # progression 90 days on
    line(progressed, 3, start=110)
    progression(progressed, 110)
    followed = enrol(site, days_ago=300, arm=arms["B"])
    sbrt(followed, first=280)
    line(followed, 1, start=500, end=180, reason="toxicity")
    line(followed, 2, start=180)
    scan(followed, 30)  # last contact 150 days into line 2: censored
    no_next_line = enrol(site, days_ago=300, arm=arms["B"])
    sbrt(no_next_line, first=280)
    data = dashboard_data(stat, study)
    nest = data.endpoints[0]
    assert (nest.key, nest.primary) == (PFS_NEST, True)
    by_label = {g.label: g for g in nest.survival}
    assert [(s.time, s.events) for s in by_label["Arm A"].curve.steps] == [(90, 1)]
    assert [(s.time, s.censored) for s in by_label["Arm B"].curve.steps] == [(150, 1)]
    assert nest.not_entered == 1
    blinded = member(study, Role.STATISTICIAN, blinded=True)
    pooled = _endpoint(dashboard_data(blinded, study), PFS_NEST)
    assert [(g.label, g.n, g.events) for g in pooled.survival] == [("All patients", 2, 1)]
    _assert_no_arm(page(login(blinded), study))


def _lymphopenia_patient(site, arm, *, grade: int | None, value: str, sbrt_end: int = 60):
    patient = enrol(site, days_ago=90, arm=arm)
    sbrt(patient, first=sbrt_end + 4, last=sbrt_end)
    Consent.objects.create(
        patient=patient, consented_on=ago(100), form_version="v1", obtained_by=UserFactory()
    )
    lymphocytes(patient, sbrt_end - 42, value, grade)  # exactly 6 weeks after the end of SBRT
    return patient


def test_the_lymphopenia_rate_at_6_weeks_is_pooled_or_compared_by_arm(seed_like, login):
    study, arms, site, stat = seed_like(
        "ATRA-SBRT", design=Study.Design.RUN_IN_RANDOMISED, run_in_arm_code="A"
    )
    for grade, value in ((3, "0.4"), (1, "0.9"), (0, "1.5")):  # 1 event of 3 in arm A
        _lymphopenia_patient(site, arms["A"], grade=grade, value=value)
    for grade, value in ((2, "0.7"), (2, "0.6"), (1, "0.85")):  # 2 events of 3 in arm B
        _lymphopenia_patient(site, arms["B"], grade=grade, value=value)
    pending = enrol(site, days_ago=40, arm=arms["B"])
    sbrt(pending, first=35, last=30)  # window (day 35-49) still open, no count yet
    lymph = dashboard_data(stat, study).endpoints[0]
    assert (lymph.key, lymph.primary) == (LYMPHOPENIA, True)
    rows = {g.label: g for g in lymph.rates}
    assert (rows["Arm A"].evaluable, rows["Arm A"].events) == (3, 1)
    assert (rows["Arm B"].evaluable, rows["Arm B"].events, rows["Arm B"].pending) == (3, 2, 1)
    assert rows["Arm A"].rate_text == "33.3 %"
    # Fisher's exact test of [[1, 2], [2, 1]]: two-sided p = 1, one-sided (A < B) p = 0.5.
    assert lymph.p_two_sided == pytest.approx(1.0) and lymph.p_one_sided == pytest.approx(0.5)
    # Clopper-Pearson 95 % interval of 1/3: 0.0084 to 0.9057.
    assert rows["Arm A"].low == pytest.approx(0.0084, abs=1e-4)
    assert rows["Arm A"].high == pytest.approx(0.9057, abs=1e-4)
    html = page(login(stat), study)
    assert 'data-testid="fisher"' in html
    blinded = member(study, Role.DATA_MANAGER, blinded=True)
    pooled = _endpoint(dashboard_data(blinded, study), LYMPHOPENIA)
    [group] = pooled.rates
    assert (group.label, group.evaluable, group.events, group.pending) == ("All patients", 6, 3, 1)


def test_each_seed_study_has_its_registry_primary_endpoint(seed_like):
    assert PRIMARY_ENDPOINTS == {
        "STORM-01": (TTNT,),
        "STORM-01-R": (TTNT,),
        "STEREOSARC": (PFS6,),
        "ATRA-SBRT": (LYMPHOPENIA,),
        "STOP-2": (PFS_NEST,),
    }
    from studies.seed_data import SEED_TRIALS

    assert {trial.code for trial in SEED_TRIALS} == set(PRIMARY_ENDPOINTS)
    study, _arms, _site, stat = seed_like("STEREOSARC")
    data = dashboard_data(stat, study)  # no patient yet: the primary endpoint is still listed
    assert [e.key for e in data.endpoints] == [PFS6]
    assert not data.endpoints[0].has_data


def test_a_study_without_a_registered_primary_shows_only_endpoints_with_data(world, login):
    patient = enrol(world.site_a, days_ago=200, arm=arms_of(world.s1)["A"])
    scan(patient, 20)
    keys = [e.key for e in dashboard_data(world.user("tom_statistician"), world.s1).endpoints]
    assert keys == [PFS6]  # no SBRT, no line, no lymphocyte count
    assert not any(
        e.primary for e in dashboard_data(world.user("tom_statistician"), world.s1).endpoints
    )


def test_the_km_chart_steps_down_at_events_and_ticks_censorings():
    picture = svg.km_chart(
        [
            svg.KmSeries("All <patients>", ((2.0, 0.75), (4.0, 0.5)), ((3.0, 0.75),), end=6.0),
        ],
        "PFS",
        landmark=(6.0, "6 months"),
    )
    assert picture.count('class="censor"') == 1 and 'class="landmark"' in picture
    path = picture.split('<path d="')[1].split('"')[0]
    assert path.startswith("M") and path.count("V") == 2  # one drop per event time
    assert "All &lt;patients&gt;" in picture


def test_the_bar_chart_stacks_segments_and_escapes_labels():
    picture = svg.bar_chart(
        [svg.Bar("01 <Alpha>", (2, 3, 1)), svg.Bar("02", (0, 0, 0))],
        "Queries",
        segments=("< 7 days", "7-30", "> 30"),
    )
    assert picture.count('class="bar"') == 2
    assert "&lt;Alpha&gt;" in picture and "<Alpha>" not in picture
    assert picture.count("<rect") == 3 + 3  # three segments of the first bar + three keys


# --- query count -------------------------------------------------------------------------------


def _populate(world, count: int) -> None:
    """``count`` patients per arm in both sites of S1 and in S2, with every kind of data."""
    ensure_ctcae_terms()
    alice = world.user("alice_pi")
    criterion = EligibilityCriterion.objects.get_or_create(
        study=world.s1, kind="inclusion", number=1, defaults={"text": "Adults"}
    )[0]
    for study, sites in ((world.s1, (world.site_a, world.site_b)), (world.s2, (world.site_c,))):
        for site in sites:
            for arm in arms_of(study).values():
                for n in range(count):
                    patient = _lymphopenia_patient(site, arm, grade=2, value="0.7")
                    line(patient, 1, start=200, end=50, reason="progression")
                    line(patient, 2, start=50)
                    scan(patient, 10)
                    progression(patient, 20)
                    if n % 2:
                        ae_death(patient, 5)
                    query(patient, days_open=n * 10)
                    failure = PatientFactory(
                        study_site=site,
                        subject_id=None,
                        enrolled_on=None,
                        screening_outcome=Patient.ScreeningOutcome.SCREEN_FAILURE,
                    )
                    if study == world.s1:
                        EligibilityAnswer.objects.create(
                            patient=failure, criterion=criterion, satisfied=False, answered_by=alice
                        )


@pytest.mark.parametrize(
    ("name", "study"),
    [("una_unblinded_stat", "s2"), ("tom_statistician", "s1"), ("dora_datamanager", "s1")],
)
def test_the_query_count_does_not_grow_with_the_number_of_patients(
    world, login, django_assert_max_num_queries, name, study
):
    client = login(world.user(name))
    _populate(world, 1)
    with django_assert_max_num_queries(40) as small:
        page(client, getattr(world, study))
    _populate(world, 4)
    with django_assert_max_num_queries(len(small.captured_queries)):
        html = page(client, getattr(world, study))
    assert 'data-endpoint="pfs_nest"' in html and 'data-endpoint="lymphopenia"' in html
