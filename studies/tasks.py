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
