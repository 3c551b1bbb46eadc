"""Scheduled report emails (issue #7 part 5): each study's schedule on its own clock, one delivery
per recipient and period (never duplicated), the PDF in the recipient's scope, blinding and
language, sent by a real Celery worker and retried with back-off when the mail server fails."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from patients.models import Allocation
from studies import tasks
from studies.models import Membership, ReportDelivery, ReportSchedule, UserPreference
from studies.roles import Role
from studies.tasks import send_report_delivery, send_scheduled_reports
from tests.factories import MembershipFactory, UserFactory
from tests.studies.test_reports_pdf import pdf_pages, pdf_text

UNREACHABLE = {
    "default": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},
    }
}
# Study S1 of the world: site roles get their site's report, sponsor roles the study report.
SITE_RECIPIENTS = {"alice_pi": "site_a", "nina_nurse": "site_a", "bob_pi_site_b": "site_b"}
STUDY_RECIPIENTS = {"dora_datamanager", "sam_sponsor", "tom_statistician"}


def _wait_until(predicate, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.fixture
def scheduled(world):
    ReportSchedule.objects.create(study=world.s1, frequency="weekly", weekday=0, hour=6)
    UserPreference.objects.create(user=world.user("nina_nurse"), language="fr")
    mail.outbox.clear()
    return world


def _attachment(message):
    (attachment,) = message.attachments
    assert attachment.mimetype == "application/pdf"
    assert attachment.filename.endswith(".pdf")
    return attachment.content


@pytest.mark.django_db(transaction=True)
def test_scheduled_reports_are_emailed_once_per_recipient_by_a_real_worker(
    scheduled, celery_worker
):
    world = scheduled
    assert send_scheduled_reports(force=True) == len(SITE_RECIPIENTS) + len(STUDY_RECIPIENTS)
    _wait_until(lambda: ReportDelivery.objects.filter(sent_at__isnull=False).count() == 6)
    assert len(mail.outbox) == 6
    by_address = {m.to[0]: m for m in mail.outbox}
    institutions = {"site_a": "Alpha Institute", "site_b": "Beta Hospital"}
    for name, site in SITE_RECIPIENTS.items():
        user = world.user(name)
        message = by_address[user.email]
        pages = pdf_pages(_attachment(message))
        text = " ".join(pages)
        # The site's own report only: no other site, no comparison.
        assert institutions[site] in text and "Per-site comparison" not in text
        other = "site_b" if site == "site_a" else "site_a"
        assert institutions[other] not in text
        patient = world.patient_a if site == "site_a" else world.patient_b
        assert patient.subject_id in text
        delivery = ReportDelivery.objects.get(recipient=user)
        assert (delivery.kind, delivery.study_site_id) == ("site", getattr(world, site).pk)
        assert delivery.attempts == 1 and delivery.last_error == ""
        # In the recipient's language.
        expected = "sur" if name == "nina_nurse" else "of"
        assert pages[0].endswith(f"Page 1 {expected} {len(pages)}")
        assert delivery.language == ("fr" if name == "nina_nurse" else "en")
    for name in STUDY_RECIPIENTS:
        user = world.user(name)
        text = pdf_text(_attachment(by_address[user.email]))
        assert "Per-site comparison" in text
        assert "Alpha Institute" in text and "Beta Hospital" in text
        assert world.patient_c.subject_id not in text  # another study
        delivery = ReportDelivery.objects.get(recipient=user)
        assert (delivery.kind, delivery.study_site_id) == ("study", None)
    # Not a recipient: a monitor, and the users of another study.
    assert world.user("carl_monitor").email not in by_address
    assert world.user("pete_planner").email not in by_address

    # Run again in the same period: nothing new, nothing sent twice.
    assert send_scheduled_reports(force=True) == 0
    delivery = ReportDelivery.objects.get(recipient=world.user("alice_pi"))
    # The send task delivered twice (a redelivery after a crash) sends nothing either.
    assert send_report_delivery.delay(delivery.pk).get(timeout=30) is False
    time.sleep(1)
    assert len(mail.outbox) == 6 and ReportDelivery.objects.count() == 6


@pytest.mark.django_db(transaction=True)
def test_a_delivery_is_retried_by_the_worker_until_the_mail_server_answers(
    scheduled, celery_worker
):
    world = scheduled
    schedule = ReportSchedule.objects.get()
    alice = world.user("alice_pi")
    delivery = ReportDelivery.objects.create(
        schedule=schedule,
        period="2026-W48",
        kind="site",
        study_site=world.site_a,
        recipient=alice,
        email=alice.email,
    )
    with override_settings(MAILERS=UNREACHABLE):
        send_report_delivery.delay(delivery.pk)
        # Every failed attempt is recorded; the task retries with back-off.
        _wait_until(lambda: ReportDelivery.objects.get(pk=delivery.pk).attempts >= 2)
        failed = ReportDelivery.objects.get(pk=delivery.pk)
        assert failed.sent_at is None and failed.last_error and failed.last_attempt_at
        assert mail.outbox == []
    _wait_until(lambda: ReportDelivery.objects.get(pk=delivery.pk).sent_at is not None)
    delivered = ReportDelivery.objects.get(pk=delivery.pk)
    assert delivered.attempts >= 3 and delivered.last_error == ""
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [alice.email]
    assert "Alpha Institute" in pdf_text(_attachment(mail.outbox[0]))


@pytest.mark.django_db
def test_a_failed_delivery_records_the_error_and_the_hourly_run_retries_it(
    scheduled, monkeypatch, django_capture_on_commit_callbacks
):
    world = scheduled
    queued: list[int] = []
    monkeypatch.setattr(tasks.send_report_delivery, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        assert send_scheduled_reports(force=True) == 6
    assert sorted(queued) == sorted(ReportDelivery.objects.values_list("pk", flat=True))
    delivery = ReportDelivery.objects.get(recipient=world.user("alice_pi"))
    # Called directly, the task re-raises the error that makes Celery retry it with back-off.
    with override_settings(MAILERS=UNREACHABLE), pytest.raises(OSError):
        send_report_delivery.run(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.sent_at) == (1, None)
    assert delivery.last_error and delivery.last_attempt_at is not None
    assert mail.outbox == []
    # Once the task's own retries are spent, the hourly run enqueues it again (at most hourly).
    queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert send_scheduled_reports(force=True) == 0
    assert queued == []  # tried a moment ago; the others were created a moment ago
    ReportDelivery.objects.filter(pk=delivery.pk).update(
        last_attempt_at=timezone.now() - timedelta(hours=2)
    )
    send_scheduled_reports(force=True)
    assert queued == [delivery.pk]
    assert send_report_delivery.run(delivery.pk) is True
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.sent_at is not None and delivery.last_error == ""
    assert len(mail.outbox) == 1 and "Alpha Institute" in pdf_text(_attachment(mail.outbox[0]))
    assert send_report_delivery.run(delivery.pk) is False  # sent once only
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_recipient_who_lost_access_gets_nothing_and_the_error_is_recorded(scheduled):
    world = scheduled
    alice = world.user("alice_pi")
    delivery = ReportDelivery.objects.create(
        schedule=ReportSchedule.objects.get(),
        period="2026-W48",
        kind="site",
        study_site=world.site_a,
        recipient=alice,
        email=alice.email,
    )
    Membership.objects.filter(user=alice).update(is_active=False)
    assert send_report_delivery.run(delivery.pk) is False
    delivery.refresh_from_db()
    assert delivery.sent_at is None and delivery.attempts == 1
    assert "ReportNotAllowed" in delivery.last_error
    assert mail.outbox == []


@pytest.mark.django_db
def test_each_recipient_gets_the_report_their_blinding_allows(world):
    """S2 is double-blind: the unblinded planner's report names the arm, a blinded PI's not."""
    arm = world.s2.arms.order_by("code").first()
    arm.name = "QQARMMARKERQQ"
    arm.save()
    Allocation.objects.create(
        patient=world.patient_c, arm=arm, part="randomised", allocated_by=world.user("pete_planner")
    )
    blinded = UserFactory(username="bea_blinded_pi")
    MembershipFactory(
        user=blinded, study=world.s2, study_site=world.site_c, role=Role.INVESTIGATOR, blinded=True
    )
    schedule = ReportSchedule.objects.create(
        study=world.s2, frequency="monthly", day_of_month=1, hour=6
    )
    texts = {}
    for user in (blinded, world.user("pete_planner"), world.user("una_unblinded_stat")):
        kind = "study" if user.username.startswith("una") else "site"
        delivery = ReportDelivery.objects.create(
            schedule=schedule,
            period="2026-12",
            kind=kind,
            study_site=world.site_c if kind == "site" else None,
            recipient=user,
            email=user.email,
        )
        assert send_report_delivery.run(delivery.pk) is True
        texts[user.username] = pdf_text(_attachment(mail.outbox[-1]))
    assert world.patient_c.subject_id in texts["bea_blinded_pi"]
    assert "QQARMMARKERQQ" not in texts["bea_blinded_pi"]
    assert "QQARMMARKERQQ" in texts["pete_planner"]
    assert "QQARMMARKERQQ" in texts["una_unblinded_stat"]
    assert "December 2026" in texts["pete_planner"]


# --- the schedule's clock -------------------------------------------------------------------------


@pytest.mark.django_db
def test_reports_go_out_on_each_studys_own_day_and_hour(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    world.s1.time_zone = "America/Vancouver"  # UTC-8 in November
    world.s1.save()
    ReportSchedule.objects.create(study=world.s1, frequency="weekly", weekday=0, hour=6)
    ReportSchedule.objects.create(study=world.s2, frequency="monthly", day_of_month=1, hour=6)
    ReportSchedule.objects.create(study=world.s2, frequency="weekly", weekday=0, active=False)
    queued: list[int] = []
    monkeypatch.setattr(tasks.send_report_delivery, "delay", queued.append)
    clock = {"now": timezone.now()}
    monkeypatch.setattr(timezone, "now", lambda: clock["now"])

    def run_at(*utc) -> int:
        clock["now"] = datetime(*utc, tzinfo=UTC)
        with django_capture_on_commit_callbacks(execute=True):
            return send_scheduled_reports()

    def periods() -> set[tuple[str, str]]:
        return set(ReportDelivery.objects.values_list("schedule__study__code", "period"))

    # Monday 23 November 2026, 05:15 in Vancouver: not yet.
    assert run_at(2026, 11, 23, 13, 15) == 0
    # 06:15 in Vancouver: S1's six recipients (three site reports, three study reports).
    assert run_at(2026, 11, 23, 14, 15) == 6
    assert periods() == {("S1", "2026-W48")}
    assert sorted(queued) == sorted(ReportDelivery.objects.values_list("pk", flat=True))
    # Later the same day (a missed beat caught up), or the next day: nothing more.
    assert run_at(2026, 11, 23, 17, 15) == 0
    assert run_at(2026, 11, 24, 14, 15) == 0
    # The next Monday: the next period.
    assert run_at(2026, 11, 30, 14, 15) == 6
    # S2 monthly, on the 1st at 06:00 in Paris (05:00 UTC): the planner's site report and the
    # unblinded statistician's study report.
    assert run_at(2026, 12, 1, 4, 15) == 0
    assert run_at(2026, 12, 1, 5, 15) == 2
    assert periods() == {("S1", "2026-W48"), ("S1", "2026-W49"), ("S2", "2026-12")}
    s2 = ReportDelivery.objects.filter(schedule__study=world.s2)
    assert set(s2.values_list("kind", "recipient__username")) == {
        ("site", "pete_planner"),
        ("study", "una_unblinded_stat"),
    }
    assert ReportDelivery.objects.count() == 14
    # Every delivery was enqueued (and those never tried re-enqueued by later hourly runs).
    assert set(queued) == set(ReportDelivery.objects.values_list("pk", flat=True))


def test_period_keys():
    from datetime import date

    assert tasks.report_period("weekly", date(2026, 11, 23)) == "2026-W48"
    assert tasks.report_period("weekly", date(2027, 1, 1)) == "2026-W53"
    assert tasks.report_period("monthly", date(2026, 11, 30)) == "2026-11"


# --- the sponsor's panel --------------------------------------------------------------------------


@pytest.mark.django_db
def test_sponsor_administrators_edit_schedules_and_everyone_staff_reads_deliveries(world, login):
    from django.urls import reverse

    sam = login(world.user("sam_sponsor"))
    add = reverse("admin:studies_reportschedule_add")
    html = sam.get(add).content.decode()
    assert "S1-TRIAL" in html and "S2-BLIND" not in html
    base = {"study": world.s1.pk, "hour": 6, "active": "on"}
    # A weekly schedule needs its day: refused with a clear message.
    refused = sam.post(add, {**base, "frequency": "weekly"})
    assert refused.status_code == 200 and "Choose the day of the week." in refused.content.decode()
    assert sam.post(add, {**base, "frequency": "weekly", "weekday": 0}).status_code == 302
    schedule = ReportSchedule.objects.get(study=world.s1)
    # A study the user does not administer is not offered.
    assert (
        sam.post(
            add, {**base, "study": world.s2.pk, "frequency": "weekly", "weekday": 1}
        ).status_code
        == 200
    )
    assert not ReportSchedule.objects.filter(study=world.s2).exists()
    alice = world.user("alice_pi")
    delivery = ReportDelivery.objects.create(
        schedule=schedule,
        period="2026-W48",
        kind="site",
        study_site=world.site_a,
        recipient=alice,
        email=alice.email,
        last_error="SMTPServerDisconnected: QQERRORQQ",
    )
    # The delivery log: read-only, scoped to the reader's studies.
    carl = login(world.user("carl_monitor"))
    html = carl.get(reverse("admin:studies_reportdelivery_changelist")).content.decode()
    assert alice.email in html and "QQERRORQQ" in html
    change = reverse("admin:studies_reportdelivery_change", args=[delivery.pk])
    assert carl.post(change, {"email": "x@example.org"}).status_code == 403
    assert reverse("admin:studies_reportdelivery_add") not in html
    una = login(world.user("una_unblinded_stat"))  # staff of another study
    assert una.get(change).status_code == 404
    html = una.get(reverse("admin:studies_reportdelivery_changelist")).content.decode()
    assert alice.email not in html
