"""Data management pages (issue #8): a patient's casebook (form status matrix) with source data
verification, the investigator's signature and locks; a site's missing and late forms; a study's
locks.

Who does what: monitors verify (SDV_ROLES), the site's principal investigator signs
(SIGNER_ROLES), data managers lock and unlock (LOCK_ROLES); everyone who sees the patient sees
the matrix.  Statuses come from ``patients/casebook.py`` in a fixed number of queries.
"""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from patients import casebook as cb
from patients import dm_services, locking, query_services
from patients.models_dm import DataLock, FormKind, Signature
from studies.access import require, scope_for
from studies.lookups import get_patient_for_user, get_study_for_user, get_study_site_for_user
from studies.roles import LOCK_ROLES, SDV_ROLES, SIGNER_ROLES


class ReasonForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=200)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False


class SignForm(forms.Form):
    """Both components of the electronic signature, user name and password (21 CFR 11.200)."""

    username = forms.CharField(
        label=gettext_lazy("Your user name"),
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )
    password = forms.CharField(
        label=gettext_lazy("Your password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=gettext_lazy("Re-enter your password to sign (21 CFR Part 11)."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False


def _roles(user, patient) -> dict[str, bool]:
    scope = scope_for(user)
    ss = patient.study_site
    return {
        "can_verify": scope.has_role(SDV_ROLES, ss.study_id, ss.pk),
        "can_sign": scope.has_role(SIGNER_ROLES, ss.study_id, ss.pk),
        "can_lock": scope.has_role(LOCK_ROLES, ss.study_id, ss.pk),
        "can_raise_query": query_services.can_manage(user, patient),
        "can_read_queries": query_services.can_read(user, patient),
    }


@require_GET
def casebook(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk)
    book = casebook_build(request, patient)
    rows = [(row, [row.cells.get(kind, []) for kind, _label in book.kinds]) for row in book.matrix]
    return render(
        request,
        "patients/casebook.html",
        {
            "patient": patient,
            "book": book,
            "rows": rows,
            "statuses": [
                (key, label, cb.STATUS_COLOURS[key]) for key, label in cb.STATUS_LABELS.items()
            ],
            "reason_form": ReasonForm(),
            **_roles(request.user, patient),
        },
    )


def casebook_build(request, patient):
    return cb.build(patient, user=request.user)


@require_POST
def verify(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk)
    require(_roles(request.user, patient)["can_verify"])
    keys = dm_services.parse_tokens(request.POST.getlist("form"))
    try:
        count = dm_services.forms_verify(patient=patient, keys=keys, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, _("%(count)d form(s) marked source-data verified.") % {"count": count}
        )
    return redirect("casebook", patient_pk=patient.pk)


@require_http_methods(["GET", "POST"])
def sign(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk)
    require(_roles(request.user, patient)["can_sign"])
    book = casebook_build(request, patient)
    form = SignForm(request.POST or None)
    selected = set(request.POST.getlist("form")) if request.method == "POST" else set()
    if request.method == "POST" and form.is_valid():
        scope = request.POST.get("scope", "casebook")
        keys = None if scope == "casebook" else dm_services.parse_tokens(selected)
        try:
            dm_services.casebook_sign(
                request=request,
                patient=patient,
                by=request.user,
                password=form.cleaned_data["password"],
                username=form.cleaned_data["username"],
                keys=keys,
            )
        except ValidationError as error:
            if getattr(request, "axes_locked_out", False):
                logout(request)
                return render(request, "registration/locked_out.html", status=403)
            form.add_error(None, error)
        else:
            messages.success(
                request, _("Signed. The signature is bound to the data as they are now.")
            )
            return redirect("casebook", patient_pk=patient.pk)
    return render(
        request,
        "patients/casebook_sign.html",
        {
            "patient": patient,
            "book": book,
            "form": form,
            "meaning": Signature.MEANING,
            "selected": selected,
            "scope": request.POST.get("scope", "casebook"),
        },
    )


@require_POST
def lock_patient(request: HttpRequest, patient_pk: int) -> HttpResponse:
    """Lock the patient, or one form of theirs when ``form`` is posted ("kind:id")."""
    patient = get_patient_for_user(request.user, patient_pk)
    require(_roles(request.user, patient)["can_lock"])
    keys = dm_services.parse_tokens([request.POST.get("form", "")])
    kind, object_id = next(iter(keys)) if keys else ("", None)
    if kind and kind not in FormKind.values:
        raise Http404
    try:
        locking.lock_create(
            study=patient.study_site.study,
            level=DataLock.Level.FORM if kind else DataLock.Level.PATIENT,
            study_site=patient.study_site if not kind else None,
            patient=patient,
            form_kind=kind,
            object_id=object_id,
            reason=request.POST.get("reason", ""),
            by=request.user,
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Locked."))
    return redirect("casebook", patient_pk=patient.pk)


@require_GET
def site_forms(request: HttpRequest, site_pk: int) -> HttpResponse:
    study_site = get_study_site_for_user(request.user, site_pk)
    issues = cb.site_worklist(study_site, user=request.user)
    return render(
        request,
        "patients/site_forms.html",
        {"study_site": study_site, "issues": issues},
    )


@require_POST
def lock_site(request: HttpRequest, site_pk: int) -> HttpResponse:
    study_site = get_study_site_for_user(request.user, site_pk)
    require(scope_for(request.user).has_role(LOCK_ROLES, study_site.study_id))
    try:
        locking.lock_create(
            study=study_site.study,
            level=DataLock.Level.SITE,
            study_site=study_site,
            reason=request.POST.get("reason", ""),
            by=request.user,
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Site locked: no data of its patients can change."))
    return redirect("study_locks", study_pk=study_site.study_id)


@require_http_methods(["GET", "POST"])
def study_locks(request: HttpRequest, study_pk: int) -> HttpResponse:
    """The study's locks, and locking the whole study (database freeze)."""
    study = get_study_for_user(request.user, study_pk)
    can_lock = scope_for(request.user).has_role(LOCK_ROLES, study.pk)
    require(can_lock or scope_for(request.user).has_role(SDV_ROLES, study.pk))
    form = ReasonForm(request.POST or None)
    if request.method == "POST":
        require(can_lock)
        if form.is_valid():
            try:
                locking.lock_create(
                    study=study,
                    level=DataLock.Level.STUDY,
                    reason=form.cleaned_data["reason"],
                    by=request.user,
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, _("Study locked: no data can change until unlocked."))
                return redirect("study_locks", study_pk=study.pk)
    locks = (
        locking.locks_for_user(request.user)
        .filter(study=study)
        .select_related("study_site__site", "patient", "locked_by", "released_by")
        .order_by("-locked_at")[:200]
    )
    sites = study.study_sites.select_related("site").order_by("number") if can_lock else []
    return render(
        request,
        "patients/study_locks.html",
        {"study": study, "locks": locks, "form": form, "can_lock": can_lock, "sites": sites},
    )


@require_POST
def unlock(request: HttpRequest, lock_pk: int) -> HttpResponse:
    lock = DataLock.objects.filter(pk=lock_pk).select_related("study").first()
    scope = scope_for(request.user)
    if lock is None or not (scope.superuser or lock.study_id in scope.study_ids):
        raise Http404
    require(scope_for(request.user).has_role(LOCK_ROLES, lock.study_id))
    try:
        locking.lock_release(lock=lock, reason=request.POST.get("reason", ""), by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Unlocked."))
    if lock.patient_id:
        return redirect("casebook", patient_pk=lock.patient_id)
    return redirect("study_locks", study_pk=lock.study_id)
