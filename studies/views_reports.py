"""On-demand PDF reports of a site or a study: ask, watch the progress, download.

The PDF is built by a Celery task (``studies.tasks.generate_report_job``) with the requester's
own scope, blinding and language; only the requester can follow or download the job.
"""

from __future__ import annotations

from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.views.decorators.http import require_GET, require_http_methods

from studies.access import require
from studies.lookups import get_study_for_user, get_study_site_for_user
from studies.models import ReportJob
from studies.reports import may_read_site_report, may_read_study_report, report_filename

#: The job page reloads itself this often while the report is generated (seconds).
POLL_SECONDS = 2


def _start_job(request: HttpRequest, *, study, study_site=None) -> HttpResponse:
    from studies.tasks import generate_report_job

    with transaction.atomic():
        job = ReportJob.objects.create(
            requested_by=request.user,
            study=study,
            study_site=study_site,
            language=translation.get_language() or "en",
        )
        transaction.on_commit(lambda: generate_report_job.delay(job.pk))
    return redirect("report_job", job_pk=job.pk)


def _recent_jobs(request: HttpRequest, *, study, study_site=None):
    return (
        ReportJob.objects.filter(requested_by=request.user, study=study, study_site=study_site)
        .defer("pdf")
        .order_by("-created_at")[:5]
    )


@require_http_methods(["GET", "POST"])
def site_report(request: HttpRequest, site_pk: int) -> HttpResponse:
    study_site = get_study_site_for_user(request.user, site_pk)
    require(may_read_site_report(request.user, study_site.study_id, study_site.pk))
    if request.method == "POST":
        return _start_job(request, study=study_site.study, study_site=study_site)
    return render(
        request,
        "studies/report_request.html",
        {
            "study": study_site.study,
            "study_site": study_site,
            "jobs": _recent_jobs(request, study=study_site.study, study_site=study_site),
        },
    )


@require_http_methods(["GET", "POST"])
def study_report(request: HttpRequest, study_pk: int) -> HttpResponse:
    study = get_study_for_user(request.user, study_pk)
    require(may_read_study_report(request.user, study.pk))
    if request.method == "POST":
        return _start_job(request, study=study)
    return render(
        request,
        "studies/report_request.html",
        {"study": study, "study_site": None, "jobs": _recent_jobs(request, study=study)},
    )


def _own_job(request: HttpRequest, job_pk: int, *, with_pdf: bool = False) -> ReportJob:
    jobs = ReportJob.objects.select_related("study", "study_site__site")
    if not with_pdf:
        jobs = jobs.defer("pdf")
    job = jobs.filter(pk=job_pk, requested_by=request.user).first()
    if job is None:
        raise Http404
    return job


@require_GET
def job_status(request: HttpRequest, job_pk: int) -> HttpResponse:
    job = _own_job(request, job_pk)
    finished = job.state in (ReportJob.State.DONE, ReportJob.State.FAILED)
    if request.GET.get("format") == "json":
        return JsonResponse(
            {
                "state": job.state,
                "progress": job.progress,
                "finished": finished,
                "download": job.state == ReportJob.State.DONE,
            }
        )
    return render(
        request,
        "studies/report_job.html",
        {"job": job, "finished": finished, "poll_seconds": POLL_SECONDS},
    )


@require_GET
def job_download(request: HttpRequest, job_pk: int) -> HttpResponse:
    job = _own_job(request, job_pk, with_pdf=True)
    if job.state != ReportJob.State.DONE or not job.pdf:
        raise Http404
    name = report_filename(
        study_code=job.study.code,
        site_number=job.study_site.number if job.study_site_id else None,
        period=f"{job.created_at:%Y-%m-%d}",
    )
    response = HttpResponse(bytes(job.pdf), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response
