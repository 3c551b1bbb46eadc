"""Data exports of a study: ask, follow the progress, download (export roles only).

The file is written by a Celery task (``studies.export_tasks.run_export``); the job is the
export log. A job is followed and downloaded by its requester, or by another export role of the
study who may see what it shows (never an unblinded export by a blinded user).
"""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.views.decorators.http import require_GET, require_http_methods

from studies.access import require
from studies.export_forms import ExportForm
from studies.exports import (
    content_type,
    download_name,
    export_path,
    export_request,
    is_blinded_for,
    may_download,
    may_export,
)
from studies.lookups import get_study_for_user
from studies.models import ExportJob

#: The job page polls its progress this often (seconds).
POLL_SECONDS = 2
#: Past exports listed on the study's export page.
LISTED = 50


def _visible_jobs(user, study):
    jobs = ExportJob.objects.filter(study=study).select_related("requested_by")
    if is_blinded_for(user, study):
        jobs = jobs.filter(blinded=True) | jobs.filter(requested_by=user)
    return jobs.order_by("-created_at")[:LISTED]


@require_http_methods(["GET", "POST"])
def study_exports(request: HttpRequest, study_pk: int) -> HttpResponse:
    study = get_study_for_user(request.user, study_pk)
    require(may_export(request.user, study))
    form = ExportForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        job = export_request(
            study=study,
            by=request.user,
            format=form.cleaned_data["format"],
            include_audit=form.cleaned_data["include_audit"],
            language=translation.get_language() or "en",
        )
        return redirect("export_status", export_pk=job.pk)
    context = {
        "study": study,
        "form": form,
        "blinded": is_blinded_for(request.user, study),
        "jobs": _visible_jobs(request.user, study),
    }
    return render(request, "studies/exports.html", context, status=400 if form.errors else 200)


def _job_for(request: HttpRequest, export_pk: int) -> ExportJob:
    """404 for jobs outside the user's studies, 403 without an export role, 404 for a job the
    user may not download (another user's unblinded export seen by a blinded user)."""
    job = ExportJob.objects.select_related("study", "requested_by").filter(pk=export_pk).first()
    if job is None:
        raise Http404
    get_study_for_user(request.user, job.study_id)
    require(may_export(request.user, job.study))
    if not may_download(request.user, job):
        raise Http404
    return job


@require_GET
def export_status(request: HttpRequest, export_pk: int) -> HttpResponse:
    job = _job_for(request, export_pk)
    finished = job.state in (ExportJob.State.DONE, ExportJob.State.FAILED)
    if request.GET.get("format") == "json":
        return JsonResponse(
            {
                "state": job.state,
                "progress": job.progress,
                "rows": job.rows,
                "finished": finished,
                "download": job.state == ExportJob.State.DONE,
            }
        )
    context = {"job": job, "finished": finished, "poll_seconds": POLL_SECONDS}
    return render(request, "studies/export_job.html", context)


@require_GET
def export_download(request: HttpRequest, export_pk: int) -> HttpResponse:
    job = _job_for(request, export_pk)
    path = export_path(job)
    if job.state != ExportJob.State.DONE or not path.is_file():
        raise Http404
    response = FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=download_name(job),
        content_type=content_type(job),
    )
    response["Cache-Control"] = "private, no-store"
    return response
