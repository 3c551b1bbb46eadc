"""Visit pages (issue #7, part 2): a site's visit calendar, a patient's planned visits, and
marking a visit done or missed.

Statuses are derived from today's date on the study's clock (``visit_services.visit_status``).
The calendar reads one query of visits whatever the number of patients; planned visits show
nothing about arms (a randomisation-anchored date is the same in every arm).
"""

from __future__ import annotations

from datetime import timedelta

from crispy_forms.helper import FormHelper
from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from patients import visit_services
from patients.models_visits import PlannedVisit
from studies.access import scope_for
from studies.lookups import get_patient_for_user, get_study_site_for_user
from studies.models import VisitDefinition
from studies.roles import DATA_ENTRY_ROLES

State = PlannedVisit.State
Kind = VisitDefinition.Kind

#: Days ahead the site calendar lists upcoming visits.
CALENDAR_DAYS = 30

#: Status -> Bootstrap badge class.
BADGES = {
    "upcoming": "text-bg-secondary",
    "due": "text-bg-warning",
    "overdue": "text-bg-danger",
    "done": "text-bg-success",
    "missed": "text-bg-dark",
    "na": "text-bg-light border",
}


def status_labels() -> dict[str, str]:
    return {
        "upcoming": _("Upcoming"),
        "due": _("Due (in window)"),
        "overdue": _("Overdue"),
        "done": _("Done"),
        "missed": _("Missed"),
        "na": _("Not applicable"),
    }


def _can_enter(user, study_site) -> bool:
    return scope_for(user).has_role(DATA_ENTRY_ROLES, study_site.study_id, study_site.pk)


def _record_link(visit: PlannedVisit) -> str:
    """Where the CRF that records a visit is read (scan -> lesions page, sample -> labs)."""
    prefix = visit.done_form.partition(":")[0]
    if prefix == "scan":
        return reverse("patient_lesions", kwargs={"patient_pk": visit.patient_id})
    if prefix == "lab":
        return reverse("patient_labs", kwargs={"patient_pk": visit.patient_id})
    return ""


def _record_text(visit: PlannedVisit) -> str:
    prefix = visit.done_form.partition(":")[0]
    if prefix == "scan":
        return _("Scan")
    if prefix == "lab":
        return _("Laboratory sample")
    return _("Marked by hand") if visit.state == State.DONE else ""


def _row(visit: PlannedVisit, today, labels: dict[str, str]) -> dict:
    status = visit_services.visit_status(visit, today)
    return {
        "visit": visit,
        "status": status,
        "status_label": labels[status],
        "badge": BADGES[status],
        "record_text": _record_text(visit),
        "record_link": _record_link(visit),
        "editable": status in {"upcoming", "due", "overdue", "missed"}
        or (status == "done" and not visit_services.done_by_record(visit)),
    }


class KindFilterForm(forms.Form):
    kind = forms.ChoiceField(
        label=gettext_lazy("Kind of visit"),
        required=False,
        choices=[("", gettext_lazy("All kinds")), *Kind.choices],
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )


@require_GET
def site_visits(request: HttpRequest, site_pk: int) -> HttpResponse:
    """The site's visit calendar: overdue and due visits first, then those opening soon."""
    study_site = get_study_site_for_user(request.user, site_pk)
    today = visit_services.study_today(study_site.study)
    filters = KindFilterForm(request.GET or None)
    visits = (
        PlannedVisit.objects.for_user(request.user)
        .filter(
            patient__study_site=study_site,
            state=State.PLANNED,
            window_start__lte=today + timedelta(days=CALENDAR_DAYS),
        )
        .select_related("patient", "definition")
        .order_by("window_end", "due_on", "patient__subject_id", "pk")
    )
    if filters.is_valid() and filters.cleaned_data["kind"]:
        visits = visits.filter(definition__kind=filters.cleaned_data["kind"])
    labels = status_labels()
    groups: dict[str, list[dict]] = {"overdue": [], "due": [], "upcoming": []}
    for visit in visits:
        row = _row(visit, today, labels)
        groups[row["status"]].append(row)
    groups["upcoming"].sort(key=lambda r: (r["visit"].window_start, r["visit"].due_on))
    sections = [
        {"key": "overdue", "title": _("Overdue"), "rows": groups["overdue"]},
        {"key": "due", "title": _("Due now (window open)"), "rows": groups["due"]},
        {
            "key": "upcoming",
            "title": _("Window opens within %(n)s days") % {"n": CALENDAR_DAYS},
            "rows": groups["upcoming"],
        },
    ]
    return render(
        request,
        "patients/site_visits.html",
        {
            "study_site": study_site,
            "today": today,
            "filters": filters,
            "sections": sections,
            "can_enter": _can_enter(request.user, study_site),
        },
    )


@require_GET
def patient_visits(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk)
    today = visit_services.study_today(patient.study_site.study)
    labels = status_labels()
    visits = (
        PlannedVisit.objects.filter(patient=patient)
        .select_related("definition")
        .order_by("due_on", "definition__code", "occurrence")
    )
    return render(
        request,
        "patients/patient_visits.html",
        {
            "patient": patient,
            "today": today,
            "rows": [_row(visit, today, labels) for visit in visits],
            "can_enter": _can_enter(request.user, patient.study_site),
        },
    )


DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class VisitMarkForm(forms.Form):
    state = forms.ChoiceField(label=gettext_lazy("The visit"), widget=forms.RadioSelect)
    done_on = forms.DateField(label=gettext_lazy("Date of the visit"), required=False, widget=DATE)
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        required=False,
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy(
            "Why the visit was missed, or why a saved mark is changed (audit trail)."
        ),
    )

    def __init__(self, *args, visit: PlannedVisit, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        choices = []
        if visit.definition.kind in visit_services.MANUAL_KINDS and visit.state != State.DONE:
            choices.append((State.DONE, _("was done")))
        if visit.state != State.MISSED:
            choices.append((State.MISSED, _("was missed")))
        if visit.state in {State.DONE, State.MISSED}:
            choices.append((State.PLANNED, _("is still to be done (undo the mark)")))
        self.fields["state"].choices = choices
        if visit.definition.kind not in visit_services.MANUAL_KINDS:
            del self.fields["done_on"]
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True


def _apply_errors(form: forms.Form, error: ValidationError) -> None:
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for key, errors in error.error_dict.items():
        form.add_error(key if key in form.fields else None, errors)


@require_http_methods(["GET", "POST"])
def visit_edit(request: HttpRequest, patient_pk: int, visit_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk, write=True)
    visits = PlannedVisit.objects.filter(patient=patient, pk=visit_pk)
    visit = visits.select_related("definition").first()
    if visit is None:
        raise Http404
    today = visit_services.study_today(patient.study_site.study)
    row = _row(visit, today, status_labels())
    form = None
    if row["editable"]:
        form = VisitMarkForm(request.POST or None, visit=visit)
        if request.method == "POST" and form.is_valid():
            try:
                visit_services.visit_mark(
                    visit=visit,
                    state=form.cleaned_data["state"],
                    by=request.user,
                    reason=form.cleaned_data["reason"],
                    done_on=form.cleaned_data.get("done_on"),
                )
            except ValidationError as error:
                _apply_errors(form, error)
            else:
                messages.success(request, _("Visit saved."))
                return redirect("patient_visits", patient_pk=patient.pk)
    return render(
        request,
        "patients/visit_form.html",
        {"patient": patient, "row": row, "visit": visit, "form": form},
    )
