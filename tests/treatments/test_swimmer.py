"""Swimmer plot and treatment timeline: the pure SVG renderer, then the pages (scoped, blinded,
with a flat query count)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.urls import reverse

from lesions.models import PatientResponse
from patients.models import Allocation, EmergencyUnblinding, Patient
from studies.models import Arm
from studies.roles import Role
from tests.factories import MembershipFactory, PatientFactory, UserFactory
from treatments.models import (
    Agent,
    DrugCycle,
    DrugRegimen,
    Fraction,
    LineAgent,
    RadiotherapyCourse,
    SystemicLine,
)
from treatments.swimmer import (
    CourseBar,
    CycleTick,
    Labels,
    LineBar,
    PatientRow,
    sort_rows,
    swimmer_svg,
    timeline_svg,
)

DAY0 = date(2024, 3, 4)


def _d(days: int) -> date:
    return DAY0 + timedelta(days=days)


def _count(svg: str, cls: str) -> int:
    return len(re.findall(rf'class="{cls}"', svg))


def _line_widths(svg: str) -> list[float]:
    return [float(w) for w in re.findall(r'class="sw-line"[^>]*width="([\d.]+)"', svg)]


# ---------------------------------------------------------------------------
# The pure renderer
# ---------------------------------------------------------------------------


def _row(pk=1, label="P-001", last=200, **extra) -> PatientRow:
    return PatientRow(patient_id=pk, label=label, origin=DAY0, last=_d(last), **extra)


def test_an_ongoing_line_gets_an_arrow_and_an_ended_one_does_not():
    ongoing = _row(lines=(LineBar(1, _d(-10), None, ("nivolumab",)),))
    ended = _row(lines=(LineBar(1, _d(-10), _d(100), ("nivolumab",)),))
    assert _count(swimmer_svg([ongoing]), "sw-arrow") == 1
    assert _count(swimmer_svg([ended]), "sw-arrow") == 0
    # An ongoing line runs to the end of follow-up.
    assert _count(timeline_svg(ongoing), "sw-arrow") == 1


def test_a_patient_still_followed_gets_an_arrow_on_the_follow_up():
    assert _count(swimmer_svg([_row(ongoing=True)]), "sw-arrow") == 1
    assert _count(swimmer_svg([_row(ongoing=False)]), "sw-arrow") == 0


def test_progression_and_death_markers_are_drawn():
    row = _row(progression=_d(90), death=_d(150), last=150)
    svg = swimmer_svg([row])
    assert _count(svg, "sw-progression") == 1 and _count(svg, "sw-death") == 1
    assert "Progression: 2024-06-02" in svg and "Death: 2024-08-01" in svg
    assert _count(swimmer_svg([_row()]), "sw-progression") == 0
    assert _count(swimmer_svg([_row()]), "sw-death") == 0
    assert _count(timeline_svg(row), "sw-death") == 1


def test_bars_are_scaled_by_days():
    long = _row(pk=1, last=300, lines=(LineBar(1, _d(0), _d(200), ("a",)),))
    short = _row(pk=2, last=300, lines=(LineBar(1, _d(0), _d(100), ("b",)),))
    quarter = _row(pk=3, last=300, lines=(LineBar(1, _d(100), _d(150), ("c",)),))
    widths = _line_widths(swimmer_svg([long, short, quarter]))
    assert widths[0] == pytest.approx(2 * widths[1], rel=0.01)
    assert widths[0] == pytest.approx(4 * widths[2], rel=0.01)


def test_rows_are_sorted_by_follow_up_longest_first():
    rows = [_row(pk=1, label="short", last=30), _row(pk=2, label="long", last=400)]
    rows.append(_row(pk=3, label="middle", last=100, death=_d(100)))
    assert [r.label for r in sort_rows(rows)] == ["long", "middle", "short"]
    svg = swimmer_svg(rows)
    assert re.findall(r'data-patient="(\d+)"', svg) == ["2", "3", "1"]


def test_follow_up_stretches_to_the_last_thing_recorded():
    row = _row(last=50, cycles=(CycleTick(1, _d(80), "drug"),))
    assert row.follow_up_days == 80


def test_sbrt_cycles_and_legend():
    row = _row(
        courses=(CourseBar(1, _d(3), _d(10), 5),),
        cycles=(CycleTick(1, _d(3), "ATRA"), CycleTick(2, _d(24), "ATRA", given=False)),
    )
    svg = swimmer_svg([row])
    assert _count(svg, "sw-sbrt") == 1 and _count(svg, "sw-cycle") == 2
    assert "SBRT course 1: 2024-03-07 → 2024-03-14" in svg
    assert "Cycle 2: ATRA (2024-03-28), not given" in svg
    assert "Study drug" in svg  # in the legend
    # Nothing about a study drug when there is no cycle (blinded rows carry none).
    assert "Study drug" not in swimmer_svg([_row(courses=row.courses)])


def test_text_is_escaped():
    row = _row(
        label="<script>alert(1)</script>",
        arm='Arm "B" & <i>co</i>',
        url='/p/1/?a="x"',
        lines=(LineBar(1, _d(0), _d(150), ("<b>drug</b>", "A&B")),),
    )
    svg = swimmer_svg([row], Labels(title="<T>", line="L<%(number)s>"))
    assert "<script>" not in svg and "<b>" not in svg and "<i>" not in svg and "<T>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert "&lt;b&gt;drug&lt;/b&gt;, A&amp;B" in svg
    assert "Arm &quot;B&quot; &amp; &lt;i&gt;co&lt;/i&gt;" in svg
    assert 'href="/p/1/?a=&quot;x&quot;"' in svg
    assert "L&lt;1&gt;" in svg
    assert "&lt;script&gt;" in timeline_svg(row)


def test_translated_labels_are_used():
    row = _row(lines=(LineBar(2, _d(0), None, ("x",)),), progression=_d(20))
    svg = swimmer_svg([row], Labels(line="Ligne %(number)s", progression="Progression (FR)"))
    assert "Ligne 2" in svg and "Progression (FR)" in svg and "Line 2" not in svg


def test_lines_started_long_before_day_0_are_clipped_with_a_marker():
    row = _row(lines=(LineBar(1, _d(-900), _d(30), ("sunitinib",)),))
    svg = swimmer_svg([row])
    assert _count(svg, "sw-earlier") == 1
    assert _count(swimmer_svg([row], min_day=None), "sw-earlier") == 0
    assert _count(timeline_svg(row), "sw-earlier") == 0  # the timeline shows everything


def test_an_empty_plot_says_so():
    assert "No patient with a day 0 yet." in swimmer_svg([])


# ---------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------


def _treat(patient, *, study, agent_name="Blindomab", arm=None, by=None):
    """A line (ongoing), an SBRT course (3 delivered + 1 missed fraction), two study-drug cycles
    and a progression, relative to the patient's enrolment date."""
    start = patient.enrolled_on
    line = SystemicLine.objects.create(
        patient=patient, line_number=1, start=start - timedelta(days=60)
    )
    sunitinib, _ = Agent.objects.get_or_create(name="Sunitinib", defaults={"drug_class": "tki"})
    LineAgent.objects.create(line=line, agent=sunitinib)
    course = RadiotherapyCourse.objects.create(
        patient=patient, number=1, technique="truebeam", planned_start=start + timedelta(days=7)
    )
    for n in range(4):
        Fraction.objects.create(
            course=course,
            number=n + 1,
            day=start + timedelta(days=7 + 2 * n),
            status="missed" if n == 3 else "delivered",
        )
    agent, _ = Agent.objects.get_or_create(name=agent_name, defaults={"drug_class": "other"})
    regimen, _ = DrugRegimen.objects.get_or_create(
        study=study,
        agent=agent,
        defaults={
            "arm": arm,
            "dose": D("1200"),
            "dose_basis": "flat",
            "route": "iv",
            "cycle_length_days": 21,
            "max_cycles": 6,
        },
    )
    for n in range(2):
        day = start + timedelta(days=7 + 21 * n)
        DrugCycle.objects.create(
            patient=patient,
            regimen=regimen,
            number=n + 1,
            planned_on=day,
            given_on=day,
            planned_daily_mg=D("1200"),
            planned_total_mg=D("1200"),
            given_total_mg=D("1200"),
            status="given",
        )
    PatientResponse.objects.create(patient=patient, progression_on=start + timedelta(days=90))
    if arm is not None:
        Allocation.objects.create(patient=patient, arm=arm, part="randomised", allocated_by=by)


def _arm(study, name):
    return Arm.objects.create(study=study, code=name[:3].upper(), name=name)


def _svg(html: str) -> str:
    return html[html.index("<svg") : html.index("</svg>")]


@pytest.fixture
def treated_a(world):
    patient = world.patient_a
    patient.enrolled_on = DAY0
    patient.save()
    arm = _arm(world.s1, "Experimental Omega")
    _treat(patient, study=world.s1, agent_name="Openomab", arm=arm, by=world.user("alice_pi"))
    return patient


def test_the_patient_timeline_shows_line_sbrt_cycles_progression_and_arm(world, treated_a, login):
    client = login(world.user("alice_pi"))
    response = client.get(reverse("patient_timeline", kwargs={"patient_pk": treated_a.pk}))
    assert response.status_code == 200
    html = response.content.decode()
    svg = _svg(html)
    assert _count(svg, "sw-line") == 1 and "Sunitinib" in svg
    assert _count(svg, "sw-arrow") >= 1  # the line is ongoing
    assert _count(svg, "sw-sbrt") == 1
    # From the first to the last *delivered* fraction (the missed one on day 13 is left out).
    assert "SBRT course 1: 2024-03-11 → 2024-03-15" in svg
    assert _count(svg, "sw-cycle") == 2 and "Openomab" in svg
    assert _count(svg, "sw-progression") == 1
    assert "Experimental Omega" in html
    assert "Fractions delivered" in html  # open study: the fraction count is shown
    assert 'data-testid="timeline-cycles"' in html


def test_the_timeline_of_a_patient_without_day_0_says_so(world, login):
    patient = world.patient_a
    patient.enrolled_on = None
    patient.status = Patient.Status.SCREENING
    patient.save()
    client = login(world.user("alice_pi"))
    html = client.get(reverse("patient_timeline", kwargs={"patient_pk": patient.pk}))
    assert "No timeline yet" in html.content.decode()
    assert "<svg" not in _main(html.content.decode())


def _main(html: str) -> str:
    return html[html.index("<main") : html.index("</main>")]


def test_another_sites_patient_timeline_is_404(world, login):
    client = login(world.user("alice_pi"))
    url = reverse("patient_timeline", kwargs={"patient_pk": world.patient_b.pk})
    assert client.get(url).status_code == 404
    url = reverse("patient_timeline", kwargs={"patient_pk": world.patient_c.pk})
    assert client.get(url).status_code == 404


def test_the_pages_accept_only_get(world, login):
    client = login(world.user("alice_pi"))
    url = reverse("patient_timeline", kwargs={"patient_pk": world.patient_a.pk})
    assert client.post(url).status_code == 405
    assert (
        client.post(reverse("study_swimmer", kwargs={"study_pk": world.s1.pk})).status_code == 405
    )


@pytest.fixture
def blinded_c(world):
    """Patient C of the double-blind study S2, allocated and given a study drug."""
    patient = world.patient_c
    patient.enrolled_on = DAY0
    patient.save()
    arm = _arm(world.s2, "Experimental Zeta")
    _treat(patient, study=world.s2, agent_name="Blindomab", arm=arm, by=world.user("pete_planner"))
    user = UserFactory(username="bea_blinded")
    MembershipFactory(
        user=user, study=world.s2, study_site=world.site_c, role=Role.INVESTIGATOR, blinded=True
    )
    return patient, user


@pytest.mark.parametrize("page", ["timeline", "swimmer"])
def test_a_blinded_user_sees_sbrt_but_no_study_drug_and_no_arm(world, blinded_c, login, page):
    patient, blinded = blinded_c
    url = (
        reverse("patient_timeline", kwargs={"patient_pk": patient.pk})
        if page == "timeline"
        else reverse("study_swimmer", kwargs={"study_pk": world.s2.pk})
    )
    html = login(blinded).get(url).content.decode()
    svg = _svg(html)
    assert _count(svg, "sw-sbrt") == 1  # SBRT shown as delivered, with its dates
    assert "2024-03-11 → 2024-03-15" in svg
    assert _count(svg, "sw-line") == 1 and "Sunitinib" in svg
    assert _count(svg, "sw-cycle") == 0
    for hidden in ("Blindomab", "Experimental Zeta", "Study drug", "Fractions delivered"):
        assert hidden not in html, hidden
    assert "you are blinded to allocation" in html
    # The unblinded planner of the same site sees everything on the same page.
    html = login(world.user("pete_planner")).get(url).content.decode()
    assert "Blindomab" in html and "Experimental Zeta" in html
    assert _count(_svg(html), "sw-cycle") == 2
    assert "you are blinded to allocation" not in html


def test_an_emergency_unblinding_opens_that_patient_only_to_its_requester(world, blinded_c, login):
    patient, blinded = blinded_c
    other = PatientFactory(study_site=world.site_c, subject_id="S2-01-002", enrolled_on=DAY0)
    planner = world.user("pete_planner")
    _treat(other, study=world.s2, agent_name="Secretumab", arm=_arm(world.s2, "Kappa"), by=planner)
    EmergencyUnblinding.objects.create(patient=patient, requested_by=blinded, reason="SAE")
    url = reverse("study_swimmer", kwargs={"study_pk": world.s2.pk})
    html = login(blinded).get(url).content.decode()
    assert "Blindomab" in html and "Experimental Zeta" in html
    assert "Secretumab" not in html and "Kappa" not in html
    assert _count(_svg(html), "sw-cycle") == 2  # patient C's two cycles only
    assert "hidden" in html.split('data-testid="swimmer-table"')[1]  # the other row says so
    timeline = reverse("patient_timeline", kwargs={"patient_pk": other.pk})
    assert "Secretumab" not in login(blinded).get(timeline).content.decode()
    # Someone else's unblinding opens nothing.
    colleague = UserFactory(username="cleo_blinded")
    MembershipFactory(
        user=colleague,
        study=world.s2,
        study_site=world.site_c,
        role=Role.INVESTIGATOR,
        blinded=True,
    )
    html = login(colleague).get(url).content.decode()
    assert "Blindomab" not in html and "Experimental Zeta" not in html


def _patients_in(html: str) -> set[str]:
    return set(re.findall(r"S\d-0\d-\d{3}", html))


def test_a_site_user_sees_only_their_sites_patients_on_the_swimmer(world, login):
    url = reverse("study_swimmer", kwargs={"study_pk": world.s1.pk})
    html = login(world.user("bob_pi_site_b")).get(url).content.decode()
    assert _patients_in(_svg(html)) == {"S1-02-001"}
    assert _patients_in(html) == {"S1-02-001"}
    assert "Alpha Institute" not in html  # site A is not offered in the filter
    # Asking for site A by its number does not open it.
    assert login(world.user("bob_pi_site_b")).get(url, {"site": world.site_a.pk}).status_code == 404


def test_the_site_filter_of_a_sponsor_wide_user(world, login):
    client = login(world.user("carl_monitor"))
    url = reverse("study_swimmer", kwargs={"study_pk": world.s1.pk})
    assert _patients_in(_svg(client.get(url).content.decode())) == {"S1-01-001", "S1-02-001"}
    html = client.get(url, {"site": world.site_b.pk}).content.decode()
    assert _patients_in(_svg(html)) == {"S1-02-001"}
    assert client.get(url, {"site": world.site_c.pk}).status_code == 404  # another study's site
    assert client.get(url, {"site": "x"}).status_code == 404
    other = reverse("study_swimmer", kwargs={"study_pk": world.s2.pk})
    assert client.get(other).status_code == 404  # not a study of carl's


def test_dead_and_screening_patients_on_the_swimmer(world, login):
    dead = world.patient_b
    dead.status = Patient.Status.OFF_STUDY
    dead.off_study_reason = Patient.OffStudyReason.DEATH
    dead.status_changed_on = dead.enrolled_on + timedelta(days=30)
    dead.save()
    PatientFactory(
        study_site=world.site_a,
        subject_id="S1-01-009",
        status=Patient.Status.SCREENING,
        enrolled_on=None,
    )
    client = login(world.user("carl_monitor"))
    html = client.get(reverse("study_swimmer", kwargs={"study_pk": world.s1.pk})).content.decode()
    svg = _svg(html)
    assert _count(svg, "sw-death") == 1
    assert "S1-01-009" not in html  # no day 0: not in the plot


@pytest.mark.parametrize(("study", "username"), [("s1", "carl_monitor"), ("s2", "bea_blinded")])
def test_the_swimmer_query_count_is_flat(
    world, blinded_c, login, django_assert_max_num_queries, study, username
):
    study, site = (world.s1, world.site_a) if study == "s1" else (world.s2, world.site_c)
    user = blinded_c[1] if username == "bea_blinded" else world.user(username)
    client = login(user)
    url = reverse("study_swimmer", kwargs={"study_pk": study.pk})

    def add(n):
        for _ in range(n):
            patient = PatientFactory(study_site=site, enrolled_on=DAY0)
            _treat(patient, study=study)

    add(1)
    with django_assert_max_num_queries(20) as small:
        response = client.get(url)
    assert response.status_code == 200
    before = _count(_svg(response.content.decode()), "sw-sbrt")
    assert before >= 1
    add(8)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url)
    assert _count(_svg(response.content.decode()), "sw-sbrt") == before + 8
