"""Celery tasks of the patients app."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery import shared_task
from django.utils import timezone

from studies.models import RecruitmentStatus

logger = logging.getLogger(__name__)

#: Studies whose follow-up is over: no reminders (a suspended study still follows its patients).
CLOSED_STATUSES = (
    RecruitmentStatus.COMPLETED,
    RecruitmentStatus.TERMINATED,
    RecruitmentStatus.WITHDRAWN,
)


def study_local_now(study, now: datetime | None = None) -> datetime | None:
    """The study's wall clock (``Study.time_zone``); None if the zone is unknown."""
    try:
        zone = ZoneInfo(study.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return (now or timezone.now()).astimezone(zone)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def send_visit_reminders(force: bool = False) -> dict[str, int]:
    """Beat, hourly: queue the imaging reminders of each study whose clock reads its hour.

    Each study is queued in its own transaction (``patients.reminders.queue``) with its local
    date; the outbox's unique keys make a re-run (a redelivery after a lost worker, two beat
    processes, ``force``) queue nothing twice. ``force`` ignores the hour (tests, admin).
    Returns {study code: reminders newly queued} for the studies run.
    """
    from patients import reminders
    from studies.models import Study

    now = timezone.now()
    counts: dict[str, int] = {}
    failed: list[str] = []
    days = {}
    for study in Study.objects.exclude(status__in=CLOSED_STATUSES).order_by("pk"):
        local = study_local_now(study, now)
        if local is None:
            logger.error(
                "study %s: unknown time zone %r, no reminders", study.code, study.time_zone
            )
            continue
        if force or local.hour == study.reminder_hour:
            days[study] = local.date()
    # One scan over the planned visits of every study due (reminders.decide_many), then one
    # transaction per study, so that one study's failure holds back no other.
    try:
        due = reminders.decide_many(days)
    except Exception:
        logger.exception("visit reminders: the scan failed")
        due = {}
    for study, today in days.items():
        try:
            counts[study.code] = reminders.queue(study, today, due.get(study.pk))
        except Exception:  # one study's failure must not hold back the others
            logger.exception("study %s: reminders failed", study.code)
            failed.append(study.code)
    logger.info(
        "visit reminders: %d studies run, %d reminders queued",
        len(counts),
        sum(counts.values()),
    )
    if failed:
        # Nothing of a failed study was queued (one transaction each): the task is marked failed.
        raise RuntimeError(f"visit reminders failed for {', '.join(failed)}")
    return counts


from patients.query_tasks import *  # noqa: E402,F401,F403 - tasks of this app in their own module
