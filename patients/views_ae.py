"""Pages of adverse events (NCI CTCAE v5.0), serious adverse events, DLT and toxicity summaries.

Issue #6 parts 1, 2, 3, 6 and 7. Entry goes through patients/ae_services.py; the summaries are
computed by patients/safety_summary.py (pure) from rows read in a constant number of queries.
"""

from __future__ import annotations

import copy
from datetime import date, datetime
from functools import cache

from django.contrib import messages
from django.contrib.postgres.aggregates import JSONBAgg
from django.core.exceptions import ValidationError
from django.db.models import (
    Case,
    CharField,
    Exists,
    IntegerField,
    OuterRef,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast, Concat, JSONObject
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from patients import ae_services, safety_summary
from patients.ae_forms import AdverseEventForm, SaeReportForm
from patients.models import AdverseEvent, Allocation, CtcaeTerm, Patient, SaeReport
from studies.access import require, scope_for
from studies.blinding import sees_allocation
from studies.lookups import get_patient_for_user, get_study_for_user
from studies.models import OutboxEmail, Study
from studies.roles import DATA_ENTRY_ROLES

SEARCH_LIMIT = 25


def _apply_errors(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errs in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errs)
    else:
        form.add_error(None, error)


def _can_enter(user, patient) -> bool:
    site = patient.study_site
    return scope_for(user).has_role(DATA_ENTRY_ROLES, site.study_id, site.pk)


def _sae_queued_at() -> Subquery:
    """When the event's first SAE email was queued (its outbox row), for ``sae_clocks``."""
    key = Concat(Value("sae:"), Cast(OuterRef("pk"), output_field=CharField()), Value(":initial"))
    return Subquery(OutboxEmail.objects.filter(key=key).values("created_at")[:1])


def _reports_rows() -> Subquery:
    """The event's SAE reports as one JSON array (oldest first), for :func:`_keep_rows`."""
    reports = (
        SaeReport.objects.filter(adverse_event=OuterRef("pk"))
        .order_by()
        .values("adverse_event")
        .annotate(
            rows=JSONBAgg(
                JSONObject(
                    id="id",
                    kind="kind",
                    reported_on="reported_on",
                    narrative="narrative",
                    created_at="created_at",
                ),
                order_by=("reported_on", "pk"),
            )
        )
        .values("rows")
    )
    return Subquery(reports)


@cache
def _ae_base():
    """The event query of :func:`_get_ae` less its filter, built (resolved) once per process:
    its subqueries cost more to build than the query costs to run."""
    return (
        AdverseEvent.objects.select_related("term")
        .annotate(report_rows=_reports_rows(), sae_queued_at=_sae_queued_at())
        .order_by("pk")
    )


def _get_ae(patient, ae_pk: int) -> AdverseEvent:
    """The event with its term, its SAE reports and when its SAE clock started (the outbox
    row of its first SAE email): one query, serious or not."""
    ae = _ae_base().filter(patient=patient, pk=ae_pk).first()
    if ae is None:
        raise Http404
    _keep_rows(ae)
    return ae


def _keep_rows(ae: AdverseEvent) -> None:
    """The event's SAE reports from its ``report_rows`` (JSON), kept as if prefetched."""
    _keep_reports(
        ae,
        [
            SaeReport(
                id=row["id"],
                adverse_event=ae,
                kind=row["kind"],
                reported_on=date.fromisoformat(row["reported_on"]),
                narrative=row["narrative"],
                created_at=datetime.fromisoformat(row["created_at"]),
            )
            for row in ae.report_rows or []
        ],
    )


def _keep_reports(ae: AdverseEvent, reports: list[SaeReport]) -> None:
    """Make ``ae.sae_reports.all()`` return ``reports`` without a query, as
    ``prefetch_related`` would have (same cache, same attributes)."""
    cached = ae.sae_reports.all()
    cached._result_cache = reports
    cached._prefetch_done = True
    ae._prefetched_objects_cache = {"sae_reports": cached}


_UNREAD = object()


def _rows(patient, aes: list[AdverseEvent], rules, days=_UNREAD) -> list[dict]:
    """What the pages show of each event: grade text, acute/late (derived), the SAE clock.

    ``days``: the patient's first and last delivered fraction, if already read."""
    if days is _UNREAD:
        days = ae_services.fraction_days([patient.pk]).get(patient.pk)
    last_fraction = days[1] if days else None
    clocks = ae_services.sae_clocks(aes, rules)
    return [
        {
            "ae": ae,
            "grade_text": ae.term.grade_text(ae.grade).strip(),
            "phase": ae_services.phase_of(ae, last_fraction, rules),
            "clock": clocks.get(ae.pk),
        }
        for ae in aes
    ]


@cache
def _safety_base():
    """The query of :func:`_study_safety` less its filter, built once per process, read from
    the patient's row (its study's drug regimens and safety rules, its delivered fractions)."""
    from patients.models import SafetyRules
    from treatments.models import DrugRegimen, Fraction

    delivered = Fraction.objects.filter(
        course__patient_id=OuterRef("pk"), status=Fraction.Status.DELIVERED
    ).order_by()
    names = [f.name for f in SafetyRules._meta.concrete_fields]
    return names, (
        Patient._base_manager.annotate(
            study_drug=Exists(
                DrugRegimen.objects.filter(study_id=OuterRef("study_site__study_id"))
            ),
            first_fraction=Subquery(delivered.order_by("day").values("day")[:1]),
            last_fraction=Subquery(delivered.order_by("-day").values("day")[:1]),
        )
        .values_list(
            "study_drug",
            "first_fraction",
            "last_fraction",
            *(f"study_site__study__safety_rules__{name}" for name in names),
        )
        .order_by()
    )


def _study_safety(patient) -> tuple[object | None, bool, tuple | None]:
    """The study's safety rules (None if not set), whether it has a study drug, and the
    patient's first and last delivered SBRT fraction (None without any): one query."""
    from patients.models import SafetyRules

    names, base = _safety_base()
    study_drug, first_fraction, last_fraction, *rule_values = base.filter(pk=patient.pk)[:1][0]
    rules = SafetyRules.from_db(base.db, names, rule_values) if rule_values[0] is not None else None
    days = (first_fraction, last_fraction) if first_fraction else None
    return rules, study_drug, days


@cache
def _list_base():
    """The query of the event list less its filter, built once per process: its SAE reports
    are read with it (no second query)."""
    return (
        AdverseEvent.objects.select_related("term")
        .annotate(report_rows=_reports_rows(), sae_queued_at=_sae_queued_at())
        .order_by("onset_on", "pk")
    )


@require_GET
def patient_aes(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk)
    rules, _study_drug, days = _study_safety(patient)
    aes = list(_list_base().filter(patient=patient))
    for ae in aes:
        _keep_rows(ae)
    return render(
        request,
        "patients/patient_aes.html",
        {
            "patient": patient,
            "rows": _rows(patient, aes, rules, days),
            "rules": rules,
            "late_after_days": rules.late_after_days if rules else 90,
            "can_enter": _can_enter(request.user, patient) and patient.enrolled_on is not None,
            "now": timezone.now(),
        },
    )


@require_http_methods(["GET", "POST"])
def ae_edit(request: HttpRequest, patient_pk: int, ae_pk: int | None = None) -> HttpResponse:
    """New adverse event, or the page of one: details, SAE deadline and reports, correction."""
    patient = get_patient_for_user(request.user, patient_pk)
    can_enter = _can_enter(request.user, patient)
    ae = _get_ae(patient, ae_pk) if ae_pk is not None else None
    if request.method == "POST" or ae is None:
        require(can_enter)
    rules, study_drug, days = _study_safety(patient)
    form = None
    if can_enter:
        form = AdverseEventForm(
            request.POST or None,
            # The form works on its own copy: a refused correction leaves the page's event as is.
            instance=copy.copy(ae) if ae else None,
            editing=ae is not None,
            study_drug=study_drug,
            dlt_window_days=rules.dlt_window_days if rules else None,
            grade_text=ae.term.grade_text(ae.grade).strip() if ae else "",
        )
        if request.method == "POST" and form.is_valid():
            try:
                saved = ae_services.ae_record(
                    patient=patient,
                    by=request.user,
                    data=form.service_data(),
                    ae=ae,
                    reason=form.cleaned_data.get("reason", ""),
                )
            except ValidationError as error:
                _apply_errors(form, error)
            else:
                _saved_message(request, saved, ae, rules)
                return redirect("ae_edit", patient_pk=patient.pk, ae_pk=saved.pk)
    row = _rows(patient, [ae], rules, days)[0] if ae else None
    return render(
        request,
        "patients/ae_form.html",
        {
            "patient": patient,
            "ae": ae,
            "row": row,
            "form": form,
            "can_enter": can_enter,
            "grades": _grade_table(ae.term) if ae else [],
        },
    )


def _grade_table(term: CtcaeTerm) -> list[dict]:
    return [
        {"grade": g, "text": term.grade_text(g).strip(), "defined": term.defines(g)}
        for g in range(1, 6)
    ]


def _saved_message(request, saved: AdverseEvent, before, rules) -> None:
    if saved.serious and (before is None or not before.serious):
        hours = rules.sae_report_hours if rules else 24
        messages.warning(
            request,
            _(
                "Serious adverse event saved: the sponsor's pharmacovigilance is being emailed. "
                "Send the full SAE report within %(hours)s hours."
            )
            % {"hours": hours},
        )
    else:
        messages.success(request, _("Adverse event saved."))


@require_http_methods(["GET", "POST"])
def sae_report_new(request: HttpRequest, patient_pk: int, ae_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk, write=True)
    ae = _get_ae(patient, ae_pk)
    if not ae.serious:
        raise Http404
    form = SaeReportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            ae_services.sae_report_add(ae=ae, by=request.user, **form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("SAE report recorded."))
            return redirect("ae_edit", patient_pk=patient.pk, ae_pk=ae.pk)
    return render(
        request,
        "patients/sae_report_form.html",
        {"patient": patient, "ae": ae, "form": form, "reports": list(ae.sae_reports.all())},
    )


@require_GET
def term_search(request: HttpRequest) -> JsonResponse:
    """CTCAE v5.0 terms for the form's picker: ``?q=`` (2 characters or more) or ``?id=``.

    Reference data only (no trial data); the login is required by the middleware."""
    terms = CtcaeTerm.objects.all()
    term_id = request.GET.get("id", "")
    query = request.GET.get("q", "").strip()
    if term_id:
        if not term_id.isdigit():
            return JsonResponse([], safe=False)
        terms = terms.filter(pk=int(term_id))
    elif len(query) < 2:
        return JsonResponse([], safe=False)
    else:
        for word in query.split()[:6]:
            terms = terms.filter(term__icontains=word)
        terms = terms.annotate(
            rank=Case(
                When(term__istartswith=query, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        ).order_by("rank", "term")
    return JsonResponse(
        [
            {
                "id": term.pk,
                "term": term.term,
                "soc": term.soc,
                "other_specify": ae_services.is_other_specify(term),
                "grades": {str(g): term.grade_text(g).strip() for g in term.grades},
            }
            for term in terms[:SEARCH_LIMIT]
        ],
        safe=False,
    )


# --- the study's safety page ---------------------------------------------------------------------


def _phase_label(phase: str) -> str:
    return {
        safety_summary.ANY_TIME: _("Any time"),
        safety_summary.ACUTE: _("Acute"),
        safety_summary.LATE: _("Late"),
    }[phase]


def _by_arm(user, study: Study, site_ids: set[int]) -> bool:
    """Arms are shown to users who see the allocation at every site whose patients they see."""
    if sees_allocation(user, study, None):
        return True
    return bool(site_ids) and all(sees_allocation(user, study, sid) for sid in site_ids)


@require_GET
def study_safety(request: HttpRequest, study_pk: int) -> HttpResponse:
    user = request.user
    study = get_study_for_user(user, study_pk)
    rules = ae_services.safety_rules(study.pk)
    late_after = rules.late_after_days if rules else 90
    patients = list(
        Patient.objects.for_user(user)
        .enrolled()
        .filter(study_site__study=study)
        .select_related("allocation__arm")
    )
    by_arm = _by_arm(user, study, {p.study_site_id for p in patients})
    days = ae_services.fraction_days([p.pk for p in patients])
    info = {}
    for p in patients:
        allocation = getattr(p, "allocation", None)
        group = (allocation.arm.name if allocation else _("Not allocated")) if by_arm else ""
        info[p.pk] = safety_summary.PatientInfo(
            group=group, last_fraction_on=days.get(p.pk, (None, None))[1]
        )
    events = [
        safety_summary.Event(*row)
        for row in AdverseEvent.objects.for_user(user)
        .filter(patient_id__in=info)
        .values_list("patient_id", "term__term", "term__soc", "grade", "onset_on", "dlt")
    ]
    tables = safety_summary.toxicity_tables(
        events, info, late_after_days=late_after, by_group=by_arm
    )
    phases = [
        {
            "phase": phase,
            "label": _phase_label(phase),
            "tables": [t for t in tables if t.phase == phase],
        }
        for phase in safety_summary.PHASES
    ]
    dlt = None
    if study.design == Study.Design.RUN_IN_RANDOMISED or study.run_in_size:
        run_in = [
            p.pk
            for p in patients
            if getattr(p, "allocation", None) and p.allocation.part == Allocation.Part.RUN_IN
        ]
        dlt = safety_summary.dlt_status(
            run_in,
            events,
            run_in_size=study.run_in_size,
            stop_count=rules.dlt_stop_count if rules else None,
        )
    scope = scope_for(user)
    return render(
        request,
        "patients/study_safety.html",
        {
            "study": study,
            "phases": phases,
            "by_arm": by_arm,
            "late_after_days": late_after,
            "patients": len(patients),
            "dlt": dlt,
            "dlt_window_days": rules.dlt_window_days if rules else None,
            "partial": not scope.superuser and study.pk not in scope.all_sites_study_ids,
            "today": formats.date_format(timezone.localdate(), "SHORT_DATE_FORMAT"),
        },
    )
