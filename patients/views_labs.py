"""Laboratory pages: a patient's results and lymphocyte chart, sample entry and correction, a
site laboratory's normal ranges, and the ATRA trial's lymphopenia endpoint by arm."""

from __future__ import annotations

from collections import Counter
from datetime import date

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from patients import casebook, lab_charts, lab_services, labunits, lymphopenia
from patients.lab_forms import LabCorrectionForm, LabSampleForm, NormalRangesForm
from patients.models_safety import Analyte, LabResult, NormalRange
from studies.access import require, scope_for
from studies.blinding import sees_allocation
from studies.lookups import get_patient_for_user, get_study_for_user, get_study_site_for_user
from studies.models import StudySite
from studies.roles import DATA_ENTRY_ROLES, SPONSOR_ROLES

#: Who may read the lymphopenia endpoint by arm (and only when they see allocations).
ENDPOINT_READER_ROLES = SPONSOR_ROLES  # statistician, sponsor administrator, data manager


def _problem_text(code: str) -> str:
    return {
        lab_services.NORMAL_RANGE_MISSING: _(
            "Not graded: the site's normal range (LLN) for this analyte is missing."
        ),
        lab_services.NORMAL_RANGE_INVALID: _(
            "Not graded: the site's normal range for this analyte is not usable (check its "
            "unit and lower limit)."
        ),
    }.get(code, code)


def _reason_text(reason: lymphopenia.Reason | None) -> str:
    return {
        lymphopenia.Reason.NO_SBRT: _("no delivered SBRT fraction"),
        lymphopenia.Reason.NO_SAMPLE: _("no lymphocyte count in the window"),
        lymphopenia.Reason.PENDING: _("window not closed yet, no count so far"),
    }.get(reason, "")


def _relative(day: date, sbrt: tuple[date, date] | None) -> str:
    """When a sample was taken relative to SBRT, in words."""
    if sbrt is None:
        return _("no SBRT delivered yet")
    first, last = sbrt
    if day < first:
        return _("%(n)s d before SBRT") % {"n": (first - day).days}
    if day <= last:
        return _("SBRT day %(n)s") % {"n": (day - first).days + 1}
    days = (day - last).days
    return _("end of SBRT + %(n)s d (week %(w)s)") % {"n": days, "w": days // 7}


def _can_enter(user, study_site) -> bool:
    return scope_for(user).has_role(DATA_ENTRY_ROLES, study_site.study_id, study_site.pk)


def _shows_endpoint_window(study) -> bool:
    """The endpoint window is drawn for studies whose primary endpoint is about lymphopenia."""
    return "lymphopenia" in (study.primary_endpoint or "").lower()


def _chart(patient, results: list[LabResult], sbrt: tuple[date, date] | None) -> str:
    counts = [r for r in results if r.analyte == Analyte.LYMPHOCYTES]
    if not counts:
        return ""
    origin = sbrt[0] if sbrt else counts[0].sampled_on
    points = tuple(
        lab_charts.CountPoint(
            (r.sampled_on - origin).days,
            r.value_standard,
            f"{r.sampled_on:%Y-%m-%d}: {r.value.normalize():f} {r.unit}"
            + (f", {_('grade')} {r.grade}" if r.grade is not None else ""),
        )
        for r in counts
    )
    window = None
    study = patient.study_site.study
    if sbrt and _shows_endpoint_window(study):
        rule = lab_services.lymphopenia_window(study)
        end = (sbrt[1] - origin).days + rule.day
        window = (end - rule.half_width, end + rule.half_width)
    last_lln = next((r for r in reversed(counts) if r.lln is not None), None)
    lln = None
    if last_lln is not None:
        lln = labunits.to_standard(Analyte.LYMPHOCYTES, last_lln.lln, last_lln.range_unit).value
    svg = lab_charts.lymphocyte_chart(
        points,
        _("Absolute lymphocyte count"),
        sbrt=(0, (sbrt[1] - origin).days) if sbrt else None,
        window=window,
        lln=lln,
        labels={
            "y": _("Lymphocytes (10^9/L)"),
            "x": _("Days from the first SBRT fraction") if sbrt else _("Days from the first count"),
            "sbrt": _("SBRT"),
            "window": _("Endpoint window"),
            "grade": _("Grade"),
        },
    )
    return mark_safe(svg)  # noqa: S308 - built by lab_charts, which escapes every text it draws


@require_GET
def patient_labs(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk)
    results = list(LabResult.objects.filter(patient=patient).order_by("sampled_on", "analyte"))
    sbrt = lab_services.sbrt_dates([patient.pk]).get(patient.pk)
    labels = {code: str(label) for code, label in Analyte.choices}  # translated once
    rows = [
        {
            "result": r,
            "date": casebook.short_date(r.sampled_on),
            "analyte": labels.get(r.analyte, r.analyte),
            "edit_url": casebook.patient_url("lab_edit", "lab_pk", patient.pk, r.pk),
            "when": _relative(r.sampled_on, sbrt),
            "problem": _problem_text(r.grade_problem) if r.grade_problem else "",
        }
        for r in results
    ]
    problems = sorted({_label_of(r.analyte) for r in results if r.grade_problem})
    return render(
        request,
        "patients/patient_labs.html",
        {
            "patient": patient,
            "rows": rows,
            "sbrt": sbrt,
            "worst": lab_services.worst_grades(results, sbrt),
            "periods": [_("Baseline"), _("During SBRT"), _("After SBRT")],
            "problem_analytes": problems,
            "chart": _chart(patient, results, sbrt),
            "can_enter": _can_enter(request.user, patient.study_site),
        },
    )


def _label_of(analyte: str) -> str:
    return str(Analyte(analyte).label)


def _apply_errors(form, error: ValidationError, field_for) -> None:
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for key, errors in error.error_dict.items():
        form.add_error(field_for(key), errors)


@require_http_methods(["GET", "POST"])
def lab_new(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk, write=True)
    units = dict(
        NormalRange.objects.filter(study_site_id=patient.study_site_id).values_list(
            "analyte", "unit"
        )
    )
    form = LabSampleForm(request.POST or None, units=units)
    if request.method == "POST" and form.is_valid():
        try:
            lab_services.lab_record(
                patient=patient,
                by=request.user,
                sampled_on=form.cleaned_data["sampled_on"],
                results=form.rows(),
            )
        except ValidationError as error:
            _apply_errors(form, error, form.field_for)
        else:
            messages.success(request, _("Laboratory results saved."))
            return redirect("patient_labs", patient_pk=patient.pk)
    return render(
        request, "patients/lab_form.html", {"patient": patient, "form": form, "result": None}
    )


@require_http_methods(["GET", "POST"])
def lab_edit(request: HttpRequest, patient_pk: int, lab_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk, write=True)
    result = LabResult.objects.filter(patient=patient, pk=lab_pk).first()
    if result is None:
        raise Http404
    form = LabCorrectionForm(request.POST or None, result=result)
    if request.method == "POST" and form.is_valid():
        try:
            lab_services.lab_record(
                patient=patient,
                by=request.user,
                sampled_on=form.cleaned_data["sampled_on"],
                results=[form.row()],
                reason=form.cleaned_data["reason"],
                lab=result,
            )
        except ValidationError as error:
            _apply_errors(form, error, form.field_for)
        else:
            messages.success(request, _("Laboratory result corrected."))
            return redirect("patient_labs", patient_pk=patient.pk)
    return render(
        request, "patients/lab_form.html", {"patient": patient, "form": form, "result": result}
    )


class _RowErrors(Exception):
    def __init__(self, errors: dict[str, ValidationError]) -> None:
        super().__init__("normal range errors")
        self.errors = errors


def _save_ranges(request, study_site: StudySite, form: NormalRangesForm) -> int:
    """Save every changed row in one transaction; any refusal rolls all of them back."""
    errors: dict[str, ValidationError] = {}
    rows = form.changed_rows()
    with transaction.atomic():
        for analyte, lln, uln, unit in rows:
            try:
                lab_services.normal_range_save(
                    study_site=study_site,
                    analyte=analyte,
                    lln=lln,
                    uln=uln,
                    unit=unit,
                    by=request.user,
                    reason=form.cleaned_data.get("reason", ""),
                )
            except ValidationError as error:
                errors[analyte] = error
        if errors:
            raise _RowErrors(errors)
    return len(rows)


@require_http_methods(["GET", "POST"])
def normal_ranges(request: HttpRequest, site_pk: int) -> HttpResponse:
    study_site = get_study_site_for_user(request.user, site_pk)
    can_edit = _can_enter(request.user, study_site)
    if request.method == "POST":
        require(can_edit)
    ranges = {r.analyte: r for r in NormalRange.objects.filter(study_site=study_site)}
    form = NormalRangesForm(request.POST or None, ranges=ranges)
    if request.method == "POST" and form.is_valid():
        try:
            saved = _save_ranges(request, study_site, form)
        except _RowErrors as failed:
            for analyte, error in failed.errors.items():
                _apply_errors(form, error, lambda key, a=analyte: form.field_for(a, key))
        else:
            if saved:
                messages.success(
                    request, _("Normal ranges saved; results of the changed analytes re-graded.")
                )
            else:
                messages.info(request, _("Nothing changed."))
            return redirect("normal_ranges", site_pk=study_site.pk)
    rows = [{"analyte": label, "range": ranges.get(analyte)} for analyte, label in Analyte.choices]
    return render(
        request,
        "patients/normal_ranges.html",
        {"study_site": study_site, "form": form, "rows": rows, "can_edit": can_edit},
    )


def _percent(rate) -> str:
    return "—" if rate is None else f"{float(rate) * 100:.1f} %"


def _p(value) -> str:
    number = float(value)
    return "< 0.0001" if number < 0.0001 else f"{number:.4f}"


def _reasons(endpoints) -> str:
    """'2 no lymphocyte count in the window, 1 no delivered SBRT fraction'."""
    counts = Counter(_reason_text(e.reason) for e in endpoints)
    return ", ".join(f"{n} {text}" for text, n in counts.most_common())


def _endpoint_row(endpoint: lymphopenia.Endpoint) -> dict:
    count = endpoint.count
    return {
        "patient": endpoint.patient.key,
        "endpoint": endpoint,
        "reason": _reason_text(endpoint.reason),
        "days": (count.sampled_on - endpoint.patient.sbrt_end).days if count else None,
    }


def may_read_lymphopenia(user, study) -> bool:
    """The endpoint by arm: sponsor-wide roles who see allocation (never site staff)."""
    return scope_for(user).has_role(ENDPOINT_READER_ROLES, study.pk) and sees_allocation(
        user, study, None
    )


@require_GET
def study_lymphopenia(request: HttpRequest, study_pk: int) -> HttpResponse:
    study = get_study_for_user(request.user, study_pk)
    require(may_read_lymphopenia(request.user, study))
    summary = lab_services.lymphopenia_summary(study, request.user)
    names = dict(study.arms.values_list("code", "name"))
    arms = [
        {
            "code": arm.arm,
            "name": names.get(arm.arm, arm.arm),
            "summary": arm,
            "rate": _percent(arm.rate),
            "not_evaluable": arm.not_evaluable,
            "reasons": _reasons(arm.not_evaluable),
            "patients": [_endpoint_row(e) for e in arm.endpoints],
        }
        for arm in summary.arms
    ]
    comparison = summary.comparison
    run_in = [_endpoint_row(e) for e in summary.run_in]
    return render(
        request,
        "patients/study_lymphopenia.html",
        {
            "study": study,
            "summary": summary,
            "arms": arms,
            "comparison": comparison,
            "experimental_name": names.get(comparison.experimental) if comparison else "",
            "control_name": names.get(comparison.control) if comparison else "",
            "p_one_sided": _p(comparison.p_one_sided)
            if comparison and comparison.directional
            else "",
            "p_two_sided": _p(comparison.p_two_sided) if comparison else "",
            "sections": [
                *({"title": a["name"], "rows": a["patients"]} for a in arms),
                *(
                    [{"title": _("Safety run-in (not in the comparison)"), "rows": run_in}]
                    if run_in
                    else []
                ),
            ],
            "window_from": summary.window.day - summary.window.half_width,
            "window_to": summary.window.day + summary.window.half_width,
        },
    )
