"""The outbox: an email written with its event, sent once by a real worker, retried on failure."""

from __future__ import annotations

import time

import pytest
from django.core import mail
from django.db import transaction
from django.test import override_settings

from studies.models import OutboxEmail
from studies.outbox import outbox_enqueue
from studies.tasks import send_outbox_email


def _wait_until(predicate, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.mark.django_db(transaction=True)
def test_an_enqueued_email_is_sent_once_by_a_real_worker(celery_worker):
    mail.outbox.clear()
    with transaction.atomic():
        email = outbox_enqueue(key="test-once", to=["pv@example.org"], subject="S", body="B")
    _wait_until(lambda: OutboxEmail.objects.get(pk=email.pk).sent_at is not None)
    assert [m.to for m in mail.outbox] == [["pv@example.org"]]
    # The task delivered twice (a redelivery after a crash, a sweep) sends nothing more.
    assert send_outbox_email.delay(email.pk).get(timeout=20) is False
    assert len(mail.outbox) == 1
    # The same key is not queued twice.
    with transaction.atomic():
        assert outbox_enqueue(key="test-once", to=["pv@example.org"], subject="S", body="B") is None


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_event_sends_no_email(celery_worker):
    mail.outbox.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_enqueue(key="test-rollback", to=["pv@example.org"], subject="S", body="B")
        raise RuntimeError("the event failed")
    time.sleep(0.5)
    assert not OutboxEmail.objects.filter(key="test-rollback").exists()
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_mail_server_failure_is_recorded_and_retried():
    email = OutboxEmail.objects.create(
        key="test-fail", to=["pv@example.org"], subject="S", body="B"
    )
    unreachable = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},
        }
    }
    # Called directly, the task re-raises the error that makes Celery retry it with back-off.
    with override_settings(MAILERS=unreachable), pytest.raises(OSError):
        send_outbox_email.run(email.pk)
    email.refresh_from_db()
    assert (email.attempts, email.sent_at) == (1, None)
    assert email.last_error
    mail.outbox.clear()
    assert send_outbox_email.run(email.pk) is True
    email.refresh_from_db()
    assert email.attempts == 2 and email.sent_at is not None and len(mail.outbox) == 1
    log = list(email.attempt_log.order_by("at").values_list("ok", flat=True))
    assert log == [False, True]
    assert "refused" in email.attempt_log.first().error.lower() or email.attempt_log.first().error


@pytest.mark.django_db
def test_the_sweep_retries_an_unsent_email_until_delivered(monkeypatch):
    """Once the task's own retries are spent, beat's sweep tries again (at most hourly)."""
    from datetime import timedelta

    from django.utils import timezone

    from studies import tasks

    queued: list[int] = []
    monkeypatch.setattr(tasks.send_outbox_email, "delay", queued.append)
    now = timezone.now()
    fresh = OutboxEmail.objects.create(key="fresh", to=["a@example.org"], subject="S", body="B")
    lost = OutboxEmail.objects.create(key="lost", to=["a@example.org"], subject="S", body="B")
    gave_up = OutboxEmail.objects.create(
        key="gave-up", to=["a@example.org"], subject="S", body="B", attempts=11
    )
    recent_failure = OutboxEmail.objects.create(
        key="recent", to=["a@example.org"], subject="S", body="B", attempts=3
    )
    sent = OutboxEmail.objects.create(
        key="sent", to=["a@example.org"], subject="S", body="B", sent_at=now
    )
    OutboxEmail.objects.filter(pk__in=[lost.pk, gave_up.pk, recent_failure.pk, sent.pk]).update(
        created_at=now - timedelta(hours=5)
    )
    OutboxEmail.objects.filter(pk=gave_up.pk).update(last_attempt_at=now - timedelta(hours=2))
    OutboxEmail.objects.filter(pk=recent_failure.pk).update(
        last_attempt_at=now - timedelta(minutes=5)
    )
    assert tasks.send_pending_outbox() == 2
    assert sorted(queued) == sorted([lost.pk, gave_up.pk])
    assert fresh.pk not in queued
