"""The Celery task writing a data export (``studies/exports/``).

``acks_late`` + ``reject_on_worker_lost``: a worker killed mid-export leaves its message
unacknowledged, so the broker delivers it again and another worker redoes the export from
scratch. The file is written as ``<name>.part`` and renamed only when complete, so a crashed
attempt is never offered for download; the retry deletes its part file first.

Two deliveries of the same job never write at once: each attempt holds a PostgreSQL advisory lock
on the job for as long as it writes (released with the session if the worker dies), and claims the
job with a conditional update (pending or running, never done or failed).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from celery import shared_task
from django.db import DatabaseError, connection
from django.utils import timezone

#: First key of the advisory locks taken on export jobs (the job's id is the second).
LOCK_NAMESPACE = 0x4558  # "EX"
#: Transient file-system errors (full disk, a network share gone for a moment) are retried.
RETRY_COUNTDOWN = 30


@contextmanager
def _job_lock(job_pk: int) -> Iterator[bool]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, job_pk])
        locked = bool(cursor.fetchone()[0])
    try:
        yield locked
    finally:
        if locked:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, job_pk])
            except DatabaseError:
                pass  # the connection is gone, and the session's locks with it


def _language_of(user) -> str:
    from django.conf import settings

    from studies.models import UserPreference

    preference = UserPreference.objects.filter(user=user).values_list("language", flat=True)
    return preference.first() or settings.LANGUAGE_CODE


def _finish(job_pk: int, state: str, **values) -> None:
    from studies.models import ExportJob

    ExportJob.objects.filter(pk=job_pk, state=ExportJob.State.RUNNING).update(
        state=state, finished_at=timezone.now(), **values
    )


def _claim(job_pk: int) -> bool:
    """Pending, or running after a crashed attempt: start (again) from scratch."""
    from studies.models import ExportJob

    return (
        ExportJob.objects.filter(
            pk=job_pk, state__in=(ExportJob.State.PENDING, ExportJob.State.RUNNING)
        ).update(
            state=ExportJob.State.RUNNING,
            started_at=timezone.now(),
            progress=0,
            rows=0,
            file_path="",
            error="",
        )
        == 1
    )


def _export(job, language: str) -> int:
    from studies.exports import export_path, export_study, is_blinded_for
    from studies.models import ExportJob

    if not job.blinded and is_blinded_for(job.requested_by, job.study):
        # Blinded since the request: the file and its log say so.
        job.blinded = True
        ExportJob.objects.filter(pk=job.pk).update(blinded=True)

    def report(percent: int, rows: int) -> None:
        ExportJob.objects.filter(pk=job.pk, state=ExportJob.State.RUNNING).update(
            progress=max(percent, 1), rows=rows
        )

    return export_study(
        job.study,
        job.requested_by,
        job.format,
        export_path(job),
        blinded=job.blinded,
        include_audit=job.include_audit,
        language=language,
        report=report,
    )


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3)
def run_export(self, job_pk: int, language: str | None = None) -> str:
    """Write one export job's file; returns the job's state (or "busy" for a duplicate)."""
    from django.utils import translation

    from studies.exports import ExportNotAllowed, export_path
    from studies.models import ExportJob

    with _job_lock(job_pk) as locked:
        if not locked:
            return "busy"  # another worker is writing this very export now
        if not _claim(job_pk):
            return "gone"  # done, failed or deleted: nothing left to do
        job = ExportJob.objects.select_related("study", "requested_by").get(pk=job_pk)
        language = language or _language_of(job.requested_by)
        try:
            rows = _export(job, language)
        except ExportNotAllowed:
            with translation.override(language):
                error = translation.gettext("You may no longer export this study.")
            _finish(job_pk, ExportJob.State.FAILED, error=error)
            return ExportJob.State.FAILED
        except OSError as failure:
            if self.request.retries < self.max_retries:
                raise self.retry(exc=failure, countdown=RETRY_COUNTDOWN) from failure
            _finish(job_pk, ExportJob.State.FAILED, error=f"{type(failure).__name__}: {failure}")
            return ExportJob.State.FAILED
        except Exception as failure:
            _finish(job_pk, ExportJob.State.FAILED, error=f"{type(failure).__name__}: {failure}")
            raise
        _finish(
            job_pk,
            ExportJob.State.DONE,
            progress=100,
            rows=rows,
            file_path=export_path(job).name,
        )
    return ExportJob.State.DONE


__all__ = ["run_export"]
