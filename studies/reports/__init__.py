"""PDF reports of a site or a whole study (issue #7): selectors gather, the builder renders.

``selectors.py`` reads the database (scoped to the reader, blinding applied) into frozen
dataclasses; ``pdf.py`` renders them with reportlab and runs no queries. The scheduled emails
and the on-demand downloads (``studies/tasks.py``, ``studies/views_reports.py``) both call
:func:`build_report`.
"""

from __future__ import annotations

from collections.abc import Callable

from studies.reports.selectors import (
    SITE,
    STUDY,
    ReportNotAllowed,
    may_read_site_report,
    may_read_study_report,
    site_report_data,
    study_report_data,
)


def build_report(
    user,
    *,
    kind: str,
    study_id: int,
    study_site_id: int | None = None,
    language: str = "en",
    period: str = "",
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """The PDF of a site report (``kind`` SITE) or the study report, as ``user`` may see it.

    Raises :class:`ReportNotAllowed` when the user may not read it.
    """
    from studies.reports.pdf import render_report

    report = progress or (lambda _pct: None)
    report(10)
    if kind == SITE:
        data = site_report_data(user, study_site_id, period=period)
        if data.study.pk != study_id:
            raise ReportNotAllowed
    else:
        data = study_report_data(user, study_id, period=period)
    report(50)
    return render_report(data, language, progress=report)


def report_filename(*, study_code: str, site_number: str | None, period: str) -> str:
    parts = ["report", study_code] + ([f"site-{site_number}"] if site_number else []) + [period]
    safe = "-".join(p for p in parts if p)
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in safe) + ".pdf"


__all__ = [
    "SITE",
    "STUDY",
    "ReportNotAllowed",
    "build_report",
    "may_read_site_report",
    "may_read_study_report",
    "report_filename",
]
