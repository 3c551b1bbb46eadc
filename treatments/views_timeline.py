"""A patient's treatment timeline and a study's swimmer plot (one site with ?site=).

Both are blinded as the rest of the treatment pages (treatments/swimmer_data.py): users who may
not see the allocation get no arm, no study-drug cycle and no fraction count.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from studies.access import site_q
from studies.blinding import sees_allocation
from studies.lookups import get_patient_for_user, get_study_for_user
from treatments import swimmer, swimmer_data


def _labels() -> swimmer.Labels:
    return swimmer.Labels(
        title=_("Swimmer plot"),
        timeline_title=_("Treatment timeline"),
        days=_("Days from day 0"),
        follow_up=_("Follow-up"),
        line=_("Line %(number)s"),
        sbrt=_("SBRT"),
        course=_("SBRT course %(number)s"),
        study_drug=_("Study drug"),
        cycle=_("Cycle %(number)s"),
        not_given=_("not given"),
        progression=_("Progression"),
        death=_("Death"),
        ongoing=_("Ongoing"),
        earlier=_("Started before the left edge of the plot"),
        events=_("Events"),
        no_patient=_("No patient with a day 0 yet."),
    )


def _safe_svg(markup: str) -> str:
    """SVG built by treatments.swimmer, which escapes every text it draws: safe to insert."""
    return mark_safe(markup)  # noqa: S308


@require_GET
def patient_timeline(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk)
    row = swimmer_data.patient_row(request.user, patient)
    site = patient.study_site
    return render(
        request,
        "treatments/patient_timeline.html",
        {
            "patient": patient,
            "row": row,
            "timeline_svg": _safe_svg(swimmer.timeline_svg(row, _labels())) if row else "",
            "sees_allocation": sees_allocation(
                request.user, site.study, site.pk, patient_id=patient.pk
            ),
        },
    )


@require_GET
def study_swimmer(request: HttpRequest, study_pk: int) -> HttpResponse:
    study = get_study_for_user(request.user, study_pk)
    sites = study.study_sites.filter(site_q(request.user)).select_related("site").order_by("number")
    site, wanted = None, request.GET.get("site", "")
    if wanted:
        site = sites.filter(pk=int(wanted)).first() if wanted.isdigit() else None
        if site is None:  # another study's site, or one the user cannot see
            raise Http404
    rows = swimmer.sort_rows(
        swimmer_data.study_rows(
            request.user,
            study,
            study_site=site,
            url=lambda pk: reverse("patient_timeline", kwargs={"patient_pk": pk}),
        )
    )
    return render(
        request,
        "treatments/swimmer.html",
        {
            "study": study,
            "site": site,
            "sites": sites,
            "rows": rows,
            "swimmer_svg": _safe_svg(swimmer.swimmer_svg(rows, _labels())),
            "shows_drug": any(row.cycles for row in rows),
            "shows_arm": any(row.arm for row in rows),
            "blinded": any(row.blinded for row in rows),
        },
    )
