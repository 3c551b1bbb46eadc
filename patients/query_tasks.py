"""The daily query digest: every step of every query emailed once, one email per recipient.

Beat runs :func:`send_query_digests` once a day (``CELERY_BEAT_SCHEDULE["query-digests"]``).
Each batch is one transaction: it claims the messages nobody has been told about yet
(``notified_at`` empty; ``SELECT ... FOR UPDATE SKIP LOCKED``, so a second run at the same time
takes other rows or none), queues one email per recipient in the outbox
(:func:`studies.outbox.outbox_enqueue`; the key names the recipient and the first and last
message, so a replay queues nothing twice) and sets ``notified_at`` on the claimed messages.  A
second run finds nothing to send; if the transaction fails, nothing of it is queued or marked.

Recipients: a query opened, re-opened or closed (by a person or an edit check) goes to the data
entry staff of the patient's study-site; an answer goes to the study's monitors covering that
site and to its data managers.  Nobody is told of their own step.  Queries on a form that
reveals the arm (the study drug) go only to recipients unblinded at that site.  Each email is in
the recipient's language (``UserPreference``) and names the subject identifier, the form, the
field, the query's age and each message: never a patient's name.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import pghistory
from celery import shared_task
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from patients import casebook, query_services
from patients.models_dm import QueryMessage
from patients.reminders import _absolute
from patients.reminders import _language as recipient_language
from studies.models import Membership
from studies.outbox import outbox_enqueue
from studies.roles import DATA_ENTRY_ROLES, Role

__all__ = ["send_query_digests"]

logger = logging.getLogger(__name__)

#: Messages claimed per transaction.
BATCH = 2000
KEY_PREFIX = "query-digest:"
SPONSOR_SIDE = frozenset({Role.MONITOR, Role.DATA_MANAGER})


@dataclass(frozen=True)
class Member:
    user_id: int
    email: str
    language: str
    study_id: int
    study_site_id: int | None
    role: str
    blinded: bool


def _members(study_ids: set[int]) -> list[Member]:
    """Active memberships that may receive a digest in these studies (one query)."""
    rows = (
        Membership.objects.active()
        .filter(study_id__in=study_ids, role__in=DATA_ENTRY_ROLES | SPONSOR_SIDE)
        .exclude(user__email="")
        .values_list(
            "user_id",
            "user__email",
            "user__preference__language",
            "study_id",
            "study_site_id",
            "role",
            "blinded",
        )
    )
    return [
        Member(user_id, email, recipient_language(language), *rest)
        for user_id, email, language, *rest in rows
    ]


def _recipients(message: QueryMessage, members: list[Member]) -> dict[int, Member]:
    query = message.query
    site = query.patient.study_site
    if message.action == QueryMessage.Action.ANSWER:
        chosen = [
            m
            for m in members
            if m.role in SPONSOR_SIDE
            and m.study_id == site.study_id
            and m.study_site_id in (None, site.pk)
        ]
    else:
        chosen = [m for m in members if m.role in DATA_ENTRY_ROLES and m.study_site_id == site.pk]
    if query.form_kind in casebook.ARM_REVEALING_KINDS and site.study.is_blinded_design:
        chosen = [m for m in chosen if not m.blinded]
    return {m.user_id: m for m in chosen if m.user_id != message.author_id}


def _author(message: QueryMessage) -> str:
    if message.author is None:
        return _("edit check")
    return message.author.get_full_name() or message.author.get_username()


def _query_block(messages: list[QueryMessage], now) -> list[str]:
    query = messages[0].query
    patient = query.patient
    site = patient.study_site
    field = query_services.field_label(query.form_kind, query.field)
    where = " · ".join(
        part
        for part in (
            f"{site.study.acronym or site.study.code} {site.number}",
            patient.subject_id or "",
            casebook.form_label(query.form_kind),
            field,
        )
        if part
    )
    age = query_services.age_days(query, now)
    lines = [
        where,
        _("Query %(pk)s, %(status)s, opened %(days)s day(s) ago")
        % {"pk": query.pk, "status": query.get_status_display().lower(), "days": age},
    ]
    for message in messages:
        lines.append(
            f"  - {message.get_action_display()} ({_author(message)}, "
            f"{message.created_at:%Y-%m-%d}): {message.text}"
        )
    path = reverse("query_detail", kwargs={"query_pk": query.pk})
    lines += [_("Query page: %(url)s") % {"url": _absolute(path)}, ""]
    return lines


def render_digest(messages: list[QueryMessage], language: str, now) -> tuple[str, str]:
    """Subject and body of one recipient's digest, in ``language``."""
    by_query: dict[int, list[QueryMessage]] = defaultdict(list)
    for message in messages:
        by_query[message.query_id].append(message)
    with translation.override(language):
        count = len(by_query)
        subject = ngettext(
            "[OligoCRF] Data queries: %(count)s query with news",
            "[OligoCRF] Data queries: %(count)s queries with news",
            count,
        ) % {"count": count}
        lines = [_("Data queries: what happened since the last digest."), ""]
        for query_messages in by_query.values():
            lines += _query_block(query_messages, now)
        lines.append(
            _(
                "Answer a query on its page; correct the data on the form, with the reason "
                "for change."
            )
        )
    return subject, "\n".join(lines)


def digest_batch(limit: int = BATCH) -> tuple[int, int]:
    """Claim up to ``limit`` unnotified messages, queue the digests, mark the messages notified.

    Runs in the caller's transaction.  Returns (emails queued, messages claimed).
    """
    messages = list(
        QueryMessage.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(notified_at__isnull=True)
        .select_related(
            "author", "query__patient__study_site__study", "query__patient__study_site__site"
        )
        .order_by("pk")[:limit]
    )
    if not messages:
        return 0, 0
    members = _members({m.query.patient.study_site.study_id for m in messages})
    inbox: dict[int, list[QueryMessage]] = defaultdict(list)
    addresses: dict[int, Member] = {}
    for message in messages:
        for user_id, member in _recipients(message, members).items():
            inbox[user_id].append(message)
            addresses.setdefault(user_id, member)
    now = timezone.now()
    queued = 0
    for user_id in sorted(inbox):
        member, mine = addresses[user_id], inbox[user_id]
        subject, body = render_digest(mine, member.language, now)
        key = f"{KEY_PREFIX}{user_id}:{mine[0].pk}:{mine[-1].pk}"
        if outbox_enqueue(key=key, to=[member.email], subject=subject, body=body):
            queued += 1
    QueryMessage.objects.filter(pk__in=[m.pk for m in messages]).update(notified_at=now)
    return queued, len(messages)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def send_query_digests() -> int:
    """Beat, daily: queue the query digests; returns how many emails were queued.

    Batches of :data:`BATCH` messages, each in its own transaction, until none is left.  A
    redelivered or concurrent run claims only what no other run holds or has marked.
    """
    total = 0
    while True:
        with pghistory.context(task="send_query_digests"), transaction.atomic():
            queued, claimed = digest_batch()
        total += queued
        if claimed < BATCH:
            break
    logger.info("query digests: %d emails queued", total)
    return total
