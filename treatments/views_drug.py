"""The patient's study drug: the planned calendar with what was given, and the cycle form.

A study drug reveals the arm (it is given in one arm only), so both pages are for users who
may see the allocation (studies/blinding.py): blinded users get 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from studies.access import require, scope_for
from studies.blinding import sees_allocation
from studies.lookups import get_patient_for_user, require_data_entry
from studies.roles import DATA_ENTRY_ROLES
from treatments import drug_services
from treatments.drug_forms import CycleForm
from treatments.models import DrugCycle, DrugRegimen


def _sees_arm(user, patient) -> bool:
    site = patient.study_site
    return sees_allocation(user, site.study, site.pk, patient_id=patient.pk)


@require_GET
def patient_drug(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk)
    require(_sees_arm(request.user, patient))
    regimens = list(drug_services.regimens_for(patient))
    blocks, anchor = [], None
    if regimens:
        anchor = drug_services.calendar_anchor(patient)
        cycles = list(DrugCycle.objects.filter(patient=patient, regimen__in=regimens))
        for regimen in regimens:
            rows = drug_services.planned_calendar(patient, regimen, cycles, anchor=anchor)
            blocks.append(
                {
                    "regimen": regimen,
                    "text": drug_services.regimen_text(regimen),
                    "per_m2": regimen.dose_basis == DrugRegimen.DoseBasis.PER_M2,
                    "rows": rows,
                    "compliance": drug_services.compliance(rows),
                }
            )
    site = patient.study_site
    can_enter = scope_for(request.user).has_role(DATA_ENTRY_ROLES, site.study_id, site.pk)
    return render(
        request,
        "treatments/patient_drug.html",
        {
            "patient": patient,
            "blocks": blocks,
            "anchor": anchor,
            "can_enter": can_enter and patient.subject_id is not None,
        },
    )


def _positive_int(value: str | None) -> int:
    try:
        number = int(value or "")
    except ValueError:
        raise Http404 from None
    if number < 1:
        raise Http404
    return number


def _target(request, patient, cycle_pk):
    """(regimen, number, saved cycle or None) named by the URL; 404 when unknown."""
    if cycle_pk is not None:
        cycle = (
            DrugCycle.objects.select_related("regimen__agent")
            .filter(patient=patient, pk=cycle_pk)
            .first()
        )
        if cycle is None:
            raise Http404
        return cycle.regimen, cycle.number, cycle
    regimen_pk = _positive_int(request.GET.get("regimen"))
    number = _positive_int(request.GET.get("number"))
    regimen = drug_services.regimens_for(patient).filter(pk=regimen_pk).first()
    if regimen is None:
        raise Http404
    return regimen, number, None


def _initial(patient, regimen, per_m2: bool, cycle) -> dict:
    if cycle is not None:
        return CycleForm.initial_for(cycle)
    initial: dict = {"status": DrugCycle.Status.GIVEN}
    if per_m2:  # the last measurements, to be checked on the day
        last = (
            DrugCycle.objects.filter(patient=patient, regimen=regimen, height_cm__isnull=False)
            .order_by("-number")
            .first()
        )
        if last is not None:
            initial.update(height_cm=last.height_cm, weight_kg=last.weight_kg)
    else:
        initial["given_total_mg"] = regimen.dose * regimen.days_per_cycle
    return initial


def _preview(regimen, per_m2: bool, form, cycle):
    """The planned dose to show: computed from the form's height and weight, else the saved."""
    if per_m2 and form.is_bound and form.is_valid():
        height, weight = form.cleaned_data.get("height_cm"), form.cleaned_data.get("weight_kg")
        if height is not None and weight is not None:
            try:
                return drug_services.planned_dose(regimen, height, weight)
            except ValidationError:
                return None
    if cycle is not None:
        return drug_services.PlannedDose(
            cycle.planned_daily_mg, cycle.planned_total_mg, cycle.bsa_m2, cycle.dose_explanation
        )
    if not per_m2:
        return drug_services.planned_dose(regimen)
    return None


@require_http_methods(["GET", "POST"])
def cycle_edit(request: HttpRequest, patient_pk: int, cycle_pk: int | None = None):
    patient = get_patient_for_user(request.user, patient_pk)
    require(_sees_arm(request.user, patient))
    require_data_entry(request.user, patient.study_site)
    regimen, number, cycle = _target(request, patient, cycle_pk)
    if cycle is None and request.method == "GET":
        saved = DrugCycle.objects.filter(patient=patient, regimen=regimen, number=number).first()
        if saved is not None:
            return redirect("cycle_edit", patient_pk=patient.pk, cycle_pk=saved.pk)
    per_m2 = regimen.dose_basis == DrugRegimen.DoseBasis.PER_M2
    form = CycleForm(
        request.POST or None,
        initial=_initial(patient, regimen, per_m2, cycle),
        editing=cycle is not None,
        per_m2=per_m2,
    )
    problems: list[str] = []
    preview = _preview(regimen, per_m2, form, cycle)
    if request.method == "POST" and "compute" not in request.POST and form.is_valid():
        try:
            drug_services.cycle_record(
                patient=patient,
                by=request.user,
                regimen=regimen,
                number=number,
                data=form.data_for_service(),
                cycle=cycle,
                reason=form.cleaned_data.get("reason_for_change", ""),
            )
        except ValidationError as error:
            problems = _attach(form, error)
        else:
            messages.success(request, _("Study drug cycle saved."))
            return redirect("patient_drug", patient_pk=patient.pk)
    if cycle is not None:
        planned_on = cycle.planned_on
    else:
        anchor = drug_services.calendar_anchor(patient).day
        planned_on = drug_services.planned_day(anchor, regimen, number)
    return render(
        request,
        "treatments/cycle_form.html",
        {
            "patient": patient,
            "form": form,
            "regimen": regimen,
            "regimen_text": drug_services.regimen_text(regimen),
            "number": number,
            "cycle": cycle,
            "per_m2": per_m2,
            "planned_on": planned_on,
            "preview": preview,
            "problems": problems,
        },
    )


def _attach(form, error: ValidationError) -> list[str]:
    """Field messages next to their fields; the others returned for the top of the page."""
    if not hasattr(error, "error_dict"):
        return error.messages
    problems = []
    for field, texts in error.message_dict.items():
        if field != NON_FIELD_ERRORS and field in form.fields:
            for text in texts:
                form.add_error(field, text)
        else:
            problems.extend(texts)
    return problems
