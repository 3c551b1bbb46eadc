"""The synthetic portfolio (studies/portfolio.py): deterministic, clinically coherent, audited,
and the pages' SQL query counts identical when it grows tenfold."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from lesions.models import ImagingAssessment, Measurement, PatientResponse, TimepointResult
from patients.lab_services import grade_result
from patients.models import Patient
from patients.models_safety import AdverseEvent, LabResult, NormalRange
from patients.models_visits import PlannedVisit
from studies import portfolio
from studies.audit import event_model_for, history_for
from treatments.models import Fraction

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 1)


def _generate(patients: int, sites: int = 2, audit: int = 0, seed: int = 7) -> dict:
    size = portfolio.custom_size(patients, sites, audit)
    return portfolio.Generator(size, seed=seed, today=TODAY).run()


def _fingerprint() -> list:
    return list(
        Measurement.objects.order_by(
            "assessment__patient__screening_number", "assessment__scan_date", "lesion__label"
        ).values_list(
            "assessment__patient__screening_number",
            "assessment__scan_date",
            "lesion__label",
            "diameter_mm",
        )
    )


def test_same_seed_gives_the_same_portfolio_and_another_seed_another():
    prints = []
    for seed in (7, 7, 8):
        with transaction.atomic():
            _generate(6, seed=seed)
            prints.append(_fingerprint())
            transaction.set_rollback(True)
    assert prints[0] and prints[0] == prints[1]
    assert prints[0] != prints[2]


def test_refuses_to_run_twice_on_one_database():
    _generate(4)
    with pytest.raises(RuntimeError, match="already holds"):
        _generate(4)


def test_portfolio_is_clinically_coherent_and_audited():
    counts = _generate(14, audit=6000)
    enrolled = Patient.objects.filter(enrolled_on__isnull=False)
    assert enrolled.count() >= 7  # about 92 % are enrolled
    # Responses come from the RECIST engine: one result per enrolled patient, per follow-up.
    assert PatientResponse.objects.count() == enrolled.count()
    follow_ups = ImagingAssessment.objects.filter(is_baseline=False).count()
    assert TimepointResult.objects.count() == follow_ups
    assert set(PatientResponse.objects.values_list("best_overall_response", flat=True)) <= {
        "CR",
        "PR",
        "SD",
        "PD",
        "NE",
    }
    # Lab grades are the grader's, with the site's normal range.
    ranges = {(r.study_site_id, r.analyte): r for r in NormalRange.objects.all()}
    for lab in LabResult.objects.select_related("patient")[:200]:
        expected = grade_result(
            lab.analyte, lab.value, lab.unit, ranges[(lab.patient.study_site_id, lab.analyte)]
        )
        assert (lab.grade, lab.ctcae_term) == (expected.grade, expected.term)
    # AE grades exist for their CTCAE term; SBRT fractions are given on weekdays.
    for ae in AdverseEvent.objects.select_related("term")[:200]:
        assert getattr(ae.term, f"grade{ae.grade}").strip() not in ("", "-")
        assert ae.onset_on >= ae.patient.enrolled_on
    assert all(day.weekday() < 5 for day in Fraction.objects.values_list("day", flat=True))
    assert PlannedVisit.objects.filter(state="done").exists()
    # An audit trail: an insert event for every measurement, corrections with a reason and user.
    event = event_model_for(Measurement)
    assert event.objects.filter(pgh_label="insert").count() == Measurement.objects.count()
    assert counts["audit events"] >= 0.95 * 6000  # the size asks for about 6,000
    measurement = Measurement.objects.filter(
        pk__in=event.objects.filter(pgh_label="update").values("pgh_obj_id")
    ).first()
    history = history_for(measurement)
    assert history[0].action == "insert" and history[0].user.startswith("synth-pi-")
    assert any(entry.reason for entry in history[1:])
    assert all(a.when <= b.when for a, b in zip(history, history[1:], strict=False)), (
        "corrections come after the insert"
    )
    # Triggers are back on after the generator: the audit trail records a new write.
    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"
    before = event.objects.count()
    Measurement.objects.filter(pk=measurement.pk).update(diameter_mm=Decimal("12.3"))
    assert event.objects.count() == before + 1


# --- query counts at two sizes ----------------------------------------------------------------


def _pages() -> dict[str, str]:
    site = portfolio.bench_site()
    patient = portfolio.bench_patient()
    scan = patient.assessments.filter(is_baseline=False).order_by("scan_date").first()
    pages = {
        "patient list": reverse("patient_list", args=[site.pk]),
        "site dashboard": reverse("study_site_detail", args=[site.pk]),
        "site forms": reverse("site_forms", args=[site.pk]),
        "site visits": reverse("site_visits", args=[site.pk]),
        "casebook": reverse("casebook", args=[patient.pk]),
        "patient": reverse("patient_detail", args=[patient.pk]),
        "lesions": reverse("patient_lesions", args=[patient.pk]),
        "scan": reverse("scan_edit", args=[patient.pk, scan.pk]),
        "courses": reverse("patient_courses", args=[patient.pk]),
        "course": reverse("course_edit", args=[patient.pk, patient.courses.first().pk]),
        "lines": reverse("patient_lines", args=[patient.pk]),
        "line": reverse("line_edit", args=[patient.pk, patient.systemic_lines.first().pk]),
        "adverse events": reverse("patient_aes", args=[patient.pk]),
        "adverse event": reverse("ae_edit", args=[patient.pk, patient.adverse_events.first().pk]),
        "labs": reverse("patient_labs", args=[patient.pk]),
        "lab": reverse("lab_edit", args=[patient.pk, patient.lab_results.first().pk]),
        "visits": reverse("patient_visits", args=[patient.pk]),
    }
    return pages


CHANGELISTS = {
    "patients": "/admin/patients/patient/",
    "adverse events": "/admin/patients/adverseevent/",
    "labs": "/admin/patients/labresult/",
}


def _query_counts() -> dict[str, int]:
    from django.test.utils import CaptureQueriesContext

    counts = {}
    investigator, dm = Client(), Client()
    users = get_user_model().objects
    investigator.force_login(users.get(username="synth-investigator"))
    dm.force_login(users.get(username="synth-dm"))
    for client, pages in ((investigator, _pages()), (dm, CHANGELISTS)):
        for name, url in pages.items():
            client.get(url)  # warm caches (session, content types) out of the count
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            assert response.status_code == 200, (name, url, response.status_code)
            counts[name] = len(queries)
    return counts


def test_page_queries_are_the_same_at_one_and_ten_times_the_data():
    measured = []
    for patients in (10, 100):
        with transaction.atomic():
            _generate(patients)
            assert Patient.objects.count() == patients
            measured.append(_query_counts())
            transaction.set_rollback(True)
    small, large = measured
    assert small == large
    for name, count in large.items():
        limit = 15 if name in CHANGELISTS else 12
        assert count <= limit, f"{name}: {count} queries (budget {limit})"


def test_daily_reminder_scan_of_every_study_takes_the_same_queries_at_any_size(
    django_assert_num_queries,
):
    from patients import reminders
    from studies.models import Study

    _generate(20, sites=5)
    days = {study: TODAY for study in Study.objects.order_by("pk")}
    one_by_one = {study.pk: reminders.decide(study, TODAY) for study in days}
    with django_assert_num_queries(2):
        together = reminders.decide_many(days)
    assert sum(map(len, together.values())) > 0
    assert {pk: [r.key for r in rows] for pk, rows in together.items()} == {
        pk: [r.key for r in rows] for pk, rows in one_by_one.items()
    }
