"""What the sponsor's study dashboard shows, read once into frozen dataclasses (issue #8 item 7).

Every read starts from the viewer's scope (``for_user`` / ``site_q``), and what may be seen of
the allocation is decided here, once: arms are loaded only for :func:`sees_arms` viewers (a
statistician who sees allocations, ``studies.blinding.sees_allocation``); everyone else gets
the endpoints of all patients pooled, and no arm code or name is even read.  The page (view,
template, ``svg.py``) imports no models and runs no queries of its own.

The number of queries does not depend on the number of patients: one query per kind of row,
aggregates where they suffice (``tests/studies/test_dashboard.py`` checks it at two sizes).
The endpoints are computed by ``studies/dashboards/endpoints.py`` from what this module reads.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from patients.casebook import ARM_REVEALING_KINDS
from patients.models import EligibilityAnswer, Patient
from patients.models_dm import DataQuery
from studies.access import scope_for, site_q
from studies.blinding import sees_allocation
from studies.dashboards.endpoints import EndpointResult, PatientRow, study_endpoints
from studies.models import EligibilityCriterion, Study, StudySite
from studies.roles import DASHBOARD_ROLES, Role

#: Query age buckets in whole days of age: under 7, 7 to 30, over 30.
QUERY_WEEK_DAYS, QUERY_MONTH_DAYS = 7, 30
STATISTICIAN_ROLES = frozenset({Role.STATISTICIAN})


def may_read_dashboard(user, study: Study) -> bool:
    return scope_for(user).has_role(DASHBOARD_ROLES, study.pk)


def sees_arms(user, study: Study) -> bool:
    """Endpoints by arm: statisticians who see allocations (open-label: every statistician)."""
    return scope_for(user).has_role(STATISTICIAN_ROLES, study.pk) and sees_allocation(
        user, study, None
    )


# --- the rows ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyInfo:
    pk: int
    code: str
    acronym: str
    title: str
    blinded_design: bool
    target_enrolment: int | None


@dataclass(frozen=True)
class SiteInfo:
    pk: int
    number: str
    institution: str
    city: str
    target_enrolment: int | None

    @property
    def label(self) -> str:
        return f"{self.number} · {self.institution} ({self.city})"


def _percent(part: int, whole: int | None) -> int | None:
    return round(100 * part / whole) if whole else None


@dataclass(frozen=True)
class SiteEnrolment:
    site: SiteInfo
    cumulative: tuple[int, ...]  # aligned with Enrolment.months

    @property
    def enrolled(self) -> int:
        return self.cumulative[-1] if self.cumulative else 0

    @property
    def percent_of_target(self) -> int | None:
        return _percent(self.enrolled, self.site.target_enrolment)


@dataclass(frozen=True)
class Enrolment:
    months: tuple[date, ...]  # first day of each month, oldest first
    sites: tuple[SiteEnrolment, ...]
    total: tuple[int, ...]
    target: int | None  # the study's target

    @property
    def enrolled(self) -> int:
        return self.total[-1] if self.total else 0

    @property
    def percent_of_target(self) -> int | None:
        return _percent(self.enrolled, self.target)

    @property
    def table(self) -> list[tuple[date, int, tuple[int, ...]]]:
        """(month, total, per-site counts) rows, newest first, for the page's table."""
        rows = [
            (month, self.total[i], tuple(s.cumulative[i] for s in self.sites))
            for i, month in enumerate(self.months)
        ]
        return rows[::-1]


@dataclass(frozen=True)
class ReasonCount:
    label: str
    count: int
    detail: str = ""


@dataclass(frozen=True)
class Screening:
    screened: int
    enrolled: int
    pending: int
    eligible_not_enrolled: int
    screen_failures: int
    declined: int
    failed_criteria: tuple[ReasonCount, ...]
    failures_without_criterion: int
    declined_reasons: tuple[ReasonCount, ...]


@dataclass(frozen=True)
class QueryAgeing:
    site: SiteInfo
    under_week: int = 0
    week_to_month: int = 0
    over_month: int = 0
    oldest_days: int | None = None

    @property
    def total(self) -> int:
        return self.under_week + self.week_to_month + self.over_month


COMPLETENESS_FIELDS = ("expected", "missing", "in_progress", "complete", "verified", "signed")


@dataclass(frozen=True)
class SiteCompleteness:
    site: SiteInfo
    expected: int = 0
    missing: int = 0
    in_progress: int = 0
    complete: int = 0
    verified: int = 0
    signed: int = 0

    @property
    def percent_complete(self) -> int | None:
        return _percent(self.complete, self.expected)


@dataclass(frozen=True)
class Dashboard:
    study: StudyInfo
    by_arm: bool
    today: date
    sites: tuple[SiteInfo, ...]
    enrolment: Enrolment
    screening: Screening
    queries: tuple[QueryAgeing, ...]
    completeness: tuple[SiteCompleteness, ...] | None  # None: not available
    endpoints: tuple[EndpointResult, ...] = field(default=())


# --- reading -----------------------------------------------------------------------------------


def _study_info(study: Study) -> StudyInfo:
    return StudyInfo(
        pk=study.pk,
        code=study.code,
        acronym=study.acronym or study.code,
        title=study.title,
        blinded_design=study.is_blinded_design,
        target_enrolment=study.target_enrolment,
    )


def _sites(user, study: Study) -> tuple[SiteInfo, ...]:
    rows = (
        StudySite.objects.for_user(user)
        .filter(study=study)
        .select_related("site")
        .order_by("number")
    )
    return tuple(
        SiteInfo(s.pk, s.number, s.site.institution, s.site.city, s.target_enrolment) for s in rows
    )


def _patients(user, study: Study, by_arm: bool) -> list[PatientRow]:
    fields = [
        "pk",
        "study_site_id",
        "enrolled_on",
        "screening_outcome",
        "declined_reason",
        "status_changed_on",
        "off_study_reason",
    ]
    if by_arm:  # never loaded for anyone else
        fields += ["allocation__arm__code", "allocation__arm__name", "allocation__part"]
    rows = Patient.objects.for_user(user).filter(study_site__study=study).values_list(*fields)
    patients = []
    for row in rows.order_by("pk"):
        pk, site_id, enrolled_on, outcome, declined, changed, off_reason, *arm = row
        death = changed if off_reason == Patient.OffStudyReason.DEATH else None
        patients.append(
            PatientRow(pk, site_id, enrolled_on, outcome, declined, changed, death, *arm)
        )
    return patients


# --- enrolment ---------------------------------------------------------------------------------


def _month_list(first: date, last: date) -> tuple[date, ...]:
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return tuple(months)


def _enrolment(
    study: Study, sites: tuple[SiteInfo, ...], patients: list[PatientRow], today: date
) -> Enrolment:
    dates = [p.enrolled_on for p in patients if p.enrolled_on]
    starts = [*dates, *([study.start_date] if study.start_date else [])]
    first = min([d for d in starts if d <= today], default=today)
    months = _month_list(first, max([today, *dates]))
    index = {month: i for i, month in enumerate(months)}
    counts: dict[int, list[int]] = {s.pk: [0] * len(months) for s in sites}
    for p in patients:
        if p.enrolled_on and p.site_id in counts:
            counts[p.site_id][index[p.enrolled_on.replace(day=1)]] += 1
    cumulative = {pk: _running(values) for pk, values in counts.items()}
    total = tuple(sum(column) for column in zip(*cumulative.values(), strict=True))
    return Enrolment(
        months=months,
        sites=tuple(SiteEnrolment(s, cumulative[s.pk]) for s in sites),
        total=total or (0,) * len(months),
        target=study.target_enrolment,
    )


def _running(values: list[int]) -> tuple[int, ...]:
    out, running = [], 0
    for value in values:
        running += value
        out.append(running)
    return tuple(out)


# --- screening ---------------------------------------------------------------------------------


def _criterion_label(kind: str, number: int) -> str:
    return f"{'I' if kind == EligibilityCriterion.Kind.INCLUSION else 'E'}{number}"


def _failed_criteria(user, study: Study) -> dict[int, set[tuple[str, int, str]]]:
    """Patient -> the criteria answered as not satisfied, for screen failures."""
    rows = EligibilityAnswer.objects.filter(
        site_q(user, "patient__study_site"),
        patient__study_site__study=study,
        patient__screening_outcome=Patient.ScreeningOutcome.SCREEN_FAILURE,
        satisfied=False,
    ).values_list("patient_id", "criterion__kind", "criterion__number", "criterion__text")
    failed: dict[int, set[tuple[str, int, str]]] = defaultdict(set)
    for patient_id, kind, number, text in rows:
        failed[patient_id].add((kind, number, text))
    return failed


def _screening(user, study: Study, patients: list[PatientRow]) -> Screening:
    outcomes = Counter(p.outcome for p in patients)
    failed = _failed_criteria(user, study)
    by_criterion = Counter(c for criteria in failed.values() for c in criteria)
    criteria = tuple(
        ReasonCount(_criterion_label(kind, number), n, text)
        for (kind, number, text), n in sorted(
            by_criterion.items(), key=lambda item: (-item[1], item[0][0] != "inclusion", item[0])
        )
    )
    failures = [p for p in patients if p.outcome == Patient.ScreeningOutcome.SCREEN_FAILURE]
    declined: Counter[str] = Counter()
    first_wording: dict[str, str] = {}
    for p in patients:
        if p.outcome == Patient.ScreeningOutcome.DECLINED:
            key = re.sub(r"\s+", " ", p.declined_reason).strip().casefold()
            first_wording.setdefault(key, p.declined_reason.strip() or _("No reason given"))
            declined[key] += 1
    enrolled = sum(1 for p in patients if p.enrolled_on)
    return Screening(
        screened=len(patients),
        enrolled=enrolled,
        pending=outcomes[Patient.ScreeningOutcome.PENDING],
        eligible_not_enrolled=sum(
            1
            for p in patients
            if p.outcome == Patient.ScreeningOutcome.ELIGIBLE and not p.enrolled_on
        ),
        screen_failures=len(failures),
        declined=outcomes[Patient.ScreeningOutcome.DECLINED],
        failed_criteria=criteria,
        failures_without_criterion=sum(1 for p in failures if p.pk not in failed),
        declined_reasons=tuple(
            ReasonCount(first_wording[key], n) for key, n in declined.most_common()
        ),
    )


# --- data management ---------------------------------------------------------------------------


def _query_ageing(
    user, study: Study, sites: tuple[SiteInfo, ...], now: datetime
) -> tuple[QueryAgeing, ...]:
    """Open and answered queries per site, by age; forms that reveal the arm are left out for
    users who may not see allocations (as on the casebook)."""
    # Ages in whole days, as the "oldest" column shows them: 0-6, 7-30, 31 and more.
    week = now - timedelta(days=QUERY_WEEK_DAYS)
    month = now - timedelta(days=QUERY_MONTH_DAYS + 1)
    queries = DataQuery.objects.filter(
        site_q(user, "patient__study_site"),
        patient__study_site__study=study,
        status__in=[DataQuery.Status.OPEN, DataQuery.Status.ANSWERED],
    )
    if not sees_allocation(user, study, None):
        queries = queries.exclude(form_kind__in=list(ARM_REVEALING_KINDS))
    rows = {
        row["patient__study_site_id"]: row
        for row in queries.values("patient__study_site_id")
        .annotate(
            under=Count("pk", filter=Q(opened_at__gt=week)),
            middle=Count("pk", filter=Q(opened_at__lte=week, opened_at__gt=month)),
            over=Count("pk", filter=Q(opened_at__lte=month)),
            oldest=Min("opened_at"),
        )
        .order_by()
    }
    ageing = []
    for site in sites:
        row = rows.get(site.pk)
        if row is None:
            ageing.append(QueryAgeing(site))
            continue
        oldest = (now - row["oldest"]).days
        ageing.append(QueryAgeing(site, row["under"], row["middle"], row["over"], oldest))
    return tuple(ageing)


def _completeness(
    study_id: int, sites: tuple[SiteInfo, ...]
) -> tuple[SiteCompleteness, ...] | None:
    """Forms per site from the casebook (None when the casebook cannot tell yet)."""
    try:
        from patients import casebook

        # Only the sites the reader sees: a site user's dashboard reads their site's forms only.
        by_site = casebook.completeness_by_site(study_id, study_site_ids=[s.pk for s in sites])
    except (AttributeError, ImportError):
        return None
    rows = []
    for site in sites:
        found = by_site.get(site.pk)
        values = {name: int(getattr(found, name, 0) or 0) for name in COMPLETENESS_FIELDS}
        rows.append(SiteCompleteness(site, **values))
    return tuple(rows)


# --- the whole page ----------------------------------------------------------------------------


def dashboard_data(
    user, study: Study, *, today: date | None = None, now: datetime | None = None
) -> Dashboard:
    """Everything the dashboard shows, for ``user`` (who must pass :func:`may_read_dashboard`)."""
    now = now or timezone.now()
    today = today or timezone.localdate(now)
    by_arm = sees_arms(user, study)
    sites = _sites(user, study)
    patients = _patients(user, study, by_arm)
    return Dashboard(
        study=_study_info(study),
        by_arm=by_arm,
        today=today,
        sites=sites,
        enrolment=_enrolment(study, sites, patients, today),
        screening=_screening(user, study, patients),
        queries=_query_ageing(user, study, sites, now),
        completeness=_completeness(study.pk, sites),
        endpoints=study_endpoints(study, patients, by_arm, today),
    )


__all__ = [
    "Dashboard",
    "dashboard_data",
    "may_read_dashboard",
    "sees_arms",
]
