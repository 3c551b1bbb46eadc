"""Serious adverse event emails sent by a real Celery worker on Redis, once, retried on failure."""

from __future__ import annotations

import time

import pytest
from django.core import mail
from django.test import override_settings

from patients import ae_services
from patients.models import SafetyRules
from studies.models import OutboxEmail
from tests.patients.test_adverse_events import PV, SERIOUS, ae_data, consent, ensure_ctcae_terms

pytestmark = pytest.mark.django_db(transaction=True)

UNREACHABLE = {
    "default": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},
    }
}


def _wait_until(predicate, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture
def trial(world):
    ensure_ctcae_terms()  # a transactional test before this one may have flushed them
    SafetyRules.objects.create(study=world.s1, pharmacovigilance_emails="\n".join(PV))
    consent(world.patient_a, world.user("alice_pi"))
    mail.outbox = []
    return world


def _email():
    return OutboxEmail.objects.get()


def test_the_sae_email_is_sent_once_by_a_real_worker(trial, celery_worker):
    alice = trial.user("alice_pi")
    ae = ae_services.ae_record(patient=trial.patient_a, by=alice, data=ae_data(**SERIOUS))
    _wait_until(lambda: _email().sent_at is not None)
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == PV and "S1-01-001" in sent.subject and "Pneumonitis grade 3" in sent.subject
    assert f"/patients/{trial.patient_a.pk}/adverse-events/{ae.pk}/" in sent.body
    assert _email().attempts == 1
    # Saved again and corrected: still one email, and nothing more reaches the worker.
    ae_services.ae_record(
        patient=trial.patient_a, by=alice, data=ae_data(**SERIOUS), ae=ae, reason="saved twice"
    )
    ae_services.ae_record(
        patient=trial.patient_a,
        by=alice,
        data=ae_data(**SERIOUS, resolved_on=-1),
        ae=ae,
        reason="resolved",
    )
    time.sleep(1)
    assert OutboxEmail.objects.count() == 1 and len(mail.outbox) == 1


def test_the_sae_email_is_retried_until_the_mail_server_answers(trial, celery_worker):
    alice = trial.user("alice_pi")
    with override_settings(MAILERS=UNREACHABLE):
        ae_services.ae_record(patient=trial.patient_a, by=alice, data=ae_data(**SERIOUS))
        # Every failed attempt is recorded on the outbox row; the task retries with back-off.
        _wait_until(lambda: _email().attempts >= 2)
        failed = _email()
        assert failed.sent_at is None and failed.last_error
        assert mail.outbox == []
    _wait_until(lambda: _email().sent_at is not None, seconds=60)
    delivered = _email()
    assert delivered.attempts >= 3 and delivered.last_error == ""
    assert len(mail.outbox) == 1 and mail.outbox[0].to == PV
