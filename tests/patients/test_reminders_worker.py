"""Imaging reminders end to end with a real Celery worker on Redis: every reminder arrives exactly
once when the task runs twice, when two runs overlap, and when the worker dies mid-batch."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from patients.models import Patient
from patients.tasks import send_visit_reminders
from studies.models import OutboxEmail, UserPreference
from studies.tasks import send_pending_outbox
from tests.patients.test_reminders import imaging, visit

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_until(predicate, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


class DyingBackend(EmailBackend):
    """The worker "dies" from the 2nd email on: the send fails before anything is recorded."""

    calls = 0
    lock = threading.Lock()

    def send_messages(self, messages):
        with DyingBackend.lock:
            DyingBackend.calls += 1
            call = DyingBackend.calls
        if call >= 2:
            raise RuntimeError("worker lost")  # not a mail-server error: no retry, no record
        return super().send_messages(messages)


DYING = {"default": {"BACKEND": f"{__name__}.DyingBackend", "OPTIONS": {}}}


@pytest.fixture
def trial(world):
    """7 reminders: three upcoming and one overdue visit at site A (English + French staff), one
    overdue visit at site B (English)."""
    UserPreference.objects.create(user=world.user("nina_nurse"), language="fr")
    for patient in (world.patient_a, world.patient_b):
        patient.status = Patient.Status.FOLLOW_UP
        patient.save()
    ct = imaging(world.s1)
    today = timezone.localdate(timezone=ZoneInfo(world.s1.time_zone))
    for days in (2, 3, 4):
        visit(world.patient_a, ct, today + timedelta(days=days))
    visit(world.patient_b, ct, today - timedelta(days=30), today - timedelta(days=10))
    mail.outbox.clear()
    return world


def _expected() -> int:
    return 3 * 2 + 1  # site A: 3 upcoming x (English, French); site B: 1 overdue (English)


def _reminder_rows():
    return OutboxEmail.objects.filter(key__startswith="reminder:")


def _all_sent() -> bool:
    rows = _reminder_rows()
    return rows.count() == _expected() and not rows.filter(sent_at__isnull=True).exists()


def _delivered() -> Counter:
    return Counter((m.subject, tuple(m.to)) for m in mail.outbox)


def _assert_each_delivered_once() -> None:
    delivered = _delivered()
    assert len(mail.outbox) == _expected(), delivered
    assert set(delivered.values()) == {1}
    rows = {(subject, tuple(to)) for subject, to in _reminder_rows().values_list("subject", "to")}
    assert set(delivered) == rows


def test_run_twice_every_reminder_arrives_once(trial, celery_worker):
    assert send_visit_reminders.delay(force=True).get(timeout=30) == {"S1": 7, "S2": 0}
    _wait_until(_all_sent)
    _assert_each_delivered_once()
    french = [m for m in mail.outbox if m.to == ["nina_nurse@example.org"]]
    assert len(french) == 3 and all("Identifiant patient" in m.body for m in french)
    # The second run (beat firing again, a redelivered task) queues and sends nothing.
    assert send_visit_reminders.delay(force=True).get(timeout=30) == {"S1": 0, "S2": 0}
    time.sleep(1)
    _assert_each_delivered_once()
    assert set(_reminder_rows().values_list("attempts", flat=True)) == {1}


def test_two_runs_at_once_send_each_reminder_once(trial, celery_worker):
    """One run in the worker, one in this thread at the same time (two beat processes)."""
    result = send_visit_reminders.delay(force=True)
    here = send_visit_reminders(force=True)
    there = result.get(timeout=30)
    connection.close()
    assert here["S1"] + there["S1"] == _expected()
    _wait_until(_all_sent)
    time.sleep(1)
    _assert_each_delivered_once()


def test_the_worker_dies_mid_batch_and_the_sweep_delivers_the_rest_once(trial, celery_worker):
    DyingBackend.calls = 0
    with override_settings(MAILERS=DYING):
        assert send_visit_reminders.delay(force=True).get(timeout=30)["S1"] == _expected()
        # Every send task of the batch ran: the first email went out, the others were lost.
        _wait_until(lambda: DyingBackend.calls >= _expected())
        time.sleep(1)
        assert len(mail.outbox) == 1
    unsent = _reminder_rows().filter(sent_at__isnull=True)
    assert unsent.count() == _expected() - 1
    assert not unsent.filter(attempts__gt=0).exists()  # the dead worker recorded nothing
    # Restarted: beat's run queues nothing new; the outbox sweep re-enqueues what was lost.
    assert send_visit_reminders.delay(force=True).get(timeout=30)["S1"] == 0
    assert send_pending_outbox.delay(older_than_seconds=0).get(timeout=30) == _expected() - 1
    _wait_until(_all_sent)
    # A second sweep (or beat's next one) finds nothing to send.
    assert send_pending_outbox.delay(older_than_seconds=0).get(timeout=30) == 0
    time.sleep(1)
    _assert_each_delivered_once()
