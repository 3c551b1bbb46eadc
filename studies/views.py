"""Pages of the studies app: home, study, study-site, and the audit history of a record."""

from __future__ import annotations

from itertools import groupby

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Model, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from patients.models import Patient
from patients.views_labs import may_read_lymphopenia
from studies.access import require, scope_for
from studies.audit import history_for
from studies.blinding import sees_allocation
from studies.forms import RandomisationListForm, RandomisationUploadForm, StudySiteForm
from studies.lookups import (
    get_study_for_user,
    get_study_site_for_user,
    require_audit_reader,
)
from studies.models import Arm, Membership, Study, StudySite
from studies.reports import may_read_study_report
from studies.roles import (
    AUDIT_READER_ROLES,
    RANDOMISATION_VIEWER_ROLES,
    STUDY_MANAGER_ROLES,
    Role,
)
from studies.services import (
    randomisation_list_generate,
    randomisation_list_upload,
    study_site_update,
)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The user's studies, each with its visible sites and enrolment against target."""
    studies = {s.pk: s for s in Study.objects.for_user(request.user)}
    sites = (
        StudySite.objects.for_user(request.user)
        .select_related("site")
        .with_enrolment()
        .order_by("study__code", "number")
    )
    rows = []
    for study_id, group in groupby(sites, key=lambda s: s.study_id):
        group = list(group)
        rows.append(
            {
                "study": studies[study_id],
                "sites": group,
                "enrolled": sum(s.enrolled for s in group),
            }
        )
    return render(request, "studies/home.html", {"rows": rows})


@require_GET
def study_detail(request: HttpRequest, study_pk: int) -> HttpResponse:
    study = get_study_for_user(request.user, study_pk)
    sites = list(
        StudySite.objects.for_user(request.user)
        .filter(study=study)
        .select_related("site")
        .with_enrolment()
    )
    scope = scope_for(request.user)
    return render(
        request,
        "studies/study_detail.html",
        {
            "study": study,
            "arms": Arm.objects.for_user(request.user).filter(study=study),
            "sites": sites,
            "enrolled": sum(s.enrolled for s in sites),
            "my_roles": sorted(scope.roles_at(study.pk)),
            "can_read_audit": scope.has_role(AUDIT_READER_ROLES, study.pk),
            "can_see_randomisation": scope.has_role(RANDOMISATION_VIEWER_ROLES, study.pk),
            "consort": _consort(request.user, study),
            "can_download_report": may_read_study_report(request.user, study.pk),
            **_data_management_links(request.user, study.pk),
            "can_see_lymphopenia": "lymphopenia" in study.primary_endpoint.lower()
            and may_read_lymphopenia(request.user, study),
        },
    )


@require_GET
def study_site_detail(request: HttpRequest, site_pk: int) -> HttpResponse:
    study_site = get_study_site_for_user(request.user, site_pk)
    patients = Patient.objects.for_user(request.user).filter(study_site=study_site)
    page = Paginator(patients.order_by("subject_id"), 50).get_page(request.GET.get("page"))
    staff = (
        Membership.objects.for_user(request.user)
        .active()
        .filter(study_site=study_site)
        .select_related("user")
        .order_by("role", "user__last_name")
    )
    scope = scope_for(request.user)
    return render(
        request,
        "studies/studysite_detail.html",
        {
            "study_site": study_site,
            "page": page,
            "staff": staff,
            "can_edit": scope.has_role(STUDY_MANAGER_ROLES, study_site.study_id),
            "can_read_audit": scope.has_role(
                AUDIT_READER_ROLES, study_site.study_id, study_site.pk
            ),
        },
    )


@require_http_methods(["GET", "POST"])
def study_site_edit(request: HttpRequest, site_pk: int) -> HttpResponse:
    study_site = get_study_site_for_user(request.user, site_pk, write=True)
    form = StudySiteForm(request.POST or None, instance=study_site)
    if request.method == "POST" and form.is_valid():
        data = {name: form.cleaned_data[name] for name in form.Meta.fields}
        study_site_update(
            study_site=StudySite.objects.get(pk=study_site.pk),
            data=data,
            by=request.user,
            reason=form.cleaned_data["reason"],
        )
        messages.success(request, _("Site details saved."))
        return redirect("study_site_detail", site_pk=study_site.pk)
    return render(request, "studies/studysite_form.html", {"form": form, "study_site": study_site})


def _history_target(user, kind: str, pk: int) -> tuple[Model, int, int | None]:
    """The object whose history is asked for, if the user can see it: (obj, study, site)."""
    if kind == "study":
        study = get_study_for_user(user, pk)
        return study, study.pk, None
    if kind == "site":
        study_site = get_study_site_for_user(user, pk)
        return study_site, study_site.study_id, study_site.pk
    if kind == "patient":
        patient = Patient.objects.for_user(user).select_related("study_site").filter(pk=pk).first()
        if patient is None:
            raise Http404
        return patient, patient.study_site.study_id, patient.study_site_id
    raise Http404


@require_GET
def record_history(request: HttpRequest, kind: str, **ids: int) -> HttpResponse:
    """Every change of one record: who, when, what was changed from what to what, and why."""
    (object_pk,) = ids.values()
    obj, study_id, study_site_id = _history_target(request.user, kind, object_pk)
    require_audit_reader(request.user, study_id, study_site_id)
    return render(
        request,
        "studies/history.html",
        {
            "object": obj,
            "kind": kind,
            "entries": history_for(obj),
        },
    )


def _can_generate_list(user, study: Study) -> bool:
    scope = scope_for(user)
    return scope.has_role(frozenset({Role.STATISTICIAN}), study.pk) and sees_allocation(
        user, study, None
    )


def _list_post(request: HttpRequest, study: Study, form, upload) -> bool:
    """Generate or upload the list from the posted form; False (with form errors) if refused."""
    if request.POST.get("action") == "upload":
        if not upload.is_valid():
            return False
        try:
            randomisation_list_upload(
                study=study, by=request.user, rows=upload.cleaned_data["file"]
            )
        except ValueError as error:
            upload.add_error("file", str(error))
            return False
        return True
    if not form.is_valid():
        return False
    try:
        randomisation_list_generate(study=study, by=request.user, **form.cleaned_data)
    except ValueError as error:
        form.add_error(None, str(error))
        return False
    return True


@require_http_methods(["GET", "POST"])
def study_randomisation(request: HttpRequest, study_pk: int) -> HttpResponse:
    """The statistician generates (or uploads) the concealed list; others see fill levels only."""
    study = get_study_for_user(request.user, study_pk)
    require(scope_for(request.user).has_role(RANDOMISATION_VIEWER_ROLES, study.pk))
    can_generate = _can_generate_list(request.user, study)
    uploading = request.POST.get("action") == "upload"
    form = RandomisationListForm(request.POST if request.POST and not uploading else None)
    upload = RandomisationUploadForm(
        request.POST if uploading else None, request.FILES if uploading else None
    )
    if request.method == "POST":
        require(can_generate)
        if _list_post(request, study, form, upload):
            messages.success(request, _("Randomisation list stored."))
            return redirect("study_randomisation", study_pk=study.pk)
    rlist = study.randomisation_lists.filter(is_active=True).select_related("created_by").first()
    fill = []
    if rlist is not None:
        fill = (
            rlist.slots.values("stratum")
            .annotate(total=Count("pk"), used=Count("pk", filter=Q(taken_at__isnull=False)))
            .order_by("stratum")
        )
    return render(
        request,
        "studies/randomisation.html",
        {
            "study": study,
            "rlist": rlist,
            "fill": fill,
            "form": form,
            "upload": upload,
            "can_generate": can_generate and rlist is None and study.is_randomised,
        },
    )


def _consort(user, study: Study) -> dict:
    """CONSORT-style flow of the visible patients: screened, eligible, enrolled, per arm."""
    from patients.models import Allocation, Patient

    patients = Patient.objects.for_user(user).filter(study_site__study=study)
    counts = patients.aggregate(
        screened=Count("pk"),
        screen_failures=Count("pk", filter=Q(screening_outcome="screen_failure")),
        eligible=Count("pk", filter=Q(screening_outcome="eligible")),
        declined=Count("pk", filter=Q(screening_outcome="declined")),
        enrolled=Count("pk", filter=Q(enrolled_on__isnull=False)),
    )
    per_arm = []
    if sees_allocation(user, study, None):
        per_arm = list(
            Allocation.objects.filter(patient__in=patients)
            .values("arm__name", "part")
            .annotate(n=Count("pk"))
            .order_by("part", "arm__name")
        )
    return {**counts, "per_arm": per_arm}


def _data_management_links(user, study_id: int) -> dict[str, bool]:
    from studies.roles import DASHBOARD_ROLES, EXPORT_ROLES, LOCK_ROLES, SDV_ROLES

    scope = scope_for(user)
    return {
        "can_see_locks": scope.has_role(LOCK_ROLES | SDV_ROLES, study_id),
        "can_export": scope.has_role(EXPORT_ROLES, study_id),
        "can_see_dashboard": scope.has_role(DASHBOARD_ROLES, study_id),
    }
