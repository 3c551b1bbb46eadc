"""The sponsor's study dashboard: enrolment, screening failures, queries and completeness per
site, and the primary endpoints (by arm for unblinded statisticians, pooled for everyone else).

Everything shown comes from ``studies.dashboards.selectors.dashboard_data``; this module only
turns it into SVG pictures (``studies.dashboards.svg``, which escapes every text).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from studies.access import require
from studies.dashboards import svg
from studies.dashboards.endpoints import (
    DAYS_PER_MONTH,
    PFS_LANDMARK_DAYS,
    SURVIVAL,
    EndpointResult,
)
from studies.dashboards.selectors import Dashboard, dashboard_data, may_read_dashboard
from studies.lookups import get_study_for_user


def _safe(picture: str):
    return mark_safe(picture)  # noqa: S308 - built by studies.dashboards.svg, which escapes text


def _enrolment_charts(data: Dashboard) -> tuple[str, str]:
    enrolment = data.enrolment
    months = [f"{month:%Y-%m}" for month in enrolment.months]
    labels = {"x": _("Month"), "y": _("Patients enrolled (cumulative)"), "target": _("target")}
    total = svg.enrolment_chart(
        months,
        [svg.LineSeries(_("All sites"), enrolment.total, enrolment.target)],
        _("Enrolment, all sites"),
        labels=labels,
    )
    per_site = svg.enrolment_chart(
        months,
        [
            svg.LineSeries(
                f"{s.site.number} {s.site.institution}", s.cumulative, s.site.target_enrolment
            )
            for s in enrolment.sites
        ],
        _("Enrolment by site"),
        labels=labels,
    )
    return _safe(total), _safe(per_site)


def _km_chart(result: EndpointResult) -> str:
    series = [
        svg.KmSeries(
            label=group.label,
            steps=tuple(
                (s.time / DAYS_PER_MONTH, s.survival) for s in group.curve.steps if s.events
            ),
            censored=tuple(
                (s.time / DAYS_PER_MONTH, s.survival) for s in group.curve.steps if s.censored
            ),
            end=group.curve.last_time / DAYS_PER_MONTH,
        )
        for group in result.survival
    ]
    landmark = None
    if result.landmark_days == PFS_LANDMARK_DAYS:
        landmark = (PFS_LANDMARK_DAYS / DAYS_PER_MONTH, _("6 months"))
    labels = {"x": _("Months"), "y": _("Without event (%)")}
    return _safe(svg.km_chart(series, result.title, landmark=landmark, labels=labels))


def _bars(data: Dashboard) -> tuple[str, str]:
    screening = data.screening
    reasons = [svg.Bar(f"{c.label} {c.detail}", (c.count,)) for c in screening.failed_criteria]
    if screening.declined:
        reasons.append(svg.Bar(_("Declined to take part"), (screening.declined,)))
    queries = svg.bar_chart(
        [
            svg.Bar(
                f"{q.site.number} {q.site.institution}",
                (q.under_week, q.week_to_month, q.over_month),
            )
            for q in data.queries
        ],
        _("Open and answered queries by age"),
        segments=(_("under 7 days"), _("7 to 30 days"), _("over 30 days")),
    )
    failures = svg.bar_chart(reasons, _("Screen failures by reason"), colours=svg.PALETTE)
    return _safe(failures), _safe(queries)


@require_GET
def study_dashboard(request: HttpRequest, study_pk: int) -> HttpResponse:
    study = get_study_for_user(request.user, study_pk)
    require(may_read_dashboard(request.user, study))
    data = dashboard_data(request.user, study)
    enrolment_total, enrolment_sites = _enrolment_charts(data)
    failures_chart, queries_chart = _bars(data)
    endpoints = [
        {"result": e, "chart": _km_chart(e) if e.kind == SURVIVAL and e.has_data else ""}
        for e in data.endpoints
    ]
    return render(
        request,
        "studies/dashboard.html",
        {
            "dashboard": data,
            "study": data.study,
            "enrolment_total_chart": enrolment_total,
            "enrolment_sites_chart": enrolment_sites,
            "failures_chart": failures_chart,
            "queries_chart": queries_chart,
            "endpoints": endpoints,
        },
    )
