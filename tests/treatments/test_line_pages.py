"""Systemic therapy lines: bad input refused, corrections audited, endpoints shown, access scoped.

The histories are StORM-01-like (NCT04299646): SBRT to oligoprogression under nivolumab
(line 2), first fraction 2023-02-01.  Day counts, worked by hand: 2023-02-01 -> 2023-09-14 is
225 days (7.4 months of 30.4375 days), -> 2023-09-20 is 231 days, -> 2023-08-01 is 181 days;
2023-09-20 -> 2024-01-10 is 112 days.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from lesions.models import ImagingAssessment, PatientResponse
from studies.audit import history_for
from studies.roles import Role
from tests.factories import MembershipFactory, PatientFactory, StudySiteFactory, UserFactory
from tests.patients.conftest import screen, site_of
from treatments import line_services
from treatments.models import (
    Agent,
    Fraction,
    LineAgent,
    LineAgentEvent,
    RadiotherapyCourse,
    SystemicLine,
    SystemicLineEvent,
)

pytestmark = pytest.mark.django_db

d = date.fromisoformat


@pytest.fixture
def patient(seeds):
    return PatientFactory(study_site=site_of(seeds["STORM-01"]), subject_id="STORM-01-001")


def _agents(*names):
    return list(Agent.objects.filter(name__in=names))


def _line(patient, by, number, start, end=None, stop="", agents=("sunitinib",), **extra):
    return line_services.line_record(
        patient=patient,
        by=by,
        data={
            "line_number": number,
            "start": d(start),
            "end": d(end) if end else None,
            "stop_reason": stop,
            "stop_detail": "",
        },
        agents=_agents(*agents),
        **extra,
    )


def _storm_history(patient, by):
    """Sunitinib, then nivolumab (same-day switch) under which SBRT is given, then cabozantinib."""
    _line(patient, by, 1, "2021-03-01", "2022-06-15", "progression")
    _line(patient, by, 2, "2022-06-15", "2023-09-14", "progression", agents=("nivolumab",))
    _line(patient, by, 3, "2023-09-20", agents=("cabozantinib",))


def _sbrt(patient, first="2023-02-01", days=("2023-02-01", "2023-02-03", "2023-02-06")):
    """A course with a missed fraction before the first delivered one (not the origin)."""
    course = RadiotherapyCourse.objects.create(
        patient=patient, technique="truebeam", planned_start=d("2023-01-30")
    )
    Fraction.objects.create(
        course=course, number=1, day=d("2023-01-30"), status="missed", reason="machine down"
    )
    for number, day in enumerate(days, start=2):
        Fraction.objects.create(course=course, number=number, day=d(day))
    return course


def _scan(patient, day):
    return ImagingAssessment.objects.create(patient=patient, scan_date=d(day), modality="CT")


def _page(client, user, patient):
    client.force_login(user)
    response = client.get(reverse("patient_lines", kwargs={"patient_pk": patient.pk}))
    assert response.status_code == 200
    return response.content.decode()


# ---------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------


def test_a_clean_history_is_saved_with_its_agents(patient, investigator):
    _storm_history(patient, investigator)
    nivolumab, ipilimumab = _agents("nivolumab"), _agents("ipilimumab")
    line = line_services.line_record(
        patient=PatientFactory(study_site=patient.study_site, subject_id="STORM-01-009"),
        by=investigator,
        data={"line_number": 1, "start": d("2022-06-15"), "end": None, "stop_reason": ""},
        agents=nivolumab + ipilimumab + nivolumab,  # chosen twice: one row
    )
    assert SystemicLine.objects.filter(patient=patient).count() == 3
    assert sorted(a.name for a in line.agents.all()) == ["ipilimumab", "nivolumab"]


def test_agents_are_replaced_when_a_line_is_corrected(patient, investigator):
    line = _line(patient, investigator, 1, "2022-06-15", agents=("nivolumab", "ipilimumab"))
    _line(
        patient,
        investigator,
        1,
        "2022-06-15",
        agents=("nivolumab", "cabozantinib"),
        line=line,
        reason="ipilimumab was entered by mistake",
    )
    assert sorted(a.name for a in line.agents.all()) == ["cabozantinib", "nivolumab"]
    assert LineAgent.objects.filter(line=line).count() == 2


BAD_INPUTS = [
    pytest.param(
        dict(number=2, start="2022-06-01"),
        "start",
        "This line starts before line 1 (started 2021-03-01) ended on 2022-06-15.",
        id="overlap",
    ),
    pytest.param(
        dict(number=2, start="2022-07-01", end="2022-06-30", stop="toxicity"),
        "end",
        "The end cannot be before the start.",
        id="end-before-start",
    ),
    pytest.param(
        dict(number=3, start="2022-07-01"),
        "line_number",
        "Entered as line 3, but by start date this is line 2.",
        id="number-mismatch",
    ),
    pytest.param(
        dict(number=2, start="2022-07-01", agents=()),
        "agents",
        "Choose at least one agent.",
        id="no-agent",
    ),
    pytest.param(
        dict(number=2, start="2021-03-01"),
        "start",
        "Line 1 also starts on 2021-03-01: two lines cannot start the same day.",
        id="same-start",
    ),
    pytest.param(
        dict(number=2, start="2022-07-01", stop="toxicity"),
        "stop_reason",
        "A reason for stopping needs an end date",
        id="stop-reason-without-end",
    ),
    pytest.param(
        dict(number=2, start="2022-07-01", end="2022-12-01"),
        "stop_reason",
        "The line has an end date: give the reason for stopping.",
        id="end-without-stop-reason",
    ),
    pytest.param(
        dict(number=1, start="2020-01-01", end="2021-04-01", stop="progression"),
        "end",
        "This line ends on 2021-04-01, after line 2 started on 2021-03-01.",
        id="earlier-line-ending-after-a-saved-line-started",
    ),
    pytest.param(
        dict(number=2, start="2099-01-01"),
        "start",
        "The start cannot be in the future.",
        id="future-start",
    ),
]


@pytest.mark.parametrize(("given", "field", "message"), BAD_INPUTS)
def test_bad_lines_are_refused_and_nothing_is_saved(patient, investigator, given, field, message):
    _line(patient, investigator, 1, "2021-03-01", "2022-06-15", "progression")
    events = SystemicLineEvent.objects.count(), LineAgentEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        _line(patient, investigator, **{"agents": ("nivolumab",), **given})
    assert any(message in text for text in refused.value.message_dict[field])
    assert SystemicLine.objects.count() == 1 and LineAgent.objects.count() == 1
    assert (SystemicLineEvent.objects.count(), LineAgentEvent.objects.count()) == events


def test_a_line_starting_while_the_previous_one_is_ongoing_is_refused(patient, investigator):
    _line(patient, investigator, 1, "2021-03-01")
    with pytest.raises(ValidationError) as refused:
        _line(patient, investigator, 2, "2022-07-01", agents=("nivolumab",))
    assert refused.value.message_dict["start"] == [
        "This line starts while line 1 (started 2021-03-01) has no end date: "
        "enter the end of line 1 first."
    ]
    assert SystemicLine.objects.count() == 1


def test_only_enrolled_patients_have_lines(seeds, investigator):
    screened = screen(seeds["STORM-01"], investigator)
    with pytest.raises(ValidationError, match="enrolled patients only"):
        _line(screened, investigator, 1, "2021-03-01")
    assert not SystemicLine.objects.exists()


def test_correcting_a_line_needs_a_reason_and_is_audited(patient, investigator):
    line = _line(patient, investigator, 1, "2021-03-01")
    with pytest.raises(ValidationError) as refused:
        _line(patient, investigator, 1, "2021-03-01", "2022-06-15", "progression", line=line)
    assert list(refused.value.message_dict) == ["reason"]
    with pytest.raises(ValidationError) as refused:  # every problem is reported at once
        _line(patient, investigator, 1, "2021-03-01", "2021-02-01", "progression", line=line)
    assert sorted(refused.value.message_dict) == ["end", "reason"]
    line.refresh_from_db()
    assert line.end is None
    _line(
        patient,
        investigator,
        1,
        "2021-03-01",
        "2022-06-15",
        "progression",
        line=line,
        reason="progression on the June CT",
    )
    line.refresh_from_db()
    assert line.end == d("2022-06-15") and line.stop_reason == "progression"
    event = SystemicLineEvent.objects.filter(pgh_obj_id=line.pk).order_by("-pgh_id").first()
    assert event.pgh_label == "update" and event.end == d("2022-06-15")
    assert event.pgh_context.metadata["reason"] == "progression on the June CT"
    assert event.pgh_context.metadata["user"] == investigator.pk
    entry = history_for(line)[-1]
    assert entry.reason == "progression on the June CT" and entry.user == investigator.username
    first = SystemicLineEvent.objects.filter(pgh_obj_id=line.pk).order_by("pgh_id").first()
    assert first.pgh_context.metadata["reason"] == "Systemic therapy line"


def test_an_earlier_line_added_later_is_saved_and_the_stale_number_is_warned(
    patient, investigator, client
):
    nivolumab = _line(patient, investigator, 1, "2022-06-15", agents=("nivolumab",))
    _line(patient, investigator, 1, "2021-03-01", "2022-06-15", "progression")
    html = _page(client, investigator, patient)
    assert "Line 2: Entered as line 1, but by start date this is line 2." in html
    # Correcting the stale number clears the warning.
    _line(
        patient,
        investigator,
        2,
        "2022-06-15",
        agents=("nivolumab",),
        line=nivolumab,
        reason="sunitinib line added",
    )
    assert 'data-testid="line-warning"' not in _page(client, investigator, patient)


# ---------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------


def _post(patient, **extra):
    data = {
        "line_number": "2",
        "agents": [a.pk for a in _agents("nivolumab", "ipilimumab")],
        "start": "2022-06-01",
        "end": "",
        "stop_reason": "",
        "stop_detail": "",
    }
    data.update(extra)
    return data


def test_the_line_form_refuses_an_overlap_on_the_field_then_saves(patient, investigator, client):
    _line(patient, investigator, 1, "2021-03-01", "2022-06-15", "progression")
    client.force_login(investigator)
    url = reverse("line_new", kwargs={"patient_pk": patient.pk})
    form = client.get(url).content.decode()
    assert "sunitinib (Tyrosine kinase inhibitor)" in form and "nivolumab (Anti-PD-1)" in form
    assert "Reason for change" not in form
    response = client.post(url, _post(patient))
    assert response.status_code == 200
    assert response.context["form"].errors["start"] == [
        "This line starts before line 1 (started 2021-03-01) ended on 2022-06-15. "
        "A new line may start on the day the previous one ended, not before."
    ]
    assert SystemicLine.objects.count() == 1
    response = client.post(url, _post(patient, start="2022-06-15"))
    assert response.status_code == 302
    assert response.url == reverse("patient_lines", kwargs={"patient_pk": patient.pk})
    line = SystemicLine.objects.get(line_number=2)
    assert sorted(a.name for a in line.agents.all()) == ["ipilimumab", "nivolumab"]


def test_the_correction_form_asks_for_a_reason(patient, investigator, client):
    line = _line(patient, investigator, 1, "2021-03-01")
    client.force_login(investigator)
    url = reverse("line_edit", kwargs={"patient_pk": patient.pk, "line_pk": line.pk})
    data = _post(patient, line_number="1", start="2021-03-01", end="2022-06-15")
    data.update(stop_reason="toxicity", stop_detail="grade 3 diarrhoea")
    response = client.post(url, data)
    assert "Give a reason for changing saved data" in response.content.decode()
    line.refresh_from_db()
    assert line.end is None
    response = client.post(url, {**data, "reason": "stopped for diarrhoea"})
    assert response.status_code == 302
    line.refresh_from_db()
    assert line.stop_reason == "toxicity" and line.stop_detail == "grade 3 diarrhoea"
    assert history_for(line)[-1].reason == "stopped for diarrhoea"


def test_the_page_derives_the_storm_and_stop2_endpoints(patient, investigator, client):
    _storm_history(patient, investigator)
    _sbrt(patient)
    _scan(patient, "2024-01-10")
    PatientResponse.objects.create(patient=patient, progression_on=d("2024-01-10"))
    html = _page(client, investigator, patient)
    assert html.count('data-testid="line"') == 3
    assert "cabozantinib <span" in html and "ongoing" in html
    ends = line_services.patient_endpoints(patient)
    assert ends.origin == d("2023-02-01") and ends.last_contact == d("2024-01-10")
    assert [row.number for row in ends.rows] == [1, 2, 3]
    assert ends.line_at_sbrt.line.line_number == 2
    assert (ends.time_on_line.event, ends.time_on_line.days) == (True, 225)
    assert (ends.time_to_next_line.event, ends.time_to_next_line.days) == (True, 231)
    assert (ends.pfs_nest.event, ends.pfs_nest.days) == (True, 112)
    assert "Line 2 (nivolumab)" in html
    assert "225 days (7.4 months)" in html
    assert "Line 2 stopped on 2023-09-14: Progression." in html
    assert "231 days (7.6 months)" in html
    assert "Line 3 (cabozantinib) started on 2023-09-20." in html
    assert "112 days (3.7 months)" in html and "from 2023-09-20" in html
    assert "Progression on 2024-01-10 on line 3." in html


def test_a_patient_without_a_next_line_is_censored_at_the_last_contact(
    patient, investigator, client
):
    _line(patient, investigator, 1, "2022-06-15", agents=("nivolumab",))
    _sbrt(patient)
    _scan(patient, "2023-08-01")
    html = _page(client, investigator, patient)
    assert "censored" in html and "181 days (5.9 months)" in html
    assert "No next line by the last contact (2023-08-01)." in html
    assert "Line 1 ongoing at the last contact (2023-08-01)." in html
    assert "the patient does not enter the PFS-NEST analysis" in html
    ends = line_services.patient_endpoints(patient)
    assert ends.time_to_next_line.event is False and ends.pfs_nest is None


def test_death_before_a_next_line_is_an_event(patient, investigator):
    _line(patient, investigator, 1, "2022-06-15", agents=("nivolumab",))
    _sbrt(patient)
    patient.off_study_reason = "death"
    patient.status_changed_on = d("2023-05-02")
    patient.save()
    ends = line_services.patient_endpoints(patient)
    assert ends.death == d("2023-05-02")
    assert (ends.time_to_next_line.event, ends.time_to_next_line.days) == (True, 90)
    assert ends.time_to_next_line.reason == "Death on 2023-05-02 before any next line."
    assert ends.time_on_line.reason == "Death on 2023-05-02 while on line 1."


def test_an_inconsistent_history_is_shown_instead_of_endpoints(patient, investigator, client):
    _line(patient, investigator, 1, "2022-06-15", "2023-09-14", "progression")
    _line(patient, investigator, 2, "2023-09-20", agents=("cabozantinib",))
    _sbrt(patient)
    patient.off_study_reason = "death"  # recorded as dead before the last line's dates
    patient.status_changed_on = d("2023-05-02")
    patient.save()
    html = _page(client, investigator, patient)
    assert 'data-testid="endpoints-problem"' in html
    assert "The endpoints cannot be computed: the history is inconsistent" in html
    assert "Time to next systemic therapy" not in html and "days (" not in html


def test_a_line_started_on_the_sbrt_day_is_the_next_line_without_delay(patient, investigator):
    _line(patient, investigator, 1, "2022-06-15", "2023-02-01", "progression")
    _line(patient, investigator, 2, "2023-02-01", agents=("cabozantinib",))
    _sbrt(patient)
    ends = line_services.patient_endpoints(patient)
    assert ends.time_to_next_line.days == 0 and ends.next_line.number == 2
    assert ends.line_at_sbrt.number == 2  # same-day switch: the new line


def test_the_lines_page_query_count_is_flat(
    patient, investigator, client, django_assert_max_num_queries
):
    def add_lines(first, count):
        for number in range(first, first + count):
            start = date(2010 + number, 1, 1)
            _line(
                patient,
                investigator,
                number,
                start.isoformat(),
                f"{2010 + number}-06-30",
                "toxicity",
                agents=("sunitinib", "nivolumab"),
            )

    _sbrt(patient)
    add_lines(1, 2)
    client.force_login(investigator)
    url = reverse("patient_lines", kwargs={"patient_pk": patient.pk})
    with django_assert_max_num_queries(20) as small:
        assert client.get(url).status_code == 200
    add_lines(3, 10)
    with django_assert_max_num_queries(len(small.captured_queries)):
        html = client.get(url).content.decode()
    assert html.count('data-testid="line"') == 12


# ---------------------------------------------------------------------------
# Access
# ---------------------------------------------------------------------------


def test_a_user_of_another_site_gets_404(seeds, patient, investigator, client):
    line = _line(patient, investigator, 1, "2021-03-01")
    other_site = StudySiteFactory(study=seeds["STORM-01"])
    stranger = UserFactory(username="olga_other_site")
    MembershipFactory(
        user=stranger, study=other_site.study, study_site=other_site, role=Role.INVESTIGATOR
    )
    client.force_login(stranger)
    kwargs = {"patient_pk": patient.pk}
    assert client.get(reverse("patient_lines", kwargs=kwargs)).status_code == 404
    assert client.get(reverse("line_new", kwargs=kwargs)).status_code == 404
    edit = reverse("line_edit", kwargs={**kwargs, "line_pk": line.pk})
    assert client.get(edit).status_code == 404


def test_a_line_of_another_patient_is_not_found(seeds, patient, investigator, client):
    other = PatientFactory(study_site=patient.study_site, subject_id="STORM-01-002")
    line = _line(other, investigator, 1, "2021-03-01")
    client.force_login(investigator)
    url = reverse("line_edit", kwargs={"patient_pk": patient.pk, "line_pk": line.pk})
    assert client.get(url).status_code == 404
    assert client.post(url, _post(patient, line_number="1")).status_code == 404
    assert SystemicLine.objects.get().patient == other


def test_a_monitor_reads_the_page_but_cannot_enter_lines(seeds, patient, investigator, client):
    line = _line(patient, investigator, 1, "2021-03-01")
    monitor = UserFactory(username="mo_monitor")
    MembershipFactory(user=monitor, study=seeds["STORM-01"], role=Role.MONITOR, blinded=True)
    html = _page(client, monitor, patient)
    assert "sunitinib" in html
    new_url = reverse("line_new", kwargs={"patient_pk": patient.pk})
    edit_url = reverse("line_edit", kwargs={"patient_pk": patient.pk, "line_pk": line.pk})
    assert new_url not in html and edit_url not in html
    assert client.get(new_url).status_code == 403
    assert client.post(new_url, _post(patient, start="2022-06-15")).status_code == 403
    assert client.get(edit_url).status_code == 403
    assert SystemicLine.objects.count() == 1
    investigator_html = _page(client, investigator, patient)
    assert new_url in investigator_html and edit_url in investigator_html
