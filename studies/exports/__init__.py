"""Data exports for data managers and statisticians: CSV, CDISC ODM 1.3.2, SDTM-style datasets.

An export is asked for on the study's export page (``studies/views_exports.py``), recorded as an
``ExportJob`` (the export log: who, what, when, blinded or not) and written by a Celery task
(``studies/export_tasks.py``) into ``settings.EXPORT_DIR``. Every format streams its rows
(``sources.py``), so memory stays flat however large the study.

Who: the study's export roles (``studies.roles.EXPORT_ROLES``). Blinded users get blinded
exports (``studies.blinding.sees_allocation``), and an unblinded export is never offered to a
blinded user, even of the same study.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import translation

from studies.access import scope_for
from studies.blinding import sees_allocation
from studies.exports.sources import CHUNK_SIZE, ExportContext, make_context
from studies.exports.writer import atomic_file
from studies.models import ExportJob, Study
from studies.roles import EXPORT_ROLES

EXTENSIONS = {
    ExportJob.Format.CSV: "zip",
    ExportJob.Format.ODM: "xml",
    ExportJob.Format.SDTM: "zip",
}
CONTENT_TYPES = {"zip": "application/zip", "xml": "application/xml"}


class ExportNotAllowed(Exception):  # noqa: N818 - the requester may no longer export the study
    pass


def may_export(user, study: Study) -> bool:
    return scope_for(user).has_role(EXPORT_ROLES, study.pk)


def is_blinded_for(user, study: Study) -> bool:
    return not sees_allocation(user, study, None)


def may_download(user, job: ExportJob) -> bool:
    """The requester, or another export role of the study who may see what the file shows."""
    if not may_export(user, job.study):
        return False
    if job.requested_by_id == user.pk:
        return True
    return job.blinded or not is_blinded_for(user, job.study)


@transaction.atomic
def export_request(
    *, study: Study, by, format: str, include_audit: bool = False, language: str = "en"
) -> ExportJob:
    """Log the export and enqueue it (on commit). Raises ExportNotAllowed without the role."""
    from studies.export_tasks import run_export

    if not may_export(by, study):
        raise ExportNotAllowed
    job = ExportJob(
        requested_by=by,
        study=study,
        format=format,
        blinded=is_blinded_for(by, study),
        include_audit=include_audit and format == ExportJob.Format.ODM,
    )
    job.full_clean()
    job.save()
    transaction.on_commit(lambda: run_export.delay(job.pk, language))
    return job


def export_path(job: ExportJob) -> Path:
    """Where the finished file of a job lives (under the shared EXPORT_DIR)."""
    return Path(settings.EXPORT_DIR) / f"export-{job.pk}.{EXTENSIONS[job.format]}"


def download_name(job: ExportJob) -> str:
    blinded = "_blinded" if job.blinded else ""
    stamp = f"{job.created_at:%Y%m%d-%H%M}"
    return f"{job.study.code}_{job.format}{blinded}_{stamp}.{EXTENSIONS[job.format]}"


def content_type(job: ExportJob) -> str:
    return CONTENT_TYPES[EXTENSIONS[job.format]]


def write_export(ctx: ExportContext, format: str, path: Path, report=None) -> int:
    """Write one export to ``path`` (atomically); returns the number of rows written."""
    from studies.exports.csv_export import write_csv
    from studies.exports.odm import write_odm
    from studies.exports.sdtm import write_sdtm

    writers = {
        ExportJob.Format.CSV: write_csv,
        ExportJob.Format.ODM: write_odm,
        ExportJob.Format.SDTM: write_sdtm,
    }
    with translation.override(ctx.language), atomic_file(path) as out:
        return writers[format](ctx, out, report)


def export_study(
    study: Study,
    user,
    format: str,
    path: Path,
    *,
    blinded: bool,
    include_audit: bool = False,
    language: str = "en",
    report=None,
    chunk_size: int = CHUNK_SIZE,
) -> int:
    """Export ``study`` as ``user`` may see it (the task calls this; tests too)."""
    if not may_export(user, study):
        raise ExportNotAllowed
    blinded = blinded or is_blinded_for(user, study)
    ctx = make_context(
        study,
        user,
        blinded=blinded,
        language=language,
        include_audit=include_audit,
        chunk_size=chunk_size,
    )
    return write_export(ctx, format, path, report)


__all__ = [
    "ExportNotAllowed",
    "download_name",
    "export_path",
    "export_request",
    "export_study",
    "is_blinded_for",
    "may_download",
    "may_export",
    "write_export",
]
