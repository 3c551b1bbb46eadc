"""Pages of the patient's path: screening, eligibility, consent, enrolment, status."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from patients import query_services, services, status
from patients.forms import (
    ConsentForm,
    DeclineForm,
    FactsForm,
    LesionFormSet,
    PatientFilterForm,
    ScreeningForm,
    StatusForm,
    UnblindForm,
    WithdrawalForm,
    formset_changes_saved_rows,
    lab_formset,
)
from patients.models import Allocation, EligibilityFacts, Patient
from studies.access import require, scope_for
from studies.audit import reason_for_change
from studies.blinding import sees_allocation
from studies.lookups import get_patient_for_user, get_study_site_for_user, require_data_entry
from studies.roles import AUDIT_READER_ROLES, DATA_ENTRY_ROLES, Role

INVESTIGATOR_ONLY = frozenset({Role.INVESTIGATOR})


def _apply_errors(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errs in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errs)
    else:
        form.add_error(None, error)


@require_GET
def patient_list(request: HttpRequest, site_pk: int) -> HttpResponse:
    study_site = get_study_site_for_user(request.user, site_pk)
    filters = PatientFilterForm(request.GET or None)
    patients = Patient.objects.for_user(request.user).filter(study_site=study_site)
    if filters.is_valid():
        if q := filters.cleaned_data["q"].strip():
            patients = patients.filter(
                Q(subject_id__icontains=q) | Q(screening_number__icontains=q)
            )
        if filters.cleaned_data["status"]:
            patients = patients.filter(status=filters.cleaned_data["status"])
    page = Paginator(patients.order_by("-created_at", "pk"), 25).get_page(request.GET.get("page"))
    scope = scope_for(request.user)
    return render(
        request,
        "patients/patient_list.html",
        {
            "study_site": study_site,
            "page": page,
            "filters": filters,
            "querystring": request.GET.copy().urlencode() if request.GET else "",
            "can_enter": scope.has_role(DATA_ENTRY_ROLES, study_site.study_id, study_site.pk),
        },
    )


@require_http_methods(["GET", "POST"])
def patient_screen(request: HttpRequest, site_pk: int) -> HttpResponse:
    study_site = get_study_site_for_user(request.user, site_pk)
    require_data_entry(request.user, study_site)
    form = ScreeningForm(
        request.POST or None, local_reference=study_site.study.local_reference_enabled
    )
    if request.method == "POST" and form.is_valid():
        try:
            patient = services.patient_screen(
                study_site=study_site, by=request.user, **form.cleaned_data
            )
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Patient added to the screening log."))
            return redirect("patient_detail", patient_pk=patient.pk)
    return render(request, "patients/screen_form.html", {"form": form, "study_site": study_site})


@require_GET
def patient_detail(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk)
    study_site = patient.study_site
    scope = scope_for(request.user)
    allocation = Allocation.objects.filter(patient=patient).select_related("arm").first()
    show_arm = sees_allocation(request.user, study_site.study, study_site.pk, patient_id=patient.pk)
    return render(
        request,
        "patients/patient_detail.html",
        {
            "patient": patient,
            "study": study_site.study,
            "allocation": allocation,
            "show_arm": show_arm,
            "consents": patient.consents.select_related("obtained_by").order_by("consented_on"),
            "checks": services.eligibility_checks(patient) if patient.status == "screening" else [],
            "can_enter": scope.has_role(DATA_ENTRY_ROLES, study_site.study_id, study_site.pk),
            "can_read_queries": query_services.can_read(request.user, patient),
            "can_read_audit": scope.has_role(
                AUDIT_READER_ROLES, study_site.study_id, study_site.pk
            ),
            "next_statuses": status.allowed_next(patient.status) - {"enrolled", "screen_failure"},
            "can_unblind": allocation is not None
            and not show_arm
            and _may_unblind(request.user, patient),
            "has_study_drug": show_arm
            and allocation is not None
            and study_site.study.drug_regimens.filter(
                Q(arm__isnull=True) | Q(arm=allocation.arm_id)
            ).exists(),
        },
    )


@require_http_methods(["GET", "POST"])
def patient_facts(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk, write=True)
    facts = EligibilityFacts.objects.filter(patient=patient).first() or EligibilityFacts(
        patient=patient
    )
    data = request.POST or None
    form = FactsForm(data, instance=facts)
    lesions = LesionFormSet(data, instance=patient, prefix="lesions")
    labs = lab_formset(data, patient)
    if request.method == "POST" and all(f.is_valid() for f in (form, lesions, labs)):
        reason = form.cleaned_data.get("reason", "").strip()
        changes_saved = form.changes_saved_values() or any(
            formset_changes_saved_rows(fs) for fs in (lesions, labs)
        )
        if changes_saved and not reason:
            form.add_error("reason", _("Give a reason for changing saved data (audit trail)."))
            return render(
                request,
                "patients/facts_form.html",
                {"patient": patient, "form": form, "lesions": lesions, "labs": labs},
            )
        reason = reason or "eligibility data entry"
        with transaction.atomic(), reason_for_change(reason, user=request.user.pk):
            form.save()
            lesions.save()
            labs.save()
        messages.success(request, _("Eligibility data saved."))
        return redirect("patient_eligibility", patient_pk=patient.pk)
    return render(
        request,
        "patients/facts_form.html",
        {
            "patient": patient,
            "form": form,
            "lesions": lesions,
            "labs": labs,
        },
    )


@require_http_methods(["GET", "POST"])
def patient_eligibility(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk, write=True)
    checks = services.eligibility_checks(patient)
    answers = dict(patient.eligibility.values_list("criterion_id", "satisfied"))
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        posted = {c.criterion.pk: request.POST.get(f"criterion_{c.criterion.pk}") for c in checks}
        answers = {pk: value == "yes" for pk, value in posted.items() if value in {"yes", "no"}}
        try:
            services.eligibility_answer(patient=patient, answers=answers, by=request.user)
        except ValidationError as error:
            errors = error.message_dict
        else:
            messages.success(request, _("Eligibility checklist saved."))
            return redirect("patient_detail", patient_pk=patient.pk)
    rows = [
        {
            "check": c,
            "answer": answers.get(c.criterion.pk),
            "errors": errors.get(f"criterion_{c.criterion.pk}", []),
        }
        for c in checks
    ]
    return render(
        request,
        "patients/eligibility_form.html",
        {
            "patient": patient,
            "rows": rows,
            "has_errors": bool(errors),
            "global_errors": errors.get("__all__", []),
        },
    )


def _form_page(request, patient, form, template: str, action, success: str) -> HttpResponse:
    """The shape of every patient form page: valid form -> service -> message -> patient page.

    ``action(cleaned_data)`` calls the service; its ValidationError lands on the form's fields.
    """
    if request.method == "POST" and form.is_valid():
        try:
            action(form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, success)
            return redirect("patient_detail", patient_pk=patient.pk)
    return render(request, template, {"patient": patient, "form": form})


@require_http_methods(["GET", "POST"])
def patient_consent(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk, write=True)
    return _form_page(
        request,
        patient,
        ConsentForm(request.POST or None),
        "patients/consent_form.html",
        lambda data: services.consent_record(patient=patient, by=request.user, **data),
        _("Consent recorded."),
    )


@require_http_methods(["GET", "POST"])
def consent_withdraw(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk, write=True)
    consent = services.active_consent(patient)
    if consent is None:
        messages.error(request, _("This patient has no active consent."))
        return redirect("patient_detail", patient_pk=patient.pk)
    return _form_page(
        request,
        patient,
        WithdrawalForm(request.POST or None),
        "patients/withdraw_form.html",
        lambda data: services.consent_withdraw(consent=consent, by=request.user, **data),
        _("Withdrawal of consent recorded."),
    )


@require_http_methods(["GET", "POST"])
def patient_enrol(request: HttpRequest, patient_pk: int) -> HttpResponse:
    """Confirmation page, then enrolment (and randomisation where the design says so)."""
    patient = get_patient_for_user(request.user, patient_pk, write=True)
    study = patient.study_site.study
    factors = list(study.strat_factors.all())
    error_messages: list[str] = []
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        strata = {f.name: request.POST.get(f"stratum_{f.name}", "") for f in factors}
        try:
            services.patient_enrol(patient=patient, by=request.user, strata=strata)
        except ValidationError as error:
            error_messages = error.messages
        else:
            patient.refresh_from_db()
            messages.success(
                request, _("Patient enrolled as %(subject)s.") % {"subject": patient.subject_id}
            )
            return redirect("patient_detail", patient_pk=patient.pk)
    return render(
        request,
        "patients/enrol_confirm.html",
        {
            "patient": patient,
            "study": study,
            "factors": factors,
            "errors": error_messages,
        },
    )


@require_http_methods(["GET", "POST"])
def patient_status(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk, write=True)
    allowed = status.allowed_next(patient.status) - {"enrolled", "screen_failure"}
    choices = [(s, Patient.Status(s).label) for s in Patient.Status.values if s in allowed]
    return _form_page(
        request,
        patient,
        StatusForm(request.POST or None, choices=choices),
        "patients/status_form.html",
        lambda data: services.patient_change_status(patient=patient, by=request.user, **data),
        _("Status changed."),
    )


def _may_unblind(user, patient) -> bool:
    study_site = patient.study_site
    return study_site.study.is_blinded_design and scope_for(user).has_role(
        INVESTIGATOR_ONLY, study_site.study_id, study_site.pk
    )


@require_http_methods(["GET", "POST"])
def patient_unblind(request: HttpRequest, patient_pk: int) -> HttpResponse:
    """Emergency unblinding by the site's principal investigator, password re-entered."""
    patient = get_patient_for_user(request.user, patient_pk)
    require(_may_unblind(request.user, patient))
    return _form_page(
        request,
        patient,
        UnblindForm(request.POST or None),
        "patients/unblind_form.html",
        lambda data: services.emergency_unblind(patient=patient, by=request.user, **data),
        _("Unblinded for you, for this patient only. The sponsor has been informed."),
    )


@require_http_methods(["GET", "POST"])
def patient_decline(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk, write=True)
    return _form_page(
        request,
        patient,
        DeclineForm(request.POST or None),
        "patients/decline_form.html",
        lambda data: services.patient_decline(patient=patient, by=request.user, **data),
        _("Recorded: the patient declined."),
    )
