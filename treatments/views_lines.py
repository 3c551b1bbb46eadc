"""The patient's systemic therapy lines: list with derived endpoints, and the line form."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.postgres.aggregates import ArrayAgg
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.db.models import Value
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from studies.access import scope_for
from studies.lookups import get_patient_for_user
from studies.roles import DATA_ENTRY_ROLES
from treatments import line_services
from treatments.line_forms import LineForm
from treatments.models import Agent, SystemicLine

LINE_FIELDS = ("line_number", "start", "end", "stop_reason", "stop_detail")


@require_GET
def patient_lines(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk)
    site = patient.study_site
    can_enter = scope_for(request.user).has_role(DATA_ENTRY_ROLES, site.study_id, site.pk)
    return render(
        request,
        "treatments/patient_lines.html",
        {
            "patient": patient,
            "endpoints": line_services.patient_endpoints(patient),
            "can_enter": can_enter and patient.subject_id is not None,
        },
    )


def _add_errors(form: LineForm, error: ValidationError) -> None:
    """Put the service's errors on their fields (the form-wide list for the others)."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        target = field if field in form.fields else None
        for item in errors:
            if target is None and field != NON_FIELD_ERRORS:
                form.add_error(None, f"{_label(field)}: {' '.join(item.messages)}")
            else:
                form.add_error(target, item)


def _label(field: str) -> str:
    try:
        return str(SystemicLine._meta.get_field(field).verbose_name)
    except FieldDoesNotExist:
        return field


@require_http_methods(["GET", "POST"])
def line_edit(request: HttpRequest, patient_pk: int, line_pk: int | None = None) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk, write=True)
    line = None
    if line_pk is not None:
        # The line with the ids of its agents, in one query.
        line = (
            SystemicLine.objects.filter(patient=patient, pk=line_pk)
            .annotate(agent_ids=ArrayAgg("line_agents__agent_id", default=Value([])))
            .first()
        )
        if line is None:
            raise Http404
    form = LineForm(
        request.POST or None,
        instance=line,
        editing=line is not None,
        agents=list(Agent.objects.order_by("name")),
        chosen=[pk for pk in line.agent_ids if pk is not None] if line else None,
    )
    if request.method == "POST" and form.is_valid():
        try:
            line_services.line_record(
                patient=patient,
                by=request.user,
                data={name: form.cleaned_data[name] for name in LINE_FIELDS},
                agents=form.cleaned_data["agents"],
                line=line,
                reason=form.cleaned_data.get("reason", ""),
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("Systemic therapy line saved."))
            return redirect("patient_lines", patient_pk=patient.pk)
    return render(
        request,
        "treatments/line_form.html",
        {"patient": patient, "form": form, "line": line},
    )
