"""What a PDF report shows, read once from the database into frozen dataclasses.

Every read starts from the viewer's scope (``for_user``) and blinding is decided here, once, by
:func:`studies.blinding.sees_allocation`: for a blinded viewer no arm, no prescription, no
fraction count and no arm-revealing deviation is even loaded. The report builder
(``studies/reports/pdf.py``) imports no models and runs no queries.

The number of queries is the same whatever the number of patients (aggregates and one query per
kind of row); see ``tests/studies/test_reports_pdf.py``.

Labels of choices are lazy translations: they are rendered in the report's language.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Exists, Max, Min, OuterRef, Q
from django.utils import timezone

from lesions.models import ImagingAssessment, Response
from patients.models import AdverseEvent, Patient, PlannedVisit
from patients.safety_summary import Event, TermRow, term_rows
from studies.access import scope_for
from studies.blinding import sees_allocation
from studies.models import (
    Arm,
    Membership,
    RecruitmentStatus,
    Study,
    StudySite,
    VisitDefinition,
)
from studies.roles import SITE_ROLES, SPONSOR_ROLES
from treatments.models import Fraction, Prescription, ProtocolDeviation, RadiotherapyCourse

SITE = "site"
STUDY = "study"
#: An enrolled patient without an SBRT course this long after enrolment is listed as late.
SBRT_EXPECTED_WITHIN_DAYS = 30


# --- the rows ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyInfo:
    pk: int
    code: str
    acronym: str
    title: str
    registry_id: str
    blinded_design: bool
    target_enrolment: int | None
    time_zone: str


@dataclass(frozen=True)
class SiteInfo:
    pk: int
    number: str
    institution: str
    city: str
    country: str
    target_enrolment: int | None
    recruitment_status: object  # lazy label

    @property
    def label(self) -> str:
        return f"{self.number} · {self.institution} ({self.city})"


@dataclass(frozen=True)
class PatientRow:
    pk: int
    site_id: int
    subject: str  # subject identifier, or the screening number before enrolment
    status: str
    status_label: object
    screening_outcome: str
    screening_outcome_label: object
    screened_on: date | None
    enrolled_on: date | None
    declined_reason: str
    off_study_reason: object  # lazy label or ""
    arm: str  # "" unless the viewer sees allocations
    has_baseline: bool
    has_course: bool
    best_response: str  # RECIST code, "" when none
    best_response_label: object
    best_change_pct: float | None


@dataclass(frozen=True)
class VisitRow:
    site_id: int
    subject: str
    visit: str
    kind: object  # lazy label
    due_on: date
    window_start: date
    window_end: date
    overdue: bool


@dataclass(frozen=True)
class CourseRow:
    site_id: int
    patient_id: int
    subject: str
    number: int
    first_fraction: date | None
    # Below: empty for a blinded viewer (fractionation and duration reveal the arm in STOP-2).
    last_fraction: date | None
    delivered_fractions: int | None
    prescriptions: tuple[str, ...]
    deviations: tuple[str, ...]  # arm-revealing ones only for viewers who see allocations


@dataclass(frozen=True)
class SiteVisitCounts:
    planned: int = 0
    done: int = 0
    missed: int = 0
    not_applicable: int = 0


@dataclass(frozen=True)
class ArmCount:
    arm: str
    enrolled: int


@dataclass(frozen=True)
class MonthCount:
    month: str  # "2026-03"
    enrolled: int


@dataclass(frozen=True)
class ScreeningSummary:
    screened: int
    pending: int
    eligible: int
    screen_failures: int
    declined: int
    enrolled: int
    declined_reasons: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class MissingItem:
    site_id: int
    subject: str
    what: str  # one of MISSING_* below
    detail: str = ""


MISSING_BASELINE = "baseline"
MISSING_SBRT = "sbrt"
LATE_VISIT = "visit"


@dataclass(frozen=True)
class SiteComparison:
    site: SiteInfo
    screened: int
    enrolled: int
    target: int | None
    active: int  # enrolled, on treatment or in follow-up
    off_study: int
    due: int
    overdue: int
    missing: int
    grade3_plus: int  # patients with a grade 3-5 adverse event
    courses: int
    courses_with_deviations: int


@dataclass(frozen=True)
class ReportData:
    kind: str  # SITE or STUDY
    study: StudyInfo
    sites: tuple[SiteInfo, ...]
    shows_arms: bool
    arms: tuple[str, ...]  # empty for a blinded viewer
    viewer: str
    period: str
    generated_at: datetime  # in the study's time zone
    today: date
    patients: tuple[PatientRow, ...]
    visits: tuple[VisitRow, ...]  # planned visits now due or overdue
    visit_counts: dict[int, SiteVisitCounts] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    courses: tuple[CourseRow, ...] = ()

    # -- derived figures (pure) --------------------------------------------------------------

    @property
    def site(self) -> SiteInfo | None:
        return self.sites[0] if self.kind == SITE and self.sites else None

    @property
    def enrolled(self) -> tuple[PatientRow, ...]:
        return tuple(p for p in self.patients if p.enrolled_on is not None)

    @property
    def target(self) -> int | None:
        if self.kind == SITE:
            return self.sites[0].target_enrolment if self.sites else None
        return self.study.target_enrolment

    def monthly_enrolment(self) -> tuple[MonthCount, ...]:
        """Patients enrolled per calendar month, from the first enrolment to this month."""
        months = Counter(p.enrolled_on.strftime("%Y-%m") for p in self.enrolled)
        if not months:
            return ()
        first = min(p.enrolled_on for p in self.enrolled).replace(day=1)
        last = self.today.replace(day=1)
        rows, cursor = [], first
        while cursor <= last:
            key = cursor.strftime("%Y-%m")
            rows.append(MonthCount(key, months.get(key, 0)))
            cursor = (cursor + timedelta(days=32)).replace(day=1)
        return tuple(rows)

    def arm_counts(self) -> tuple[ArmCount, ...]:
        if not self.shows_arms:
            return ()
        counts = Counter(p.arm for p in self.enrolled if p.arm)
        return tuple(ArmCount(arm, counts.get(arm, 0)) for arm in self.arms)

    def screening(self, site_id: int | None = None) -> ScreeningSummary:
        rows = [p for p in self.patients if site_id is None or p.site_id == site_id]
        outcomes = Counter(p.screening_outcome for p in rows)
        reasons = Counter(
            p.declined_reason.strip() for p in rows if p.screening_outcome == "declined"
        )
        return ScreeningSummary(
            screened=len(rows),
            pending=outcomes.get("pending", 0),
            eligible=outcomes.get("eligible", 0),
            screen_failures=outcomes.get("screen_failure", 0),
            declined=outcomes.get("declined", 0),
            enrolled=sum(1 for p in rows if p.enrolled_on is not None),
            declined_reasons=tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        )

    def status_counts(self) -> tuple[tuple[object, int], ...]:
        labels = {p.status: p.status_label for p in self.patients}
        counts = Counter(p.status for p in self.patients)
        order = list(Patient.Status.values)  # the patient's path: screening ... off study
        return tuple(
            (labels[s], counts[s])
            for s in sorted(counts, key=lambda s: order.index(s) if s in order else len(order))
        )

    def missing(self) -> tuple[MissingItem, ...]:
        """Missing and late forms (a proxy): baseline scan, SBRT course, overdue visits."""
        items = []
        for p in self.enrolled:
            if p.status == "off_study":
                continue
            if not p.has_baseline:
                items.append(MissingItem(p.site_id, p.subject, MISSING_BASELINE))
            late = p.enrolled_on + timedelta(days=SBRT_EXPECTED_WITHIN_DAYS) < self.today
            if not p.has_course and late:
                items.append(MissingItem(p.site_id, p.subject, MISSING_SBRT))
        items.extend(
            MissingItem(v.site_id, v.subject, LATE_VISIT, v.visit) for v in self.visits if v.overdue
        )
        return tuple(sorted(items, key=lambda i: (i.site_id, i.subject, i.what, i.detail)))

    def toxicity(self) -> tuple[TermRow, ...]:
        """Worst CTCAE grade per patient per term (patients/safety_summary.py)."""
        return term_rows(self.events)

    def patients_with_event(self) -> int:
        return len({e.patient_id for e in self.events})

    def response_counts(self) -> tuple[tuple[str, object, int], ...]:
        labels, counts = {}, Counter()
        for p in self.patients:
            if p.best_response:
                labels[p.best_response] = p.best_response_label
                counts[p.best_response] += 1
        order = ["CR", "PR", "SD", "NON_CR_NON_PD", "PD", "NE"]
        codes = sorted(counts, key=lambda c: order.index(c) if c in order else len(order))
        return tuple((c, labels[c], counts[c]) for c in codes)

    def waterfall(self) -> tuple[tuple[str, float], ...]:
        rows = [
            (p.subject, p.best_change_pct) for p in self.patients if p.best_change_pct is not None
        ]
        return tuple(sorted(rows, key=lambda r: (-r[1], r[0])))

    def comparison(self) -> tuple[SiteComparison, ...]:
        """One row per site: the per-site comparison table of the study report."""
        missing = Counter(i.site_id for i in self.missing())
        site_of = {p.pk: p.site_id for p in self.patients}
        grade3 = defaultdict(set)
        for e in self.events:
            if e.grade >= 3:
                grade3[site_of.get(e.patient_id)].add(e.patient_id)
        rows = []
        for site in self.sites:
            mine = [p for p in self.patients if p.site_id == site.pk]
            visits = [v for v in self.visits if v.site_id == site.pk]
            courses = [c for c in self.courses if c.site_id == site.pk]
            rows.append(
                SiteComparison(
                    site=site,
                    screened=len(mine),
                    enrolled=sum(1 for p in mine if p.enrolled_on),
                    target=site.target_enrolment,
                    active=sum(
                        1 for p in mine if p.status in ("enrolled", "on_treatment", "follow_up")
                    ),
                    off_study=sum(1 for p in mine if p.status == "off_study"),
                    due=sum(1 for v in visits if not v.overdue),
                    overdue=sum(1 for v in visits if v.overdue),
                    missing=missing.get(site.pk, 0),
                    grade3_plus=len(grade3.get(site.pk, ())),
                    courses=len(courses),
                    courses_with_deviations=sum(1 for c in courses if c.deviations),
                )
            )
        return tuple(rows)


# --- access ------------------------------------------------------------------------------------


def may_read_site_report(user, study_id: int, study_site_id: int) -> bool:
    """A site's report: users with a role at that site, or a role covering all sites."""
    scope = scope_for(user)
    return scope.superuser or any(
        g.study_id == study_id and g.study_site_id in (None, study_site_id) for g in scope.grants
    )


def may_read_study_report(user, study_id: int) -> bool:
    """The study report covers every site: users whose role covers all sites of the study."""
    scope = scope_for(user)
    return scope.superuser or study_id in scope.all_sites_study_ids


# --- the queries -------------------------------------------------------------------------------


def _study_info(study) -> StudyInfo:
    return StudyInfo(
        pk=study.pk,
        code=study.code,
        acronym=study.acronym or study.code,
        title=study.title,
        registry_id=study.registry_id,
        blinded_design=study.is_blinded_design,
        target_enrolment=study.target_enrolment,
        time_zone=study.time_zone,
    )


def _site_info(ss) -> SiteInfo:
    return SiteInfo(
        pk=ss.pk,
        number=ss.number,
        institution=ss.site.institution,
        city=ss.site.city,
        country=ss.site.country,
        target_enrolment=ss.target_enrolment,
        recruitment_status=RecruitmentStatus(ss.recruitment_status).label
        if ss.recruitment_status in RecruitmentStatus.values
        else ss.recruitment_status,
    )


def _study_zone(study) -> ZoneInfo:
    try:
        return ZoneInfo(study.time_zone)
    except (ValueError, KeyError):
        return ZoneInfo(settings.TIME_ZONE)


def _subject(row: dict) -> str:
    return row["subject_id"] or f"#{row['screening_number'] or row['pk']}"


def _patients(viewer, site_ids, shows_arms: bool):
    qs = (
        Patient.objects.for_user(viewer)
        .filter(study_site_id__in=site_ids)
        .annotate(
            has_baseline=Exists(
                ImagingAssessment.objects.filter(patient=OuterRef("pk"), is_baseline=True)
            ),
            has_course=Exists(RadiotherapyCourse.objects.filter(patient=OuterRef("pk"))),
        )
        .order_by("study_site_id", "subject_id", "screening_number", "pk")
    )
    fields = [
        "pk",
        "study_site_id",
        "subject_id",
        "screening_number",
        "status",
        "screening_outcome",
        "screened_on",
        "enrolled_on",
        "declined_reason",
        "off_study_reason",
        "has_baseline",
        "has_course",
        "response__best_overall_response",
        "response__best_change_pct",
    ]
    if shows_arms:
        fields.append("allocation__arm__name")
    rows = []
    for r in qs.values(*fields):
        bor = r["response__best_overall_response"] or ""
        change = r["response__best_change_pct"]
        rows.append(
            PatientRow(
                pk=r["pk"],
                site_id=r["study_site_id"],
                subject=_subject(r),
                status=r["status"],
                status_label=Patient.Status(r["status"]).label,
                screening_outcome=r["screening_outcome"],
                screening_outcome_label=Patient.ScreeningOutcome(r["screening_outcome"]).label,
                screened_on=r["screened_on"],
                enrolled_on=r["enrolled_on"],
                declined_reason=r["declined_reason"],
                off_study_reason=Patient.OffStudyReason(r["off_study_reason"]).label
                if r["off_study_reason"]
                else "",
                arm=(r.get("allocation__arm__name") or "") if shows_arms else "",
                has_baseline=r["has_baseline"],
                has_course=r["has_course"],
                best_response=bor,
                best_response_label=Response(bor).label if bor in Response.values else bor,
                best_change_pct=float(change) if change is not None else None,
            )
        )
    return tuple(rows)


def _visits(viewer, patient_ids, today: date):
    scoped = PlannedVisit.objects.for_user(viewer).filter(patient_id__in=patient_ids)
    rows = (
        scoped.filter(state=PlannedVisit.State.PLANNED, window_start__lte=today)
        .order_by("window_end", "patient__subject_id", "definition__name")
        .values(
            "patient__study_site_id",
            "patient__subject_id",
            "patient__screening_number",
            "patient_id",
            "definition__name",
            "definition__kind",
            "due_on",
            "window_start",
            "window_end",
        )
    )
    visits = tuple(
        VisitRow(
            site_id=r["patient__study_site_id"],
            subject=r["patient__subject_id"]
            or f"#{r['patient__screening_number'] or r['patient_id']}",
            visit=r["definition__name"],
            kind=VisitDefinition.Kind(r["definition__kind"]).label
            if r["definition__kind"] in VisitDefinition.Kind.values
            else r["definition__kind"],
            due_on=r["due_on"],
            window_start=r["window_start"],
            window_end=r["window_end"],
            overdue=r["window_end"] < today,
        )
        for r in rows
    )
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for r in scoped.values("patient__study_site_id", "state").annotate(n=Count("pk")).order_by():
        counts[r["patient__study_site_id"]][r["state"]] = r["n"]
    by_site = {
        site: SiteVisitCounts(
            planned=c.get("planned", 0),
            done=c.get("done", 0),
            missed=c.get("missed", 0),
            not_applicable=c.get("na", 0),
        )
        for site, c in counts.items()
    }
    return visits, by_site


def _events(viewer, patient_ids):
    return tuple(
        Event(*row)
        for row in AdverseEvent.objects.for_user(viewer)
        .filter(patient_id__in=patient_ids)
        .order_by("patient_id", "onset_on", "pk")
        .values_list("patient_id", "term__term", "term__soc", "grade", "onset_on", "dlt")
    )


def _fmt_gy(value) -> str:
    return f"{value.normalize():f}"


def _courses(viewer, patient_ids, shows_arms: bool):
    delivered = Q(fraction_log__status=Fraction.Status.DELIVERED)
    courses = list(
        RadiotherapyCourse.objects.for_user(viewer)
        .filter(patient_id__in=patient_ids)
        .annotate(
            delivered=Count("fraction_log", filter=delivered, distinct=True),
            first_day=Min("fraction_log__day", filter=delivered),
            last_day=Max("fraction_log__day", filter=delivered),
        )
        .order_by("patient__study_site_id", "patient__subject_id", "number")
        .values(
            "pk",
            "patient_id",
            "patient__study_site_id",
            "patient__subject_id",
            "number",
            "delivered",
            "first_day",
            "last_day",
        )
    )
    course_ids = [c["pk"] for c in courses]
    deviations = ProtocolDeviation.objects.filter(course_id__in=course_ids)
    if not shows_arms:
        deviations = deviations.filter(arm_revealing=False)
    by_course: dict[int, list[str]] = defaultdict(list)
    for course_id, message in deviations.order_by("course_id", "rule").values_list(
        "course_id", "message"
    ):
        by_course[course_id].append(message)
    prescriptions: dict[int, list[str]] = defaultdict(list)
    if shows_arms:
        for course_id, label, dose, fractions in (
            Prescription.objects.filter(course_id__in=course_ids)
            .order_by("course_id", "lesion__label")
            .values_list("course_id", "lesion__label", "total_dose_gy", "fractions")
        ):
            prescriptions[course_id].append(f"{label} {_fmt_gy(dose)} Gy / {fractions}")
    return tuple(
        CourseRow(
            site_id=c["patient__study_site_id"],
            patient_id=c["patient_id"],
            subject=c["patient__subject_id"] or f"#{c['patient_id']}",
            number=c["number"],
            first_fraction=c["first_day"],
            last_fraction=c["last_day"] if shows_arms else None,
            delivered_fractions=c["delivered"] if shows_arms else None,
            prescriptions=tuple(prescriptions.get(c["pk"], ())),
            deviations=tuple(by_course.get(c["pk"], ())),
        )
        for c in courses
    )


def _gather(viewer, study, study_sites, *, kind: str, shows_arms: bool, period: str, now):
    zone = _study_zone(study)
    local = timezone.localtime(now or timezone.now(), zone)
    today = local.date()
    site_ids = [ss.pk for ss in study_sites]
    patients = _patients(viewer, site_ids, shows_arms)
    patient_ids = [p.pk for p in patients]
    visits, visit_counts = _visits(viewer, patient_ids, today)
    arms = ()
    if shows_arms:
        arms = tuple(
            Arm.objects.filter(study=study).order_by("code").values_list("name", flat=True)
        )
    return ReportData(
        kind=kind,
        study=_study_info(study),
        sites=tuple(_site_info(ss) for ss in study_sites),
        shows_arms=shows_arms,
        arms=arms,
        viewer=(viewer.get_full_name() or viewer.get_username()) if viewer else "",
        period=period,
        generated_at=local,
        today=today,
        patients=patients,
        visits=visits,
        visit_counts=visit_counts,
        events=_events(viewer, [p.pk for p in patients if p.enrolled_on is not None]),
        courses=_courses(viewer, patient_ids, shows_arms),
    )


class ReportNotAllowed(Exception):  # noqa: N818 - the viewer may not read this report
    pass


def site_report_data(viewer, study_site_id: int, *, period: str = "", now=None) -> ReportData:
    """A site's report as ``viewer`` may see it (raises ReportNotAllowed otherwise)."""
    study_site = (
        StudySite.objects.for_user(viewer)
        .select_related("study", "site")
        .filter(pk=study_site_id)
        .first()
    )
    if study_site is None or not may_read_site_report(viewer, study_site.study_id, study_site.pk):
        raise ReportNotAllowed
    study = study_site.study
    shows_arms = sees_allocation(viewer, study, study_site.pk)
    return _gather(
        viewer, study, [study_site], kind=SITE, shows_arms=shows_arms, period=period, now=now
    )


def study_report_data(viewer, study_id: int, *, period: str = "", now=None) -> ReportData:
    """The study report (every site) as ``viewer`` may see it."""
    study = Study.objects.for_user(viewer).filter(pk=study_id).first()
    if study is None or not may_read_study_report(viewer, study.pk):
        raise ReportNotAllowed
    sites = list(
        StudySite.objects.for_user(viewer)
        .filter(study=study)
        .select_related("site")
        .order_by("number")
    )
    shows_arms = sees_allocation(viewer, study, None)
    return _gather(viewer, study, sites, kind=STUDY, shows_arms=shows_arms, period=period, now=now)


# --- recipients of scheduled reports -----------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    user_id: int
    email: str
    language: str
    kind: str  # SITE or STUDY
    study_site_id: int | None


def report_recipients(study_id: int) -> tuple[Recipient, ...]:
    """Who receives a study's scheduled reports (one query).

    Site investigators and staff (site roles) receive their site's report; sponsor roles
    (data manager, sponsor administrator, statistician) receive the study report. Active users
    with an email address only; each in their preferred language.
    """
    rows = (
        Membership.objects.active()
        .filter(study_id=study_id)
        .filter(
            Q(role__in=SITE_ROLES, study_site__isnull=False)
            | Q(role__in=SPONSOR_ROLES, study_site__isnull=True)
        )
        .exclude(user__email="")
        .order_by("study_site_id", "user_id")
        .values_list("user_id", "user__email", "user__preference__language", "study_site_id")
    )
    languages = {code for code, _name in settings.LANGUAGES}
    seen, out = set(), []
    for user_id, email, language, site_id in rows:
        kind = SITE if site_id else STUDY
        if (user_id, kind, site_id) in seen:
            continue
        seen.add((user_id, kind, site_id))
        language = language if language in languages else settings.LANGUAGE_CODE
        out.append(Recipient(user_id, email, language, kind, site_id))
    return tuple(out)
