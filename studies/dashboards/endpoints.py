"""The endpoints of the study dashboard, computed live from the data (never stored).

``study_endpoints`` reads the follow-up of the patients the selector passes (the viewer's scope)
in a fixed number of queries, one per kind of row.  A patient's arm is known here only when the
selector loaded it, for by-arm viewers; everyone else's groups pool all patients.

* Time to next systemic therapy and PFS-NEST: the engine ``treatments/lines.py``, fed exactly as
  ``treatments.line_services.patient_endpoints`` feeds it for the patient page (origin = first
  delivered SBRT fraction; last contact = the latest of the last fraction, last scan, status
  date and line dates; progressions = the RECIST progression and lines stopped for
  progression), except that a death recorded on an adverse event (``AdverseEvent.death_on``)
  counts as well as an off-study death, whichever is first.
* PFS at 6 months (STEREOSARC): from enrolment (the randomisation day: ``patient_enrol`` sets
  both) to RECIST progression (``PatientResponse.progression_on``) or death, whichever first;
  without either, censored at the last imaging assessment (US FDA, "Clinical Trial Endpoints
  for the Approval of Cancer Drugs and Biologics", 2018: PFS is censored at the last adequate
  tumour assessment), or at day 0 without one.  The rate is the Kaplan-Meier S(183 days)
  (6 months = 182.6 days, rounded up) with its 95 % log-log interval.
* Lymphopenia at 6 weeks (ATRA-SBRT): ``patients/lymphopenia.py`` (window from the study's
  ``SafetyRules``), with Fisher's exact test (``patients/stats.py``) for the two-arm view; the
  rate's 95 % interval is Clopper-Pearson (exact binomial).
* Kaplan-Meier estimates: ``studies/dashboards/km.py``.
A patient whose dates contradict each other (the engine refuses them) is left out and counted.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date

from django.db.models import Max, Min
from django.utils.translation import gettext as _
from scipy import stats as scipy_stats

from lesions.models import ImagingAssessment, PatientResponse
from patients import lymphopenia
from patients.models import AdverseEvent, Allocation
from patients.models_safety import Analyte, LabResult
from studies.dashboards import km
from studies.models import Study
from treatments import lines
from treatments.models import Fraction, SystemicLine

TTNT = "ttnt"
PFS6 = "pfs6"
PFS_NEST = "pfs_nest"
LYMPHOPENIA = "lymphopenia"
ENDPOINT_ORDER = (TTNT, PFS6, PFS_NEST, LYMPHOPENIA)

#: The primary endpoint(s) of each seed study, by study code.  Registry pages in
#: /work/shared/seeds/ (transcribed in studies/seed_data.py):
#: 000 GETUG-StORM-01 (NCT04299646) has no outcome section; its brief summary's aim is to "delay
#:     subsequent systemic treatment" (SBRT "to prolong ongoing systemic treatment and delay
#:     further lines"), hence time to next systemic therapy (as treatments/lines.py reads it);
#: 001 StORM-01 randomised follow-up: no endpoint stated; same summary and aim as 000 (assumed);
#: 002 STEREOSARC (NCT03548428): "progression-free survival (PFS) rate at 6 months";
#: 003 SBRT +/- ATRA (NCT06439888), part II: "the rate of patients with lymphopenia of grade 2
#:     or higher at 6 weeks post-radiotherapy";
#: 004 STOP-2 (NCT06918951): "Progression-free survival on next line systemic therapy (PFS-NEST)".
PRIMARY_ENDPOINTS: dict[str, tuple[str, ...]] = {
    "STORM-01": (TTNT,),
    "STORM-01-R": (TTNT,),
    "STEREOSARC": (PFS6,),
    "ATRA-SBRT": (LYMPHOPENIA,),
    "STOP-2": (PFS_NEST,),
}

DAYS_PER_MONTH = 30.4375  # 365.25 / 12
PFS_LANDMARK_DAYS = 183  # 6 months = 182.6 days
LANDMARK_MONTHS = (3, 6, 12, 24)


@dataclass(frozen=True)
class PatientRow:
    """One patient of the viewer's scope, as the dashboard reads it."""

    pk: int
    site_id: int
    enrolled_on: date | None
    outcome: str
    declined_reason: str
    status_changed_on: date | None
    off_study_death: date | None
    arm_code: str | None = None  # by-arm viewers only
    arm_name: str | None = None
    part: str | None = None


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _months(days: float | None) -> str:
    return "—" if days is None else f"{days / DAYS_PER_MONTH:.1f}"


@dataclass(frozen=True)
class Landmark:
    months: int
    estimate: km.Estimate

    @property
    def days(self) -> int:
        return round(self.estimate.time)

    @property
    def survival_text(self) -> str:
        return _pct(self.estimate.survival)

    @property
    def ci_text(self) -> str:
        e = self.estimate
        if e.survival is None or e.low is None or e.high is None:
            return "—"
        return f"{100 * e.low:.1f}–{100 * e.high:.1f} %"


@dataclass(frozen=True)
class SurvivalGroup:
    label: str
    curve: km.Curve  # times in days
    landmarks: tuple[Landmark, ...]
    highlight: Landmark | None = None  # the endpoint's own landmark (PFS at 183 days)

    @property
    def n(self) -> int:
        return self.curve.n

    @property
    def events(self) -> int:
        return self.curve.events

    @property
    def median_months(self) -> str:
        return _months(self.curve.median)

    @property
    def median_ci_months(self) -> str:
        low, high = self.curve.median_ci
        return f"{_months(low)}–{_months(high)}" if low is not None else "—"


@dataclass(frozen=True)
class RateGroup:
    label: str
    patients: int
    evaluable: int
    events: int
    pending: int
    not_evaluable: int
    provisional: int
    low: float | None = None
    high: float | None = None

    @property
    def rate_text(self) -> str:
        return _pct(self.events / self.evaluable) if self.evaluable else "—"

    @property
    def ci_text(self) -> str:
        if self.low is None or self.high is None:
            return "—"
        return f"{100 * self.low:.1f}–{100 * self.high:.1f} %"


SURVIVAL, RATE = "survival", "rate"


@dataclass(frozen=True)
class EndpointResult:
    key: str
    title: str
    definition: str
    primary: bool
    kind: str  # SURVIVAL or RATE
    survival: tuple[SurvivalGroup, ...] = ()
    rates: tuple[RateGroup, ...] = ()
    landmark_days: int | None = None
    not_entered: int = 0  # enrolled patients outside this analysis (e.g. no SBRT yet)
    inconsistent: int = 0  # left out: their dates contradict each other
    p_one_sided: float | None = None
    p_two_sided: float | None = None
    comparison: str = ""  # e.g. "SBRT + ATRA vs SBRT" (by-arm view only)

    @property
    def has_data(self) -> bool:
        if self.kind == SURVIVAL:
            return any(g.n for g in self.survival)
        return any(g.evaluable for g in self.rates)


# --- endpoints: the facts ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Facts:
    """One enrolled patient's follow-up, as the endpoint engines need it."""

    patient: PatientRow
    first_fraction: date | None
    last_fraction: date | None
    last_scan: date | None
    progression: date | None  # RECIST (PatientResponse)
    death: date | None
    lines: tuple[lines.SystemicLine, ...]
    counts: tuple[lymphopenia.Count, ...]

    @property
    def last_contact(self) -> date | None:
        known = [self.last_fraction, self.last_scan, self.patient.status_changed_on, self.death]
        for line in self.lines:
            known += [line.start, line.end]
        known = [value for value in known if value is not None]
        return max(known) if known else None

    @property
    def progressions(self) -> tuple[date, ...]:
        found = {
            line.end
            for line in self.lines
            if line.end is not None and line.stop_reason == lines.StopReason.PROGRESSION
        }
        if self.progression is not None:
            found.add(self.progression)
        return tuple(sorted(found))


def _facts(patients: list[PatientRow]) -> list[_Facts]:
    ids = [p.pk for p in patients]
    fractions = {
        row["course__patient_id"]: (row["first"], row["last"])
        for row in Fraction.objects.filter(
            course__patient_id__in=ids, status=Fraction.Status.DELIVERED
        )
        .values("course__patient_id")
        .annotate(first=Min("day"), last=Max("day"))
        .order_by()
    }
    scans = dict(
        ImagingAssessment.objects.filter(patient_id__in=ids)
        .values("patient_id")
        .annotate(last=Max("scan_date"))
        .order_by()
        .values_list("patient_id", "last")
    )
    progressions = dict(
        PatientResponse.objects.filter(
            patient_id__in=ids, progression_on__isnull=False
        ).values_list("patient_id", "progression_on")
    )
    deaths = dict(
        AdverseEvent.objects.filter(patient_id__in=ids, death_on__isnull=False)
        .values("patient_id")
        .annotate(first=Min("death_on"))
        .order_by()
        .values_list("patient_id", "first")
    )
    by_patient: dict[int, list[lines.SystemicLine]] = defaultdict(list)
    for patient_id, number, start, end, reason in (
        SystemicLine.objects.filter(patient_id__in=ids)
        .order_by("start", "pk")
        .values_list("patient_id", "line_number", "start", "end", "stop_reason")
    ):
        by_patient[patient_id].append(lines.SystemicLine(number, start, end, reason or None))
    counts: dict[int, list[lymphopenia.Count]] = defaultdict(list)
    for patient_id, sampled_on, value, grade in LabResult.objects.filter(
        patient_id__in=ids, analyte=Analyte.LYMPHOCYTES
    ).values_list("patient_id", "sampled_on", "value_standard", "grade"):
        counts[patient_id].append(lymphopenia.Count(sampled_on, value, grade))
    facts = []
    for p in patients:
        first, last = fractions.get(p.pk, (None, None))
        known_deaths = [d for d in (p.off_study_death, deaths.get(p.pk)) if d is not None]
        facts.append(
            _Facts(
                patient=p,
                first_fraction=first,
                last_fraction=last,
                last_scan=scans.get(p.pk),
                progression=progressions.get(p.pk),
                death=min(known_deaths, default=None),
                lines=tuple(by_patient.get(p.pk, ())),
                counts=tuple(counts.get(p.pk, ())),
            )
        )
    return facts


# --- endpoints: per patient --------------------------------------------------------------------

#: (days, event) for one patient; None: not in the analysis; ValueError: inconsistent dates.
_Outcome = tuple[int, bool] | None


def _ttnt(f: _Facts) -> _Outcome:
    if f.first_fraction is None:
        return None
    result = lines.time_to_next_line(
        f.lines, f.first_fraction, last_contact=f.last_contact, death=f.death
    )
    return result.days, result.event


def _pfs_nest(f: _Facts) -> _Outcome:
    if f.first_fraction is None:
        return None
    result = lines.pfs_nest(
        f.lines, f.first_fraction, f.progressions, last_contact=f.last_contact, death=f.death
    )
    return None if result is None else (result.days, result.event)


def _pfs(f: _Facts) -> _Outcome:
    origin = f.patient.enrolled_on
    if origin is None:
        return None
    events = [d for d in (f.progression, f.death) if d is not None]
    if events:
        day = min(events)
        if day < origin:
            raise ValueError(f"progression or death on {day} before enrolment on {origin}")
        return (day - origin).days, True
    censor = max([origin, *([f.last_scan] if f.last_scan else [])])
    return (censor - origin).days, False


SURVIVAL_RULES = {TTNT: _ttnt, PFS6: _pfs, PFS_NEST: _pfs_nest}


# --- endpoints: groups -------------------------------------------------------------------------


def _group_label(p: PatientRow, by_arm: bool) -> tuple[str, str]:
    """(sort key, label) of the patient's group: the arm for by-arm viewers, else everyone."""
    if not by_arm:
        return "", _("All patients")
    if p.arm_code is None:
        return "~", _("Not allocated")
    if p.part == Allocation.Part.RUN_IN:
        return f"{p.arm_code}~run-in", _("%(arm)s (safety run-in)") % {"arm": p.arm_name}
    return p.arm_code, p.arm_name or p.arm_code


def _landmarks(curve: km.Curve) -> tuple[Landmark, ...]:
    return tuple(
        Landmark(m, curve.at(round(m * DAYS_PER_MONTH)))
        for m in LANDMARK_MONTHS
        if curve.n and round(m * DAYS_PER_MONTH) <= max(curve.last_time, 1)
    )


def _survival_endpoint(key: str, facts: list[_Facts], by_arm: bool, primary: bool):
    rule = SURVIVAL_RULES[key]
    grouped: dict[tuple[str, str], tuple[list[int], list[bool]]] = {}
    not_entered = inconsistent = 0
    for f in facts:
        try:
            outcome = rule(f)
        except ValueError:
            inconsistent += 1
            continue
        if outcome is None:
            not_entered += 1
            continue
        times, events = grouped.setdefault(_group_label(f.patient, by_arm), ([], []))
        times.append(outcome[0])
        events.append(outcome[1])
    landmark = PFS_LANDMARK_DAYS if key == PFS6 else None
    groups = []
    for (_key, label), (times, events) in sorted(grouped.items()):
        curve = km.kaplan_meier(times, events)
        highlight = Landmark(6, curve.at(landmark)) if landmark else None
        groups.append(SurvivalGroup(label, curve, _landmarks(curve), highlight))
    title, definition = ENDPOINT_TEXTS[key]()
    return EndpointResult(
        key=key,
        title=title,
        definition=definition,
        primary=primary,
        kind=SURVIVAL,
        survival=tuple(groups),
        landmark_days=landmark,
        not_entered=not_entered,
        inconsistent=inconsistent,
    )


def _exact_ci(events: int, n: int) -> tuple[float | None, float | None]:
    """Clopper-Pearson 95 % interval of events / n."""
    if not n:
        return None, None
    ci = scipy_stats.binomtest(events, n).proportion_ci(confidence_level=0.95, method="exact")
    return float(ci.low), float(ci.high)


def _rate_group(label: str, endpoints: list[lymphopenia.Endpoint]) -> RateGroup:
    evaluable = [e for e in endpoints if e.evaluable]
    events = sum(1 for e in evaluable if e.event)
    low, high = _exact_ci(events, len(evaluable))
    return RateGroup(
        label=label,
        patients=len(endpoints),
        evaluable=len(evaluable),
        events=events,
        pending=sum(1 for e in endpoints if e.reason == lymphopenia.Reason.PENDING),
        not_evaluable=sum(1 for e in endpoints if not e.evaluable),
        provisional=sum(1 for e in endpoints if e.provisional),
        low=low,
        high=high,
    )


def _p(value) -> float | None:
    return None if value is None else float(value)


def _lymphopenia_endpoint(
    study: Study, facts: list[_Facts], by_arm: bool, primary: bool, today: date
) -> EndpointResult:
    from patients.lab_services import lymphopenia_window

    window = lymphopenia_window(study)
    data = [
        lymphopenia.PatientData(
            key=f.patient.pk,
            arm=f.patient.arm_code if by_arm else "",
            randomised=f.patient.part == Allocation.Part.RANDOMISED,
            sbrt_end=f.last_fraction,
            counts=f.counts,
        )
        for f in facts
    ]
    title, definition = ENDPOINT_TEXTS[LYMPHOPENIA]()
    result = EndpointResult(LYMPHOPENIA, title, definition, primary, RATE)
    if not by_arm or not study.is_randomised:
        endpoints = [lymphopenia.evaluate(d, window, today) for d in data]
        return replace(result, rates=(_rate_group(_("All patients"), endpoints),))
    arms = dict(study.arms.order_by("code").values_list("code", "name"))
    summary = lymphopenia.summarise(
        data, window, today, arms=list(arms), experimental=study.run_in_arm_code or None
    )
    rates = [_rate_group(arms[a.arm], list(a.endpoints)) for a in summary.arms]
    if summary.run_in:
        rates.append(_rate_group(_("Safety run-in (not compared)"), list(summary.run_in)))
    comparison = summary.comparison
    if comparison is None:
        return replace(result, rates=tuple(rates))
    return replace(
        result,
        rates=tuple(rates),
        p_one_sided=_p(comparison.p_one_sided),
        p_two_sided=_p(comparison.p_two_sided),
        comparison=f"{arms[comparison.experimental]} / {arms[comparison.control]}",
    )


def _texts_ttnt() -> tuple[str, str]:
    return _("Time to next systemic therapy"), _(
        "From the first delivered SBRT fraction to the start of the next line of systemic "
        "therapy (or death); censored at the last contact."
    )


def _texts_pfs6() -> tuple[str, str]:
    return _("Progression-free survival at 6 months"), _(
        "From enrolment to RECIST progression or death, whichever first; censored at the last "
        "imaging assessment. The rate is the Kaplan-Meier estimate at 183 days."
    )


def _texts_pfs_nest() -> tuple[str, str]:
    return _("Progression-free survival on the next line of systemic therapy (PFS-NEST)"), _(
        "From the start of the first line started on or after SBRT to progression or death; "
        "censored at the last contact. Patients without a next line do not enter it."
    )


def _texts_lymphopenia() -> tuple[str, str]:
    return _("Grade ≥ 2 lymphopenia 6 weeks after SBRT"), _(
        "Lymphocyte count closest to 6 weeks after the last delivered SBRT fraction, within the "
        "study's window; event: CTCAE v5.0 grade ≥ 2 (below 0.8 x 10^9/L). 95 % interval: "
        "Clopper-Pearson."
    )


ENDPOINT_TEXTS = {
    TTNT: _texts_ttnt,
    PFS6: _texts_pfs6,
    PFS_NEST: _texts_pfs_nest,
    LYMPHOPENIA: _texts_lymphopenia,
}


def study_endpoints(
    study: Study, patients: list[PatientRow], by_arm: bool, today: date
) -> tuple[EndpointResult, ...]:
    """The study's primary endpoint(s) first (always), then the others that have data."""
    primary = PRIMARY_ENDPOINTS.get(study.code, ())
    facts = _facts([p for p in patients if p.enrolled_on])
    order = [*primary, *(key for key in ENDPOINT_ORDER if key not in primary)]
    results = []
    for key in order:
        is_primary = key in primary
        if key == LYMPHOPENIA:
            result = _lymphopenia_endpoint(study, facts, by_arm, is_primary, today)
        else:
            result = _survival_endpoint(key, facts, by_arm, is_primary)
        if is_primary or result.has_data:
            results.append(result)
    return tuple(results)


__all__ = [
    "ENDPOINT_ORDER",
    "LYMPHOPENIA",
    "PFS6",
    "PFS_NEST",
    "PRIMARY_ENDPOINTS",
    "TTNT",
    "EndpointResult",
    "PatientRow",
    "study_endpoints",
]
