"""The patient's lesions page, the baseline scan form and the follow-up scan form."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from lesions import charts, services
from lesions.forms import (
    BaselineCorrectionForm,
    BaselineFormSet,
    MeasurementForm,
    NewLesionFormSet,
    ScanForm,
)
from lesions.models import (
    ImagingAssessment,
    Lesion,
    Measurement,
    PatientResponse,
    TimepointResult,
)
from patients.models import Allocation, Patient
from studies.access import scope_for, site_q
from studies.blinding import sees_allocation
from studies.compiled import CompiledQuery
from studies.jsonrows import from_json_rows, json_rows
from studies.lookups import get_patient_for_user, get_study_for_user, get_study_site_for_user
from studies.roles import DATA_ENTRY_ROLES


def _errors(error: ValidationError) -> list[str]:
    return error.messages


@require_GET
def patient_lesions(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk)
    lesions = list(patient.lesions.order_by("category", "label"))
    scans = list(patient.assessments.select_related("result").order_by("scan_date"))
    values: dict[tuple[int, int], Measurement] = {
        (m.assessment_id, m.lesion_id): m
        for m in Measurement.objects.filter(assessment__patient=patient)
    }
    rows = [
        {"lesion": lesion, "cells": [values.get((scan.pk, lesion.pk)) for scan in scans]}
        for lesion in lesions
    ]
    response = PatientResponse.objects.filter(patient=patient).first()
    study_site = patient.study_site
    return render(
        request,
        "lesions/patient_lesions.html",
        {
            "patient": patient,
            "lesions": lesions,
            "scans": scans,
            "rows": rows,
            "response": response,
            "burden_svg": _burden_svg(scans, response),
            "has_baseline": any(s.is_baseline for s in scans),
            "can_enter": scope_for(request.user).has_role(
                DATA_ENTRY_ROLES, study_site.study_id, study_site.pk
            ),
        },
    )


def _burden_svg(scans: list[ImagingAssessment], response: PatientResponse | None) -> str:
    """The tumour-burden curve: complete sums only (a partial sum is not a burden)."""
    if response is None or response.baseline_sum_mm is None:
        return ""
    start = scans[0].scan_date
    points = [charts.Point(0, response.baseline_sum_mm)]
    for scan in scans[1:]:
        result = getattr(scan, "result", None)
        if result is not None and result.change_from_baseline_pct is not None:
            points.append(charts.Point(charts.days_between(start, scan.scan_date), result.sum_mm))
    nadir = min(p.value for p in points)
    return _safe_svg(charts.burden_curve(tuple(points), nadir, _("Sum of target diameters")))


def _safe_svg(markup: str) -> str:
    """SVG built by lesions.charts, which escapes every text it draws: safe to insert."""
    return mark_safe(markup)  # noqa: S308


@require_http_methods(["GET", "POST"])
def baseline_new(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk, write=True)
    data = request.POST or None
    form = ScanForm(data, baseline=True)
    lesions = BaselineFormSet(data, prefix="lesions")
    problems: list[str] = []
    if request.method == "POST" and form.is_valid() and lesions.is_valid():
        rows = [
            services.LesionRow(
                **{
                    k: f.cleaned_data[k]
                    for k in (
                        "label",
                        "organ",
                        "location",
                        "is_node",
                        "category",
                        "status_at_inclusion",
                        "planned_for_sbrt",
                        "diameter_mm",
                    )
                }
            )
            for f in lesions.forms
            if f.has_changed() and f.cleaned_data.get("label")
        ]
        try:
            services.baseline_record(
                patient=patient,
                by=request.user,
                rows=rows,
                scan_date=form.cleaned_data["scan_date"],
                modality=form.cleaned_data["modality"],
            )
        except ValidationError as error:
            problems = _errors(error)
        else:
            messages.success(request, _("Baseline scan saved."))
            return redirect("patient_lesions", patient_pk=patient.pk)
    return render(
        request,
        "lesions/baseline_form.html",
        {
            "patient": patient,
            "form": form,
            "lesions": lesions,
            "problems": problems,
        },
    )


def _measurement_forms(
    data, scan: ImagingAssessment | None, lesions: list[Lesion], measurements: list[Measurement]
) -> list[MeasurementForm]:
    """One form per lesion followed at this scan, from the patient's lesions and measurements
    (read once by the caller: the page's queries do not grow with lesions or scans).

    ``measurements`` carry ``scan_on``, the date of their scan.
    """
    # Targets, and the new lesions seen at earlier scans: they are followed at every later scan.
    targets = [le for le in lesions if le.category == Lesion.Category.TARGET]
    seen_new = {m.lesion_id for m in measurements if scan is None or m.scan_on <= scan.scan_date}
    new = [
        le
        for le in lesions
        if le.category == Lesion.Category.NEW and (scan is None or le.pk in seen_new)
    ]
    followed = sorted(targets, key=lambda le: le.label) + sorted(new, key=lambda le: le.label)
    saved = {}
    if scan is not None:
        saved = {m.lesion_id: m for m in measurements if m.assessment_id == scan.pk}
    previous = {}
    keys = {le.pk for le in followed}
    for m in sorted(measurements, key=lambda m: m.scan_on):
        if m.lesion_id in keys and (scan is None or m.scan_on < scan.scan_date):
            previous[m.lesion_id] = m
    # Each lesion's choice label once (``str`` translates the organ), and one queryset of the
    # targets: a form's queryset excludes its own lesion (a posted choice is validated against it).
    names = {le.pk: str(le) for le in targets}
    target_lesions = Lesion.objects.filter(pk__in=list(names))
    forms = []
    for lesion in followed:
        current = saved.get(lesion.pk)
        initial = (
            {
                "state": current.state,
                "diameter_mm": current.diameter_mm,
                "fragments_mm": current.fragments_mm,
                "coalesced_into": current.coalesced_into_id,
                "status": current.status,
            }
            if current
            else {}
        )
        form = MeasurementForm(
            data,
            prefix=f"m{lesion.pk}",
            initial=initial,
            lesion=lesion,
            previous=previous.get(lesion.pk),
            others=target_lesions.exclude(pk=lesion.pk),
        )
        # The choices from the lesions already read (the queryset validates a posted choice).
        field = form.fields["coalesced_into"]
        field.choices = [
            ("", field.empty_label),
            *((pk, name) for pk, name in names.items() if pk != lesion.pk),
        ]
        forms.append(form)
    return forms


def _lesions_query(patient_pk: int):
    """The patient's lesions, each with whether the arm of the patient reports iRECIST."""
    arm_irecist = Allocation.objects.filter(patient=OuterRef("patient")).values("arm__uses_irecist")
    return (
        Lesion.objects.filter(patient_id=patient_pk)
        .annotate(reports_irecist=Subquery(arm_irecist[:1]))
        .order_by("category", "label", "pk")
    )


def _scans_query(patient_pk: int):
    """The patient's scans, each with its measurements (JSON rows: studies/jsonrows.py)."""
    return (
        ImagingAssessment.objects.filter(patient_id=patient_pk)
        .annotate(
            measured=json_rows(Measurement.objects.filter(assessment=OuterRef("pk")).order_by("pk"))
        )
        .order_by("scan_date", "pk")
    )


# Compiled once per process (studies/compiled.py): building their SQL costs more than running it.
_LESIONS = CompiledQuery(_lesions_query)
_SCANS = CompiledQuery(_scans_query)


def _patient_imaging(patient, scan_pk: int | None):
    """The patient's lesions, scans and every measurement, the follow-up scan ``scan_pk`` (404
    if it is not one of the patient's), and whether the arm reports iRECIST: in two queries.

    The measurements carry ``scan_on``, the date of their scan."""
    lesions = _LESIONS.all(patient.pk)
    scans = _SCANS.all(patient.pk)
    measurements = []
    for scan in scans:
        scan.patient = patient
        for m in from_json_rows(Measurement, scan.measured):
            m.assessment, m.scan_on = scan, scan.scan_date
            measurements.append(m)
    scan = None
    if scan_pk is not None:
        scan = next((s for s in scans if s.pk == int(scan_pk)), None)
        if scan is None or scan.is_baseline:
            raise Http404
    irecist = bool(lesions and lesions[0].reports_irecist)
    return lesions, measurements, scans, scan, irecist


@require_http_methods(["GET", "POST"])
def scan_edit(request: HttpRequest, patient_pk: int, scan_pk: int | None = None) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk, write=True)
    data = request.POST or None
    lesions, measured, scans, scan, irecist = _patient_imaging(patient, scan_pk)
    form = ScanForm(
        data,
        instance=scan,
        has_non_targets=any(le.category == Lesion.Category.NON_TARGET for le in lesions),
        editing=scan is not None,
        irecist=irecist,
    )
    measurements = _measurement_forms(data, scan, lesions, measured)
    new_lesions = NewLesionFormSet(data, prefix="new")
    problems: list[str] = []
    if request.method == "POST" and all(f.is_valid() for f in (form, new_lesions, *measurements)):
        try:
            # The arm's iRECIST flag came with the lesions (none: the service reads it).
            flag = irecist if lesions else None
            known = {"known_lesions": lesions, "known_scans": scans, "irecist": flag}
            _save_scan(request, patient, scan, form, measurements, new_lesions, known)
        except ValidationError as error:
            problems = _errors(error)
        else:
            messages.success(request, _("Scan saved; responses recomputed."))
            return redirect("patient_lesions", patient_pk=patient.pk)
    return render(
        request,
        "lesions/scan_form.html",
        {
            "patient": patient,
            "form": form,
            "measurements": measurements,
            "new_lesions": new_lesions,
            "problems": problems,
            "scan": scan,
        },
    )


def _save_scan(request, patient, scan, form, measurements, new_lesions, known):
    """Save through the service, with what the page has read (``known``: its lesions, scans
    and iRECIST flag)."""
    services.assessment_record(
        **known,
        patient=patient,
        by=request.user,
        assessment=scan,
        scan_date=form.cleaned_data["scan_date"],
        modality=form.cleaned_data["modality"],
        non_target_status=form.cleaned_data.get("non_target_status", ""),
        new_lesions=form.cleaned_data["new_lesions"],
        reason=form.cleaned_data.get("reason", ""),
        non_target_increase=form.cleaned_data.get("non_target_increase", False),
        measurements={
            f.lesion.pk: services.MeasurementRow(
                state=f.cleaned_data["state"],
                diameter_mm=f.cleaned_data["diameter_mm"],
                fragments_mm=f.cleaned_data["fragments_mm"],
                coalesced_into=f.cleaned_data["coalesced_into"],
                status=f.cleaned_data["status"],
            )
            for f in measurements
        },
        new_lesion_rows=[
            services.NewLesionRow(
                label=f.cleaned_data["label"],
                organ=f.cleaned_data["organ"],
                diameter_mm=f.cleaned_data["diameter_mm"],
                is_node=f.cleaned_data["is_node"],
                is_target=f.cleaned_data["is_target"],
            )
            for f in new_lesions.forms
            if f.cleaned_data.get("label")
        ],
    )


@require_GET
def study_response(request: HttpRequest, study_pk: int) -> HttpResponse:
    """Spider and waterfall plots of the visible patients (one site with ?site=), coloured by arm
    for users who may see allocations, in one colour for everyone else."""
    study = get_study_for_user(request.user, study_pk)
    patients = Patient.objects.for_user(request.user).filter(study_site__study=study)
    site = None
    if request.GET.get("site", "").isdigit():
        site = get_study_site_for_user(request.user, int(request.GET["site"]))
        patients = patients.filter(study_site=site)
    arms = {}
    if study.is_randomised and sees_allocation(request.user, study, site.pk if site else None):
        arms = dict(
            Allocation.objects.filter(patient__in=patients).values_list("patient_id", "arm__name")
        )
    return render(
        request,
        "lesions/study_response.html",
        {
            "study": study,
            "site": site,
            "spider_svg": _safe_svg(
                charts.spider_plot(
                    _spider_series(patients, arms), _("Change from baseline over time")
                )
            ),
            "waterfall_svg": _safe_svg(
                charts.waterfall_plot(
                    _waterfall_bars(patients, arms), _("Best change from baseline")
                )
            ),
            "sites": study.study_sites.filter(site_q(request.user)).select_related("site"),
            "coloured_by_arm": bool(arms),
        },
    )


def _spider_series(patients, arms: dict[int, str]) -> tuple[charts.Series, ...]:
    rows = (
        TimepointResult.objects.filter(
            assessment__patient__in=patients, change_from_baseline_pct__isnull=False
        )
        .values_list(
            "assessment__patient_id",
            "assessment__patient__subject_id",
            "assessment__scan_date",
            "change_from_baseline_pct",
        )
        .order_by("assessment__patient_id", "assessment__scan_date")
    )
    baselines = dict(
        ImagingAssessment.objects.filter(patient__in=patients, is_baseline=True).values_list(
            "patient_id", "scan_date"
        )
    )
    series: dict[int, list] = {}
    labels: dict[int, str] = {}
    for patient_id, subject, day, change in rows:
        if patient_id not in baselines:
            continue
        points = series.setdefault(patient_id, [charts.Point(0, Decimal(0))])
        points.append(charts.Point(charts.days_between(baselines[patient_id], day), change))
        labels[patient_id] = subject or ""
    return tuple(
        charts.Series(labels[pk], tuple(points), group=arms.get(pk, ""))
        for pk, points in series.items()
    )


def _waterfall_bars(patients, arms: dict[int, str]) -> tuple[charts.Bar, ...]:
    rows = PatientResponse.objects.filter(
        patient__in=patients, best_change_pct__isnull=False
    ).values_list("patient_id", "patient__subject_id", "best_change_pct")
    return tuple(
        charts.Bar(subject or "", change, group=arms.get(pk, "")) for pk, subject, change in rows
    )


@require_http_methods(["GET", "POST"])
def baseline_edit(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk, write=True)
    scan = patient.assessments.filter(is_baseline=True).first()
    if scan is None:
        raise Http404
    targets = list(patient.lesions.filter(category=Lesion.Category.TARGET).order_by("label"))
    current = {m.lesion_id: m.diameter_mm for m in scan.measurements.all()}
    initial = {
        "scan_date": scan.scan_date,
        "modality": scan.modality,
        **{f"lesion_{le.pk}": current.get(le.pk) for le in targets},
    }
    form = BaselineCorrectionForm(request.POST or None, initial=initial, targets=targets)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        try:
            services.baseline_correct(
                patient=patient,
                by=request.user,
                scan_date=form.cleaned_data["scan_date"],
                modality=form.cleaned_data["modality"],
                diameters=form.diameters(),
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as error:
            problems = _errors(error)
        else:
            messages.success(request, _("Baseline corrected; responses recomputed."))
            return redirect("patient_lesions", patient_pk=patient.pk)
    return render(
        request,
        "lesions/baseline_edit.html",
        {"patient": patient, "form": form, "problems": problems},
    )
