"""The outbox: emails are rows written with the event, then sent by a Celery task on commit."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction

from studies.models import OutboxEmail


def outbox_enqueue(*, key: str, to: Iterable[str], subject: str, body: str) -> OutboxEmail | None:
    """Queue an email in the current transaction; a key already queued is not queued again."""
    recipients = sorted({address for address in to if address})
    if not recipients:
        return None
    try:
        with transaction.atomic():
            email = OutboxEmail.objects.create(key=key, to=recipients, subject=subject, body=body)
    except IntegrityError:
        return None
    from studies.tasks import send_outbox_email

    transaction.on_commit(lambda: send_outbox_email.delay(email.pk))
    return email
