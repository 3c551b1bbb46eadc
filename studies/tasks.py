"""Celery tasks of the studies app."""

from __future__ import annotations

import smtplib

from celery import shared_task
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone


@shared_task(acks_late=True)
def heartbeat() -> str:
    """Beat sends this every 5 minutes; the answer proves a worker is consuming the queue."""
    now = timezone.now().isoformat()
    cache.set("oligocrf:worker-heartbeat", now, timeout=None)
    return now


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=10,
)
def send_outbox_email(self, email_id: int) -> bool:
    """Send one outbox email once: claim it, send it, mark it sent."""
    from django.core.mail import send_mail

    from studies.models import OutboxAttempt, OutboxEmail

    email = OutboxEmail.objects.filter(pk=email_id, sent_at__isnull=True).first()
    if email is None:
        return False  # sent already (a duplicate delivery of this task)
    failure: Exception | None = None
    with transaction.atomic():
        # Row lock: a second worker running this task at the same time waits, then sees it sent.
        email = OutboxEmail.objects.select_for_update().get(pk=email_id)
        if email.sent_at is not None:
            return False
        try:
            send_mail(email.subject, email.body, None, email.to)
        except (OSError, smtplib.SMTPException) as error:
            failure = error
        now = timezone.now()
        OutboxEmail.objects.filter(pk=email_id).update(
            attempts=F("attempts") + 1,
            last_attempt_at=now,
            sent_at=None if failure else now,
            last_error=str(failure)[:1000] if failure else "",
        )
        OutboxAttempt.objects.create(
            email_id=email_id, ok=failure is None, error=str(failure)[:1000] if failure else ""
        )
    if failure is not None:
        raise failure  # autoretry with back-off; the attempt is recorded
    return True


#: The sweep waits this long after a failed attempt before trying again (after the task's own
#: retries are spent): an email is retried until it is delivered, at least once an hour.
SWEEP_RETRY_AFTER = 3600


@shared_task(acks_late=True)
def send_pending_outbox(older_than_seconds: int = 120) -> int:
    """Beat sweep: re-enqueue unsent emails whose send task was lost or gave up.

    Never sent and older than ``older_than_seconds`` (e.g. the broker was down at commit), or
    last tried more than ``SWEEP_RETRY_AFTER`` seconds ago: retried until delivered.
    """
    from datetime import timedelta

    from django.db.models import Q

    from studies.models import OutboxEmail

    now = timezone.now()
    never_tried = Q(
        last_attempt_at__isnull=True, created_at__lt=now - timedelta(seconds=older_than_seconds)
    )
    tried_long_ago = Q(last_attempt_at__lt=now - timedelta(seconds=SWEEP_RETRY_AFTER))
    pending = list(
        OutboxEmail.objects.filter(sent_at__isnull=True)
        .filter(never_tried | tried_long_ago)
        .order_by("created_at")
        .values_list("pk", flat=True)[:500]
    )
    for pk in pending:
        send_outbox_email.delay(pk)
    return len(pending)


# --- PDF reports (issue #7): on demand, and scheduled emails --------------------------------------


@shared_task(acks_late=True)
def generate_report_job(job_id: int) -> str:
    """Build the PDF of an on-demand report job; the page polls its progress."""
    from django.utils import translation

    from studies.models import ReportJob
    from studies.reports import SITE, STUDY, ReportNotAllowed, build_report

    job = ReportJob.objects.select_related("requested_by").filter(pk=job_id).first()
    if job is None or job.state == ReportJob.State.DONE:
        return "gone" if job is None else job.state

    def progress(pct: int) -> None:
        ReportJob.objects.filter(pk=job_id).update(progress=min(max(pct, 0), 99))

    ReportJob.objects.filter(pk=job_id).update(state=ReportJob.State.RUNNING, progress=5)
    try:
        pdf = build_report(
            job.requested_by,
            kind=SITE if job.study_site_id else STUDY,
            study_id=job.study_id,
            study_site_id=job.study_site_id,
            language=job.language,
            progress=progress,
        )
    except ReportNotAllowed:
        with translation.override(job.language):
            error = translation.gettext("You may no longer read this report.")
        _finish_job(job_id, ReportJob.State.FAILED, error=error)
        return ReportJob.State.FAILED
    except Exception as failure:  # noqa: BLE001 - recorded on the job, shown on its page
        _finish_job(job_id, ReportJob.State.FAILED, error=f"{type(failure).__name__}: {failure}")
        raise
    _finish_job(job_id, ReportJob.State.DONE, pdf=pdf)
    return ReportJob.State.DONE


def _finish_job(job_id: int, state: str, *, pdf: bytes | None = None, error: str = "") -> None:
    from studies.models import ReportJob

    ReportJob.objects.filter(pk=job_id).update(
        state=state,
        progress=100,
        pdf=pdf,
        error=error[:2000],
        finished_at=timezone.now(),
    )


def report_period(frequency: str, local_date) -> str:
    """The key of the period a scheduled report belongs to: "2026-W48" or "2026-11"."""
    if frequency == "weekly":
        year, week, _day = local_date.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{local_date:%Y-%m}"


def schedule_is_due(schedule, local_now) -> bool:
    """Due on its day, from its hour on (a beat run missed at that hour is caught up later the
    same day; the delivery rows make a second run of the period send nothing more)."""
    if local_now.hour < schedule.hour:
        return False
    if schedule.frequency == "weekly":
        return schedule.weekday is not None and local_now.weekday() == schedule.weekday
    return schedule.day_of_month is not None and local_now.day == schedule.day_of_month


#: Unsent deliveries are re-enqueued by the hourly run (a lost task, a broker down at commit,
#: retries spent), for this long after they were created.
DELIVERY_RETRY_FOR = 7 * 24 * 3600


@shared_task(acks_late=True)
def send_scheduled_reports(force: bool = False) -> int:
    """Hourly (beat): create each due schedule's deliveries for the period, then send them.

    ``force`` treats every active schedule as due now (tests, or an administrator's resend).
    Returns the number of deliveries created.
    """
    from zoneinfo import ZoneInfo

    from studies.models import ReportDelivery, ReportSchedule
    from studies.reports.selectors import SITE, report_recipients

    created = 0
    now = timezone.now()
    for schedule in ReportSchedule.objects.filter(active=True).select_related("study"):
        try:
            zone = ZoneInfo(schedule.study.time_zone)
        except (ValueError, KeyError):
            zone = timezone.get_default_timezone()
        local_now = timezone.localtime(now, zone)
        if not (force or schedule_is_due(schedule, local_now)):
            continue
        period = report_period(schedule.frequency, local_now.date())
        with transaction.atomic():
            for recipient in report_recipients(schedule.study_id):
                delivery, new = ReportDelivery.objects.get_or_create(
                    schedule=schedule,
                    period=period,
                    kind=recipient.kind,
                    study_site_id=recipient.study_site_id if recipient.kind == SITE else None,
                    recipient_id=recipient.user_id,
                    defaults={"email": recipient.email, "language": recipient.language},
                )
                if new:
                    created += 1
                    transaction.on_commit(lambda pk=delivery.pk: send_report_delivery.delay(pk))
    _requeue_unsent_deliveries(now)
    return created


def _requeue_unsent_deliveries(now) -> None:
    from datetime import timedelta

    from django.db.models import Q

    from studies.models import ReportDelivery

    never_tried = Q(last_attempt_at__isnull=True, created_at__lt=now - timedelta(minutes=10))
    tried_long_ago = Q(last_attempt_at__lt=now - timedelta(seconds=SWEEP_RETRY_AFTER))
    pending = (
        ReportDelivery.objects.filter(
            sent_at__isnull=True, created_at__gte=now - timedelta(seconds=DELIVERY_RETRY_FOR)
        )
        .filter(never_tried | tried_long_ago)
        .order_by("created_at")
        .values_list("pk", flat=True)[:200]
    )
    for pk in pending:
        send_report_delivery.delay(pk)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=8,
)
def send_report_delivery(self, delivery_id: int) -> bool:
    """Build one recipient's report (their scope, blinding and language) and email it, once."""
    from studies.models import ReportDelivery

    delivery = (
        ReportDelivery.objects.select_related("schedule__study", "study_site", "recipient")
        .filter(pk=delivery_id, sent_at__isnull=True)
        .first()
    )
    if delivery is None:
        return False  # sent already (a duplicate delivery of this task), or deleted
    try:
        message = _report_message(delivery)
    except Exception as failure:  # noqa: BLE001 - recorded, then retried (or given up)
        _record_attempt(delivery_id, failure)
        if isinstance(failure, OSError | smtplib.SMTPException):
            raise
        return False
    failure: Exception | None = None
    with transaction.atomic():
        # Row lock: a second worker running this task at the same time waits, then sees it sent.
        locked = ReportDelivery.objects.select_for_update().get(pk=delivery_id)
        if locked.sent_at is not None:
            return False
        try:
            message.send()
        except (OSError, smtplib.SMTPException) as error:
            failure = error
        _record_attempt(delivery_id, failure)
    if failure is not None:
        raise failure  # autoretry with back-off; the attempt is recorded
    return True


def _record_attempt(delivery_id: int, failure: Exception | None) -> None:
    from studies.models import ReportDelivery

    now = timezone.now()
    ReportDelivery.objects.filter(pk=delivery_id).update(
        attempts=F("attempts") + 1,
        last_attempt_at=now,
        sent_at=None if failure else now,
        last_error=f"{type(failure).__name__}: {failure}"[:1000] if failure else "",
    )


def _report_message(delivery):
    """The email of one delivery, with the PDF built for its recipient."""
    from django.core.mail import EmailMessage
    from django.utils import translation
    from django.utils.translation import gettext as _

    from studies.models import ReportDelivery
    from studies.reports import build_report, report_filename
    from studies.reports.pdf import period_label

    study = delivery.schedule.study
    site = delivery.study_site if delivery.kind == ReportDelivery.Kind.SITE else None
    pdf = build_report(
        delivery.recipient,
        kind=delivery.kind,
        study_id=study.pk,
        study_site_id=site.pk if site else None,
        language=delivery.language,
        period=delivery.period,
    )
    with translation.override(delivery.language):
        period = period_label(delivery.period)
        if site is not None:
            subject = _("[%(study)s] Site %(site)s report, %(period)s") % {
                "study": study.acronym or study.code,
                "site": site.number,
                "period": period,
            }
        else:
            subject = _("[%(study)s] Study report, %(period)s") % {
                "study": study.acronym or study.code,
                "period": period,
            }
        body = _(
            "Please find attached the %(study)s report for %(period)s, as scheduled by the "
            "sponsor.\n\nIt contains pseudonymised trial data: keep it within the study team.\n"
        ) % {"study": study.acronym or study.code, "period": period}
    message = EmailMessage(subject=subject, body=body, to=[delivery.email])
    message.attach(
        report_filename(
            study_code=study.code,
            site_number=site.number if site else None,
            period=delivery.period,
        ),
        pdf,
        "application/pdf",
    )
    return message


from studies.export_tasks import *  # noqa: E402,F401,F403 - tasks of this app in their own module
