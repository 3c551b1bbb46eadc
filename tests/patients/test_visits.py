"""Planned visits (issue #7, parts 1 and 2): kept in step with anchors and CRFs, marked by hand
with an audited reason, listed in the site's calendar; schedules refused in the admin when
they make no sense."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from lesions import services as lesion_services
from lesions.services import LesionRow, MeasurementRow
from patients import lab_services, visit_services
from patients import services as patient_services
from patients.models import Consent
from patients.models_visits import PlannedVisit
from studies.audit import history_for
from studies.models import Study, VisitDefinition
from studies.roles import Role
from studies.services import randomisation_list_upload
from tests.factories import MembershipFactory, PatientFactory, StudyFactory, UserFactory
from tests.patients.conftest import make_ready, today
from treatments import services as course_services
from treatments.services import FractionRow, PrescriptionRow

pytestmark = pytest.mark.django_db


def _day(n: int):
    """``n`` days ago (negative: in ``-n`` days)."""
    return today() - timedelta(days=n)


def _weekdays(n: int, start):
    day, found = start, []
    while len(found) < n:
        if day.weekday() < 5:
            found.append(day)
        day += timedelta(days=1)
    return found


def _visits(patient, code: str) -> list[PlannedVisit]:
    return list(
        PlannedVisit.objects.filter(patient=patient, definition__code=code).order_by("occurrence")
    )


# --- StORM-01 (seed schedule: CT every 61 days after SBRT, clinic at 30 days, post-PD CT) ------


def _storm_patient(seeds, by, number="S001", baseline_days_ago=160):
    patient = make_ready(seeds["STORM-01"], by, number)
    patient_services.patient_enrol(patient=patient, by=by)
    patient.refresh_from_db()
    lesion_services.baseline_record(
        patient=patient,
        by=by,
        scan_date=_day(baseline_days_ago),
        modality="CT",
        rows=[LesionRow("T1", "lung", False, "target", D("30"), "", "progressing", True)],
    )
    return patient


def _course(patient, by, start, *, course=None, reason=""):
    """Three weekday fractions from ``start``; returns (course, last fraction day)."""
    lesion = patient.lesions.get(label="T1")
    fractions = _weekdays(3, start)
    course = course_services.course_record(
        patient=patient,
        by=by,
        course=course,
        reason=reason,
        confirmed=True,
        data={
            "technique": "truebeam",
            "motion_management": "none",
            "image_guidance": "cbct",
            "planned_start": start,
            "planned_end": None,
        },
        prescriptions=[PrescriptionRow(lesion, D("30"), 3, D("10"))],
        fractions=[FractionRow(i + 1, day) for i, day in enumerate(fractions)],
    )
    return course, fractions[-1]


def _scan(patient, by, day, t1="28", *, assessment=None, reason=""):
    return lesion_services.assessment_record(
        patient=patient,
        by=by,
        scan_date=day,
        modality="CT",
        non_target_status="",
        new_lesions="NO",
        measurements={patient.lesions.get(label="T1").pk: MeasurementRow("present", D(t1))},
        assessment=assessment,
        reason=reason,
    )


def test_sbrt_anchored_visits_appear_when_the_course_is_recorded(seeds, investigator):
    patient = _storm_patient(seeds, investigator)
    assert not PlannedVisit.objects.filter(patient=patient).exists()  # SBRT not given yet
    _course_obj, end = _course(patient, investigator, _day(120))
    [clinic] = _visits(patient, "clinic")
    assert (clinic.due_on, clinic.window_start, clinic.window_end) == (
        end + timedelta(days=30),
        end + timedelta(days=23),
        end + timedelta(days=37),
    )
    cts = _visits(patient, "ct")
    assert [v.due_on for v in cts] == [end + timedelta(days=61 * k) for k in range(1, 12)]
    assert all(v.state == "planned" for v in cts)
    assert not _visits(patient, "ct-post-pd")  # no progression


def test_correcting_the_course_moves_planned_visits_and_keeps_done_ones(seeds, investigator):
    patient = _storm_patient(seeds, investigator)
    course, end = _course(patient, investigator, _day(120))
    ct1 = _visits(patient, "ct")[0]
    scan = _scan(patient, investigator, ct1.due_on + timedelta(days=2))
    [clinic] = _visits(patient, "clinic")
    visit_services.visit_mark(visit=clinic, state="done", by=investigator, done_on=today())

    _course_obj, new_end = _course(
        patient, investigator, _day(106), course=course, reason="dates typed wrong"
    )
    shift = new_end - end
    assert shift.days > 0
    cts = _visits(patient, "ct")
    assert (cts[0].state, cts[0].due_on, cts[0].done_form) == (
        "done",
        ct1.due_on,
        f"scan:{scan.pk}",
    )
    assert [v.due_on for v in cts[1:]] == [new_end + timedelta(days=61 * k) for k in range(2, 12)]
    [clinic_after] = _visits(patient, "clinic")
    assert (clinic_after.state, clinic_after.due_on) == ("done", clinic.due_on)


def test_a_scan_inside_the_window_marks_the_imaging_visit_done(seeds, investigator):
    patient = _storm_patient(seeds, investigator)
    _course(patient, investigator, _day(120))
    ct1 = _visits(patient, "ct")[0]
    scan = _scan(patient, investigator, ct1.window_end + timedelta(days=1))
    assert _visits(patient, "ct")[0].state == "planned"  # one day too late
    _scan(patient, investigator, ct1.window_end, assessment=scan, reason="date corrected")
    ct1 = _visits(patient, "ct")[0]
    assert (ct1.state, ct1.done_on, ct1.done_form) == ("done", ct1.window_end, f"scan:{scan.pk}")
    # the scan corrected out of the window again: the visit is open again
    _scan(patient, investigator, ct1.window_start - timedelta(days=1), assessment=scan, reason="x")
    ct1 = _visits(patient, "ct")[0]
    assert (ct1.state, ct1.done_on, ct1.done_form) == ("planned", None, "")


def test_progression_stops_the_ct_schedule_and_starts_post_progression_imaging(seeds, investigator):
    patient = _storm_patient(seeds, investigator, baseline_days_ago=320)
    _course(patient, investigator, _day(300))
    cts = _visits(patient, "ct")
    done = _scan(patient, investigator, cts[0].due_on)  # stable disease
    pd_day = cts[2].due_on - timedelta(days=3)
    _scan(patient, investigator, pd_day, t1="45")  # progression
    patient.response.refresh_from_db()
    assert patient.response.progression_on == pd_day
    cts = _visits(patient, "ct")
    assert [v.occurrence for v in cts] == [1, 2]
    assert cts[0].done_form == f"scan:{done.pk}"
    post = _visits(patient, "ct-post-pd")
    assert post[0].due_on == pd_day + timedelta(days=84)
    assert all(v.due_on - pd_day <= timedelta(days=730) for v in post)


def test_visits_after_going_off_study_are_not_applicable(seeds, investigator):
    patient = _storm_patient(seeds, investigator)
    _course(patient, investigator, _day(120))
    patient_services.patient_change_status(
        patient=patient,
        new_status="off_study",
        on=today(),
        by=investigator,
        reason="patient died",
        off_study_reason="death",
    )
    for visit in PlannedVisit.objects.filter(patient=patient):
        expected = "na" if visit.due_on > today() else "planned"
        assert visit.state == expected, visit
    assert PlannedVisit.objects.filter(patient=patient, state="na").count() >= 5
    ct1 = _visits(patient, "ct")[0]
    assert visit_services.visit_status(ct1, today()) == "overdue"
    with pytest.raises(ValidationError, match="off study"):
        na = PlannedVisit.objects.filter(patient=patient, state="na").first()
        visit_services.visit_mark(visit=na, state="missed", by=investigator, reason="gone")


def test_randomisation_anchors_the_stereosarc_schedule(seeds, investigator):
    study = seeds["STEREOSARC"]
    randomisation_list_upload(
        study=study,
        by=investigator,
        rows=[{"stratum": s.number, "sequence": "1", "arm": "A"} for s in study.study_sites.all()],
    )
    patient = make_ready(study, investigator)
    allocation = patient_services.patient_enrol(patient=patient, by=investigator)
    assert allocation.part == "randomised"
    day = visit_services.randomisation_day(allocation, study)
    imaging = _visits(patient, "imaging")
    assert [v.due_on for v in imaging] == [day + timedelta(days=56 * k) for k in range(1, 7)]
    [pfs6] = _visits(patient, "pfs6")
    assert pfs6.due_on == day + timedelta(days=182)


def test_status_of_a_planned_visit_at_its_window_boundaries(seeds, investigator):
    patient = _storm_patient(seeds, investigator)
    _course(patient, investigator, _day(20))
    [clinic] = _visits(patient, "clinic")
    one = timedelta(days=1)
    assert visit_services.visit_status(clinic, clinic.window_start - one) == "upcoming"
    assert visit_services.visit_status(clinic, clinic.window_start) == "due"
    assert visit_services.visit_status(clinic, clinic.window_end) == "due"
    assert visit_services.visit_status(clinic, clinic.window_end + one) == "overdue"
    visit_services.visit_mark(visit=clinic, state="missed", by=investigator, reason="no show")
    clinic.refresh_from_db()
    assert visit_services.visit_status(clinic, clinic.window_end + one) == "missed"


def test_imaging_visits_are_not_marked_done_by_hand(seeds, investigator):
    patient = _storm_patient(seeds, investigator)
    _course(patient, investigator, _day(120))
    ct1 = _visits(patient, "ct")[0]
    with pytest.raises(ValidationError, match="scan or sample is recorded"):
        visit_services.visit_mark(visit=ct1, state="done", by=investigator, done_on=today())


# --- world: study S1 (sites A and B), S2 (site C) ---------------------------------------------


def _definition(study, code="fu", **values) -> VisitDefinition:
    fields = {
        "name": f"Follow-up {code}",
        "kind": "clinical",
        "anchor": "enrolment",
        "offset_days": 30,
        "window_before_days": 5,
        "window_after_days": 5,
        **values,
    }
    return VisitDefinition.objects.create(study=study, code=code, **fields)


def _enrolled_at(study_site, days_ago: int, subject: str):
    patient = PatientFactory(study_site=study_site, subject_id=subject, enrolled_on=_day(days_ago))
    visit_services.visits_sync(patient)
    return patient


def test_a_lab_sample_in_the_window_marks_the_labs_visit_done(world):
    _definition(world.s1, "cbc", kind="labs", offset_days=10, window_before_days=2)
    patient = world.patient_a
    patient.enrolled_on = _day(30)
    patient.save()
    alice = world.user("alice_pi")
    Consent.objects.create(
        patient=patient, consented_on=_day(40), form_version="v1", obtained_by=alice
    )
    visit_services.visits_sync(patient)
    [cbc] = _visits(patient, "cbc")
    assert (cbc.due_on, cbc.state) == (_day(20), "planned")
    lab_services.lab_record(
        patient=patient,
        by=alice,
        sampled_on=_day(23),
        results=[("lymphocytes", D("1.2"), "10^9/L")],
    )
    assert _visits(patient, "cbc")[0].state == "planned"  # before the window
    lab_services.lab_record(
        patient=patient,
        by=alice,
        sampled_on=_day(18),
        results=[("lymphocytes", D("1.1"), "10^9/L")],
    )
    [cbc] = _visits(patient, "cbc")
    assert (cbc.state, cbc.done_on, cbc.done_form) == ("done", _day(18), f"lab:{_day(18)}")


def _calendar(world):
    _definition(world.s1, "fu")
    _definition(world.s1, "ct", kind="imaging", offset_days=90, window_before_days=7)
    return {
        "overdue": _enrolled_at(world.site_a, 40, "S1-01-101"),  # due 10 days ago
        "due": _enrolled_at(world.site_a, 31, "S1-01-102"),  # due yesterday, window still open
        "upcoming": _enrolled_at(world.site_a, 10, "S1-01-103"),  # window opens in 15 days
        "other_site": _enrolled_at(world.site_b, 40, "S1-02-101"),
    }


def test_the_site_calendar_lists_overdue_then_due_then_upcoming_visits_of_that_site(world, login):
    patients = _calendar(world)
    client = login(world.user("alice_pi"))
    response = client.get(reverse("site_visits", kwargs={"site_pk": world.site_a.pk}))
    assert response.status_code == 200
    html = response.content.decode()
    positions = [html.index(p.subject_id) for k, p in patients.items() if k != "other_site"]
    assert positions == sorted(positions)
    assert html.index('data-testid="section-overdue"') < positions[0]
    assert 'data-testid="status-overdue"' in html and 'data-testid="status-due"' in html
    assert "S1-02-101" not in html  # another site's patient
    assert "Follow-up ct" not in html  # opens in more than 30 days
    assert html.count('data-testid="visit-row"') == 3
    imaging_only = client.get(
        reverse("site_visits", kwargs={"site_pk": world.site_a.pk}), {"kind": "imaging"}
    )
    assert imaging_only.content.decode().count('data-testid="visit-row"') == 0


def test_another_sites_calendar_is_404(world, login):
    _calendar(world)
    client = login(world.user("alice_pi"))
    for site in (world.site_b, world.site_c):
        assert client.get(reverse("site_visits", kwargs={"site_pk": site.pk})).status_code == 404
    monitor = login(world.user("carl_monitor"))
    html = monitor.get(reverse("site_visits", kwargs={"site_pk": world.site_b.pk})).content
    assert b"S1-02-101" in html


def test_the_site_calendar_query_count_does_not_grow_with_patients(world, login):
    _definition(world.s1, "fu")
    for n in range(2):
        _enrolled_at(world.site_a, 40 - n, f"S1-01-2{n:02d}")
    client = login(world.user("alice_pi"))
    url = reverse("site_visits", kwargs={"site_pk": world.site_a.pk})
    client.get(url)  # warm the session and caches
    with CaptureQueriesContext(connection) as two:
        assert client.get(url).status_code == 200
    for n in range(2, 10):
        _enrolled_at(world.site_a, 40 - n, f"S1-01-2{n:02d}")
    with CaptureQueriesContext(connection) as ten:
        response = client.get(url)
    assert response.content.decode().count('data-testid="visit-row"') == 10
    assert len(ten) == len(two), [q["sql"] for q in ten.captured_queries]


def test_visits_sync_runs_a_constant_number_of_queries(world):
    _definition(world.s1, "fu", repeat_every_days=30, repeat_until_days=360)
    _definition(world.s1, "ct", kind="imaging", repeat_every_days=60, repeat_until_days=720)
    _definition(world.s1, "cbc", kind="labs", offset_days=7)
    few = _enrolled_at(world.site_a, 40, "S1-01-301")
    many = _enrolled_at(world.site_a, 700, "S1-01-302")
    counts = []
    for patient in (few, many):
        patient.enrolled_on -= timedelta(days=3)
        patient.save()
        with CaptureQueriesContext(connection) as queries:
            visit_services.visits_sync(patient)
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 12
    assert PlannedVisit.objects.filter(patient=many).count() > 15


def test_the_patients_visits_page_shows_statuses_and_is_scoped(world, login):
    patients = _calendar(world)
    client = login(world.user("alice_pi"))
    url = reverse("patient_visits", kwargs={"patient_pk": patients["overdue"].pk})
    html = client.get(url).content.decode()
    assert 'data-testid="status-overdue"' in html and 'data-testid="status-upcoming"' in html
    other = reverse("patient_visits", kwargs={"patient_pk": patients["other_site"].pk})
    assert client.get(other).status_code == 404


def test_marking_a_visit_missed_needs_a_reason_and_is_audited(world, login):
    patients = _calendar(world)
    [visit] = _visits(patients["overdue"], "fu")
    url = reverse("visit_edit", kwargs={"patient_pk": visit.patient_id, "visit_pk": visit.pk})
    client = login(world.user("alice_pi"))
    response = client.post(url, {"state": "missed", "reason": "  "})
    assert response.status_code == 200
    assert "Say why the visit was missed." in response.content.decode()
    visit.refresh_from_db()
    assert visit.state == "planned"
    response = client.post(url, {"state": "missed", "reason": "Patient in hospital elsewhere"})
    assert response.status_code == 302
    visit.refresh_from_db()
    assert (visit.state, visit.missed_reason) == ("missed", "Patient in hospital elsewhere")
    last = history_for(visit)[-1]
    assert (last.reason, last.user) == ("Patient in hospital elsewhere", "alice_pi")
    assert any(c.field == "state" and str(c.new) in {"missed", "Missed"} for c in last.changes)


def test_only_data_entry_roles_mark_visits(world, login):
    patients = _calendar(world)
    [visit] = _visits(patients["overdue"], "fu")
    url = reverse("visit_edit", kwargs={"patient_pk": visit.patient_id, "visit_pk": visit.pk})
    response = login(world.user("carl_monitor")).post(url, {"state": "missed", "reason": "x"})
    assert response.status_code == 403
    visit.refresh_from_db()
    assert visit.state == "planned"


def test_a_clinical_visit_is_marked_done_by_hand_and_can_be_reopened(world, login):
    patients = _calendar(world)
    [visit] = _visits(patients["due"], "fu")
    url = reverse("visit_edit", kwargs={"patient_pk": visit.patient_id, "visit_pk": visit.pk})
    client = login(world.user("nina_nurse"))
    future = client.post(url, {"state": "done", "done_on": _day(-2).isoformat()})
    assert "This date is in the future." in future.content.decode()
    assert client.post(url, {"state": "done", "done_on": today().isoformat()}).status_code == 302
    visit.refresh_from_db()
    assert (visit.state, visit.done_on, visit.done_form) == ("done", today(), "")
    # undoing the mark needs a reason
    assert client.post(url, {"state": "planned", "reason": ""}).status_code == 200
    assert client.post(url, {"state": "planned", "reason": "wrong patient"}).status_code == 302
    visit.refresh_from_db()
    assert (visit.state, visit.done_on) == ("planned", None)


# --- the admin ---------------------------------------------------------------------------------


def _admin_post(client, study, **values):
    data = {
        "study": study.pk,
        "code": "fu-admin",
        "name": "Admin follow-up",
        "kind": "clinical",
        "anchor": "enrolment",
        "offset_days": "30",
        "window_before_days": "7",
        "window_after_days": "7",
        "repeat_every_days": "",
        "repeat_until_days": "",
        "source": "test",
        **values,
    }
    return client.post(reverse("admin:studies_visitdefinition_add"), data)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"window_before_days": "-1"}, "A window cannot be negative."),
        ({"window_after_days": "-7"}, "A window cannot be negative."),
        (
            {"repeat_every_days": "0", "repeat_until_days": "100"},
            "The repeat interval must be at least 1 day",
        ),
        ({"repeat_every_days": "30"}, "A repeated visit needs an end"),
    ],
)
def test_the_admin_refuses_a_schedule_that_makes_no_sense(world, login, values, message):
    client = login(world.user("sam_sponsor"))
    response = _admin_post(client, world.s1, **values)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not VisitDefinition.objects.filter(code="fu-admin").exists()


def test_the_admin_refuses_a_randomisation_anchor_in_a_single_arm_study(world, login):
    single = StudyFactory(code="S3", design=Study.Design.SINGLE_ARM)
    sam = world.user("sam_sponsor")
    MembershipFactory(user=sam, study=single, role=Role.SPONSOR_ADMIN, blinded=True)
    client = login(sam)
    response = _admin_post(client, single, anchor="randomisation")
    assert response.status_code == 200
    assert "This study does not randomise: choose another anchor event." in (
        response.content.decode()
    )
    assert not VisitDefinition.objects.filter(code="fu-admin").exists()
    # in a randomised study the same anchor is accepted
    assert _admin_post(client, world.s1, anchor="randomisation").status_code == 302


def test_a_schedule_added_in_the_admin_is_planned_for_enrolled_patients(world, login):
    client = login(world.user("sam_sponsor"))
    assert _admin_post(client, world.s1).status_code == 302
    world.patient_a.refresh_from_db()
    [visit] = _visits(world.patient_a, "fu-admin")
    assert visit.due_on == world.patient_a.enrolled_on + timedelta(days=30)
    assert not _visits(world.patient_c, "fu-admin")  # another study


def test_site_staff_cannot_edit_schedules_in_the_admin(world, login):
    site_user = UserFactory(username="site_only")
    MembershipFactory(user=site_user, study_site=world.site_a, role=Role.INVESTIGATOR)
    response = _admin_post(login(site_user), world.s1)
    assert response.status_code in {302, 403}
    assert not VisitDefinition.objects.filter(code="fu-admin").exists()
