"""Selectors for the swimmer plot and the treatment timeline (treatments/swimmer.py draws them).

Rows are built for the patients a user can see, with what the user may see of them: users blinded
to allocation (studies/blinding.py) get no arm, no study-drug cycle (a study drug reveals the arm)
and no fraction count (STOP-2: 8 Gy in 1 fraction versus SABR); SBRT is then shown as delivered,
with its dates only. The number of SQL queries does not grow with the number of patients.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date

from django.db.models import Count, Exists, Max, Min, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from patients.models import EmergencyUnblinding, Patient
from studies.blinding import sees_allocation
from treatments.models import DrugCycle, Fraction, LineAgent, RadiotherapyCourse, SystemicLine
from treatments.swimmer import CourseBar, CycleTick, LineBar, PatientRow

_DELIVERED = Q(fraction_log__status=Fraction.Status.DELIVERED)


def study_rows(
    user,
    study,
    *,
    study_site=None,
    today: date | None = None,
    url: Callable[[int], str] | None = None,
) -> tuple[PatientRow, ...]:
    """Rows of the study's patients visible to ``user`` (one study-site's if given) that have a
    day 0: enrolled, or with at least one delivered SBRT fraction."""
    patients = Patient.objects.for_user(user).filter(study_site__study=study)
    if study_site is not None:
        patients = patients.filter(study_site=study_site)
    delivered = Fraction.objects.filter(
        course__patient=OuterRef("pk"), status=Fraction.Status.DELIVERED
    )
    patients = patients.filter(Q(enrolled_on__isnull=False) | Exists(delivered))
    return _rows(user, study, patients, today=today, url=url)


def patient_row(user, patient, *, today: date | None = None) -> PatientRow | None:
    """One patient's row (the patient comes from ``get_patient_for_user``); None without day 0."""
    rows = _rows(
        user,
        patient.study_site.study,
        Patient.objects.for_user(user).filter(pk=patient.pk),
        today=today,
    )
    return rows[0] if rows else None


def _rows(
    user, study, patients: QuerySet, *, today: date | None, url: Callable[[int], str] | None = None
) -> tuple[PatientRow, ...]:
    today = today or timezone.localdate()
    courses = (
        RadiotherapyCourse.objects.annotate(
            delivered=Count("fraction_log", filter=_DELIVERED),
            first_day=Min("fraction_log__day", filter=_DELIVERED),
            last_day=Max("fraction_log__day", filter=_DELIVERED),
        )
        .filter(delivered__gt=0)
        .order_by("number")
    )
    lines = SystemicLine.objects.order_by("start", "line_number").prefetch_related(
        Prefetch("line_agents", queryset=LineAgent.objects.select_related("agent"))
    )
    found = list(
        patients.select_related("response", "allocation__arm").prefetch_related(
            Prefetch("courses", queryset=courses, to_attr="delivered_courses"),
            Prefetch("systemic_lines", queryset=lines, to_attr="line_list"),
        )
    )
    unblinded = _unblinded(user, study, found)
    cycles: dict[int, list[CycleTick]] = defaultdict(list)
    if unblinded:
        for cycle in (
            DrugCycle.objects.filter(patient_id__in=unblinded)
            .select_related("regimen__agent")
            .order_by("planned_on", "number")
        ):
            given = cycle.given_on is not None and cycle.status != DrugCycle.Status.OMITTED
            cycles[cycle.patient_id].append(
                CycleTick(
                    number=cycle.number,
                    day=cycle.given_on or cycle.planned_on,
                    agent=cycle.regimen.agent.name,
                    given=given,
                )
            )
    rows = []
    for patient in found:
        sees = patient.pk in unblinded
        course_bars = tuple(
            CourseBar(
                number=c.number,
                first=c.first_day,
                last=c.last_day,
                fractions=c.delivered if sees else None,
            )
            for c in patient.delivered_courses
        )
        origin = patient.enrolled_on or min((c.first for c in course_bars), default=None)
        if origin is None:
            continue
        rows.append(
            _row(
                patient,
                origin,
                today,
                arm=_arm(patient) if sees else "",
                blinded=not sees,
                courses=course_bars,
                cycles=tuple(cycles.get(patient.pk, ())),
                url=url(patient.pk) if url else "",
            )
        )
    return tuple(rows)


def _row(patient, origin: date, today: date, **extra) -> PatientRow:
    off_study = patient.status in (Patient.Status.OFF_STUDY, Patient.Status.SCREEN_FAILURE)
    death = None
    if patient.off_study_reason == Patient.OffStudyReason.DEATH:
        death = patient.status_changed_on
    response = getattr(patient, "response", None)
    last = (patient.status_changed_on or origin) if off_study else max(today, origin)
    return PatientRow(
        patient_id=patient.pk,
        label=patient.subject_id or str(patient),
        origin=origin,
        last=last,
        ongoing=not off_study,
        lines=tuple(
            LineBar(
                number=line.line_number,
                start=line.start,
                end=line.end,
                agents=tuple(sorted(la.agent.name for la in line.line_agents.all())),
                stop_reason=line.get_stop_reason_display() if line.stop_reason else "",
            )
            for line in patient.line_list
        ),
        progression=response.progression_on if response is not None else None,
        death=death,
        **extra,
    )


def _arm(patient) -> str:
    allocation = getattr(patient, "allocation", None)
    return allocation.arm.name if allocation is not None else ""


def _unblinded(user, study, patients: list) -> set[int]:
    """Patients whose allocation ``user`` may see: per site through the user's memberships, and
    through the user's own emergency unblindings (one query for all, as sees_allocation would
    ask patient by patient)."""
    by_site: dict[int, bool] = {}
    unblinded, ask = set(), []
    for patient in patients:
        site = patient.study_site_id
        if site not in by_site:
            by_site[site] = sees_allocation(user, study, site)
        (unblinded.add if by_site[site] else ask.append)(patient.pk)
    if ask:
        unblinded.update(
            EmergencyUnblinding.objects.filter(patient_id__in=ask, requested_by=user).values_list(
                "patient_id", flat=True
            )
        )
    return unblinded
