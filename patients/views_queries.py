"""Pages of data queries (issue #8 item 2): a patient's queries, opening one, the conversation of
one query with the step this user may take, and the site's open queries, oldest first.

Readers are the people who raise queries (monitors, data managers) and those who answer them
(the site's data-entry staff); other roles get 403.  Queries on forms that reveal the arm (the
study drug) are invisible, even by their number, to users who may not see the allocation.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, Value, When
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from patients import casebook, query_services
from patients.models import Patient
from patients.models_dm import DataQuery, QueryMessage
from patients.query_forms import QueryOpenForm, QueryStepForm, form_choice, parse_form_choice
from studies.access import require, scope_for
from studies.blinding import sees_allocation
from studies.lookups import get_patient_for_user, get_study_site_for_user

Action = QueryMessage.Action
STEPS = {
    Action.ANSWER: query_services.query_answer,
    Action.CLOSE: query_services.query_close,
    Action.REOPEN: query_services.query_reopen,
}
PAGE_SIZE = 100


def get_query_for_user(user, pk: int) -> DataQuery:
    """A query of a patient in the user's scope, on a form the user may see; 404 otherwise."""
    query = (
        DataQuery.objects.filter(pk=pk, patient__in=Patient.objects.for_user(user))
        .select_related("patient__study_site__study", "patient__study_site__site", "opened_by")
        .first()
    )
    if query is None or query.form_kind in query_services.hidden_kinds(user, query.patient):
        raise Http404
    return query


def _apply_errors(form, error: ValidationError, names: dict[str, str]) -> None:
    if hasattr(error, "error_dict"):
        for field, errs in error.error_dict.items():
            target = names.get(field, field)
            form.add_error(target if target in form.fields else None, errs)
    else:
        form.add_error(None, error)


@require_GET
def patient_queries(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk)
    require(query_services.can_read(request.user, patient))
    status_order = Case(
        When(status=DataQuery.Status.OPEN, then=Value(0)),
        When(status=DataQuery.Status.ANSWERED, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    queries = query_services.with_last_message(
        DataQuery.objects.filter(patient=patient).exclude(
            form_kind__in=query_services.hidden_kinds(request.user, patient)
        )
    ).order_by(status_order, "opened_at", "pk")
    now = timezone.now()
    return render(
        request,
        "patients/patient_queries.html",
        {
            "patient": patient,
            "rows": [query_services.query_row(q, now) for q in queries],
            "can_open": query_services.can_manage(request.user, patient),
        },
    )


def _prefill(request: HttpRequest, rows: list[casebook.FormRow]) -> tuple[str | None, dict]:
    """The kind of form named by ?kind=&object= (GET) or by the chosen form (POST)."""
    kinds = {row.kind for row in rows}
    if request.method == "POST":
        parsed = parse_form_choice(request.POST.get("form", ""))
        return (parsed[0] if parsed and parsed[0] in kinds else None), {}
    kind, object_id = request.GET.get("kind", ""), request.GET.get("object", "")
    if kind not in kinds or not object_id.isdigit():
        return None, {}
    return kind, {"form": form_choice(kind, int(object_id)), "field": request.GET.get("field", "")}


@require_http_methods(["GET", "POST"])
def query_new(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk)
    require(query_services.can_manage(request.user, patient))
    hidden = query_services.hidden_kinds(request.user, patient)
    rows = [row for row in casebook.form_list([patient.pk]) if row.kind not in hidden]
    kind, initial = _prefill(request, rows)
    form = QueryOpenForm(request.POST or None, rows=rows, kind=kind, initial=initial)
    if request.method == "POST" and form.is_valid():
        form_kind, object_id = form.cleaned_data["form"]
        try:
            query = query_services.query_open(
                patient=patient,
                form_kind=form_kind,
                object_id=object_id,
                field=form.cleaned_data["field"],
                text=form.cleaned_data["text"],
                by=request.user,
            )
        except ValidationError as error:
            _apply_errors(form, error, {"form_kind": "form", "object_id": "form"})
        else:
            messages.success(request, _("Query opened: the site is notified in its daily digest."))
            return redirect("query_detail", query_pk=query.pk)
    return render(request, "patients/query_form.html", {"patient": patient, "form": form})


def _role_actions(user, patient: Patient) -> list[str]:
    """Steps the user's roles allow (whether the query's status allows them is the service's)."""
    actions = [Action.ANSWER] if query_services.can_answer(user, patient) else []
    if query_services.can_manage(user, patient):
        actions += [Action.CLOSE, Action.REOPEN]
    return actions


@require_http_methods(["GET", "POST"])
def query_detail(request: HttpRequest, query_pk: int) -> HttpResponse:
    query = get_query_for_user(request.user, query_pk)
    require(query_services.can_read(request.user, query.patient))
    actions = _role_actions(request.user, query.patient)
    if request.method == "POST":
        require(bool(actions))
    form = QueryStepForm(request.POST or None, actions=actions) if actions else None
    if request.method == "POST" and form.is_valid():
        step = STEPS[form.cleaned_data["action"]]
        try:
            step(query=query, text=form.cleaned_data["text"], by=request.user)
        except ValidationError as error:
            _apply_errors(form, error, {})
        else:
            messages.success(request, _("Query updated."))
            return redirect("query_detail", query_pk=query.pk)
    return render(
        request,
        "patients/query_detail.html",
        {
            "patient": query.patient,
            "query": query,
            "age": query_services.age_days(query),
            "form_name": casebook.form_label(query.form_kind),
            "field_name": query_services.field_label(query.form_kind, query.field),
            "form_url": casebook.form_url(query.form_kind, query.patient_id, query.object_id),
            "conversation": query.messages.select_related("author").order_by("created_at", "pk"),
            "form": form,
            "buttons": query_services.allowed_actions(request.user, query),
            "can_answer": query_services.can_answer(request.user, query.patient),
        },
    )


@require_GET
def site_queries(request: HttpRequest, site_pk: int) -> HttpResponse:
    study_site = get_study_site_for_user(request.user, site_pk)
    require(
        scope_for(request.user).has_role(
            query_services.QUERY_READER_ROLES, study_site.study_id, study_site.pk
        )
    )
    hidden = (
        ()
        if sees_allocation(request.user, study_site.study, study_site.pk)
        else casebook.ARM_REVEALING_KINDS
    )
    queries = query_services.with_last_message(
        DataQuery.objects.filter(patient__study_site=study_site, status__in=query_services.LIVE)
        .exclude(form_kind__in=hidden)
        .select_related("patient")
    ).order_by("opened_at", "pk")
    page = Paginator(queries, PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    return render(
        request,
        "patients/site_queries.html",
        {
            "study_site": study_site,
            "page": page,
            "rows": [query_services.query_row(q, now) for q in page],
        },
    )
