"""Edit checks: automatic queries that open themselves and close when the data is corrected.

Each check is a small function over a patient's data already fetched (:class:`PatientData`,
plain dataclasses, no queries) returning :class:`Finding` rows, each keyed by the check and the
row it is about (``lab-range:<lab pk>``...).  :func:`edit_checks_sync` reads the data in one SQL
query whatever the size of the record, runs every check, opens a query for each new finding and
closes, with "Resolved: data corrected", each automatic query whose finding is gone.  Services
call it at the end of their transaction: ``visits_sync`` (after labs, scans, SBRT courses and
status changes) and ``ae_record``.

Most of these rules are also refused at entry; the checks catch data that reached the database
by another path (the admin, an import, a rule changed after entry) or drifted out of step.

A finding whose last query was closed by a person (a monitor accepting the data as it is) is not
raised again; one whose last query was closed by the check itself (the data was corrected, then
broken again) is.  Messages are written in the site's default language (``LANGUAGE_CODE``),
whoever saved the data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from patients import labunits
from patients.models import Patient
from patients.models_dm import DataQuery, FormKind, QueryMessage
from patients.models_safety import Analyte
from patients.models_visits import PlannedVisit
from studies.models import VisitDefinition
from treatments.models import Fraction


@dataclass(frozen=True)
class Finding:
    check_key: str
    form_kind: str
    object_id: int
    field: str
    message: str


@dataclass(frozen=True)
class Lab:
    pk: int
    analyte: str
    value_standard: Decimal
    standard_unit: str
    sampled_on: date


@dataclass(frozen=True)
class Scan:
    pk: int
    scan_date: date


@dataclass(frozen=True)
class ImagingVisit:
    name: str
    occurrence: int
    window_start: date
    window_end: date
    done_form: str  # "scan:<pk>" when a scan fulfils it


@dataclass(frozen=True)
class Event:
    pk: int
    term: str
    grade: int
    death_on: date | None


@dataclass(frozen=True)
class Course:
    pk: int
    number: int
    planned_fractions: int | None  # the most fractions prescribed to a lesion of the course
    delivered: int
    first_day: date | None
    last_day: date | None
    max_overall_days: int | None  # the study's constraint


@dataclass(frozen=True)
class PatientData:
    labs: tuple[Lab, ...] = ()
    scans: tuple[Scan, ...] = ()  # follow-up scans (not the baseline)
    imaging_visits: tuple[ImagingVisit, ...] = ()  # planned imaging visits that apply
    events: tuple[Event, ...] = ()  # grade 5 adverse events
    courses: tuple[Course, ...] = ()


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


# --- the checks --------------------------------------------------------------------------------


def lab_out_of_plausible_range(data: PatientData) -> Iterator[Finding]:
    """A value outside :data:`patients.labunits.PLAUSIBLE` (standard unit): a typo or a unit
    mix-up, e.g. lymphocytes above 100 x 10^9/L, haemoglobin above 25 g/dL."""
    for lab in data.labs:
        bounds = labunits.PLAUSIBLE.get(lab.analyte)
        if bounds is None or lab.standard_unit != labunits.standard_unit(lab.analyte):
            continue
        low, high = bounds
        if low <= lab.value_standard <= high:
            continue
        yield Finding(
            f"lab-range:{lab.pk}",
            FormKind.LAB,
            lab.pk,
            "value",
            _(
                "%(analyte)s of %(date)s is %(value)s %(unit)s, outside the plausible range "
                "%(low)s to %(high)s %(unit)s: check the value and its unit."
            )
            % {
                "analyte": Analyte(lab.analyte).label,
                "date": lab.sampled_on.isoformat(),
                "value": _number(lab.value_standard),
                "unit": lab.standard_unit,
                "low": _number(low),
                "high": _number(high),
            },
        )


def _window(visit: ImagingVisit) -> dict[str, object]:
    return {
        "visit": visit.name,
        "occurrence": visit.occurrence,
        "start": visit.window_start.isoformat(),
        "end": visit.window_end.isoformat(),
    }


def _distance(visit: ImagingVisit, day: date) -> int:
    if day < visit.window_start:
        return (visit.window_start - day).days
    return max((day - visit.window_end).days, 0)


def scan_outside_window(data: PatientData) -> Iterator[Finding]:
    """A follow-up scan outside the window of the imaging visit it fulfils, or outside the
    window of every planned imaging visit (nothing to check when none is planned)."""
    visits = data.imaging_visits
    if not visits:
        return
    fulfilled = {v.done_form: v for v in visits if v.done_form.startswith("scan:")}
    for scan in data.scans:
        day = scan.scan_date
        visit = fulfilled.get(f"scan:{scan.pk}")
        if visit is not None:
            if visit.window_start <= day <= visit.window_end:
                continue
            message = _(
                "The scan of %(date)s records the visit %(visit)s (#%(occurrence)s) but is "
                "outside its window, %(start)s to %(end)s: check the scan date."
            )
        elif any(v.window_start <= day <= v.window_end for v in visits):
            continue
        else:
            visit = min(visits, key=lambda v: (_distance(v, day), v.window_start))
            message = _(
                "The scan of %(date)s is outside the window of every planned imaging visit (the "
                "nearest: %(visit)s #%(occurrence)s, %(start)s to %(end)s): check the scan date, "
                "or say why the scan was not scheduled."
            )
        yield Finding(
            f"scan-window:{scan.pk}",
            FormKind.ASSESSMENT,
            scan.pk,
            "scan_date",
            message % {"date": day.isoformat(), **_window(visit)},
        )


def death_without_date(data: PatientData) -> Iterator[Finding]:
    """A grade 5 adverse event (death, CTCAE v5.0) needs the date of death."""
    for event in data.events:
        if event.grade == 5 and event.death_on is None:
            yield Finding(
                f"ae-death-date:{event.pk}",
                FormKind.AE,
                event.pk,
                "death_on",
                _("%(term)s is grade 5 (death) but has no date of death: give the date.")
                % {"term": event.term},
            )


def sbrt_overall_time(data: PatientData) -> Iterator[Finding]:
    """A course whose fractions are all delivered over more days than the study allows
    (first to last delivered fraction, inclusive)."""
    for course in data.courses:
        limit, planned = course.max_overall_days, course.planned_fractions
        if not limit or not planned or course.delivered < planned or course.first_day is None:
            continue
        days = (course.last_day - course.first_day).days + 1
        if days <= limit:
            continue
        yield Finding(
            f"sbrt-overall-time:{course.pk}",
            FormKind.COURSE,
            course.pk,
            "",
            _(
                "SBRT course %(number)s was delivered over %(days)s days, more than the "
                "protocol's %(limit)s days: check the fraction dates."
            )
            % {"number": course.number, "days": days, "limit": limit},
        )


CHECKS: tuple[Callable[[PatientData], Iterable[Finding]], ...] = (
    lab_out_of_plausible_range,
    scan_outside_window,
    death_without_date,
    sbrt_overall_time,
)


def run_checks(data: PatientData) -> dict[str, Finding]:
    """Every finding of every check, by key (the first one wins a repeated key)."""
    findings: dict[str, Finding] = {}
    for check in CHECKS:
        for finding in check(data):
            findings.setdefault(finding.check_key, finding)
    return findings


# --- fetching (one query) ----------------------------------------------------------------------

# Each column is a jsonb array of rows: the checks' inputs, then the patient's live automatic
# queries (id, key) and the keys whose last query a person closed (the data was accepted).
_FETCH_SQL = """
SELECT
  (SELECT coalesce(jsonb_agg(jsonb_build_array(l.id, l.analyte, l.value_standard::text,
                                               l.standard_unit, l.sampled_on) ORDER BY l.id), '[]')
     FROM patients_labresult l WHERE l.patient_id = %(patient)s),
  (SELECT coalesce(jsonb_agg(jsonb_build_array(a.id, a.scan_date) ORDER BY a.id), '[]')
     FROM lesions_imagingassessment a WHERE a.patient_id = %(patient)s AND NOT a.is_baseline),
  (SELECT coalesce(jsonb_agg(jsonb_build_array(d.name, v.occurrence, v.window_start,
                                               v.window_end, v.done_form)
                             ORDER BY v.window_start, v.id), '[]')
     FROM patients_plannedvisit v JOIN studies_visitdefinition d ON d.id = v.definition_id
     WHERE v.patient_id = %(patient)s AND d.kind = %(imaging)s AND v.state <> %(na)s),
  (SELECT coalesce(jsonb_agg(jsonb_build_array(e.id, t.term, e.grade, e.death_on)
                             ORDER BY e.id), '[]')
     FROM patients_adverseevent e JOIN patients_ctcaeterm t ON t.id = e.term_id
     WHERE e.patient_id = %(patient)s AND e.grade = 5),
  (SELECT coalesce(jsonb_agg(jsonb_build_array(c.id, c.number,
       (SELECT max(pr.fractions) FROM treatments_prescription pr WHERE pr.course_id = c.id),
       f.delivered, f.first_day, f.last_day, r.max_overall_days) ORDER BY c.id), '[]')
     FROM treatments_radiotherapycourse c
     JOIN patients_patient p ON p.id = c.patient_id
     JOIN studies_studysite ss ON ss.id = p.study_site_id
     LEFT JOIN treatments_sbrtconstraint r ON r.study_id = ss.study_id
     CROSS JOIN LATERAL (SELECT count(*) AS delivered, min(fr.day) AS first_day,
                                max(fr.day) AS last_day
                         FROM treatments_fraction fr
                         WHERE fr.course_id = c.id AND fr.status = %(delivered)s) f
     WHERE c.patient_id = %(patient)s),
  (SELECT coalesce(jsonb_agg(jsonb_build_array(q.id, q.check_key) ORDER BY q.id), '[]')
     FROM patients_dataquery q
     WHERE q.patient_id = %(patient)s AND q.origin = %(auto)s AND q.check_key <> ''
       AND q.status IN (%(open)s, %(answered)s)),
  (SELECT coalesce(jsonb_agg(last.check_key), '[]') FROM (
     SELECT DISTINCT ON (q.check_key) q.check_key, m.author_id
     FROM patients_querymessage m JOIN patients_dataquery q ON q.id = m.query_id
     WHERE q.patient_id = %(patient)s AND q.origin = %(auto)s AND q.check_key <> ''
       AND m.action = %(close)s
     ORDER BY q.check_key, m.created_at DESC, m.id DESC) last
   WHERE last.author_id IS NOT NULL)
"""


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@dataclass(frozen=True)
class _Fetched:
    data: PatientData
    live: dict[str, int]  # check key -> pk of its live automatic query
    accepted: frozenset[str]  # keys whose last query was closed by a person


def _fetch(patient_id: int) -> _Fetched:
    params = {
        "patient": patient_id,
        "imaging": VisitDefinition.Kind.IMAGING,
        "na": PlannedVisit.State.NOT_APPLICABLE,
        "delivered": Fraction.Status.DELIVERED,
        "auto": DataQuery.Origin.AUTO,
        "open": DataQuery.Status.OPEN,
        "answered": DataQuery.Status.ANSWERED,
        "close": QueryMessage.Action.CLOSE,
    }
    with connection.cursor() as cursor:
        cursor.execute(_FETCH_SQL, params)
        # Django's PostgreSQL backend hands jsonb over as text.
        row = [json.loads(c) if isinstance(c, str) else c for c in cursor.fetchone()]
    labs, scans, visits, events, courses, live, accepted = row
    data = PatientData(
        labs=tuple(Lab(pk, a, Decimal(v), u, _day(d)) for pk, a, v, u, d in labs),
        scans=tuple(Scan(pk, _day(d)) for pk, d in scans),
        imaging_visits=tuple(
            ImagingVisit(name, n, _day(start), _day(end), done)
            for name, n, start, end, done in visits
        ),
        events=tuple(Event(pk, term, grade, _day(death)) for pk, term, grade, death in events),
        courses=tuple(
            Course(pk, number, planned, delivered, _day(first), _day(last), limit)
            for pk, number, planned, delivered, first, last, limit in courses
        ),
    )
    return _Fetched(data, {key: pk for pk, key in live}, frozenset(accepted))


def patient_data(patient: Patient) -> PatientData:
    """What the checks read of the patient (one query)."""
    return _fetch(patient.pk).data


# --- keeping the automatic queries in step -----------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    opened: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()


def _plan(fetched: _Fetched) -> tuple[list[Finding], list[str]]:
    """(findings to open a query for, live keys whose finding is gone)."""
    with translation.override(settings.LANGUAGE_CODE):
        findings = run_checks(fetched.data)
    new = [
        f for key, f in findings.items() if key not in fetched.live and key not in fetched.accepted
    ]
    gone = [key for key in fetched.live if key not in findings]
    return new, gone


def _open(patient: Patient, findings: list[Finding], now) -> None:
    queries = DataQuery.objects.bulk_create(
        DataQuery(
            patient=patient,
            form_kind=f.form_kind,
            object_id=f.object_id,
            field=f.field,
            status=DataQuery.Status.OPEN,
            origin=DataQuery.Origin.AUTO,
            check_key=f.check_key,
            opened_by=None,
            opened_at=now,
        )
        for f in findings
    )
    QueryMessage.objects.bulk_create(
        QueryMessage(query=q, action=QueryMessage.Action.OPEN, text=f.message, created_at=now)
        for q, f in zip(queries, findings, strict=True)
    )


def _close(pks: list[int], now) -> list[str]:
    """Close these automatic queries (those still live once locked); returns their keys."""
    rows = list(
        DataQuery.objects.select_for_update()
        .filter(pk__in=pks, status__in=(DataQuery.Status.OPEN, DataQuery.Status.ANSWERED))
        .values_list("pk", "check_key")
        .order_by("pk")
    )
    if not rows:
        return []
    DataQuery.objects.filter(pk__in=[pk for pk, _key in rows]).update(
        status=DataQuery.Status.CLOSED, closed_at=now
    )
    with translation.override(settings.LANGUAGE_CODE):
        text = _("Resolved: data corrected")
    QueryMessage.objects.bulk_create(
        QueryMessage(query_id=pk, action=QueryMessage.Action.CLOSE, text=text, created_at=now)
        for pk, _key in rows
    )
    return [key for _pk, key in rows]


def edit_checks_sync(patient: Patient) -> SyncResult:
    """Run every check on the patient; open and close automatic queries to match.

    One query when nothing changes (the usual case, on every save of the record).  Otherwise,
    in a transaction: the patient's row is locked (so two writes of the same record at once
    cannot both open the same query), the data is read again and the queries written.  Runs in
    the caller's transaction and audit context.
    """
    new, gone = _plan(_fetch(patient.pk))
    if not new and not gone:
        return SyncResult()
    with transaction.atomic(savepoint=False):  # the caller's transaction: no savepoint needed
        list(Patient.objects.select_for_update().filter(pk=patient.pk).values_list("pk"))
        fetched = _fetch(patient.pk)
        new, gone = _plan(fetched)
        now = timezone.now()
        if new:
            _open(patient, new, now)
        closed = _close([fetched.live[key] for key in gone], now) if gone else []
    return SyncResult(opened=tuple(f.check_key for f in new), closed=tuple(closed))
