"""The patient's SBRT courses: list (doses only for unblinded users) and the course form."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.contrib import messages
from django.contrib.postgres.aggregates import JSONBAgg
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Min, OuterRef, Q, Subquery, TextField
from django.db.models.functions import Cast, JSONObject
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from lesions.models import Lesion
from studies.access import require, scope_for
from studies.blinding import sees_allocation
from studies.compiled import CompiledQuery
from studies.lookups import get_patient_for_user
from studies.roles import DATA_ENTRY_ROLES
from treatments import services
from treatments.forms import CourseForm, FractionFormSet, PrescriptionFormSet
from treatments.models import Fraction, Prescription, RadiotherapyCourse


def _sees_doses(user, patient) -> bool:
    """Doses and fractionation reveal the arm in STOP-2: unblinded users only."""
    site = patient.study_site
    return sees_allocation(user, site.study, site.pk, patient_id=patient.pk)


@require_GET
def patient_courses(request: HttpRequest, patient_pk: int) -> HttpResponse:
    patient = get_patient_for_user(request.user, patient_pk)
    sees_doses = _sees_doses(request.user, patient)
    delivered = Q(fraction_log__status=Fraction.Status.DELIVERED)
    courses = list(
        RadiotherapyCourse.objects.filter(patient=patient)
        .annotate(
            delivered=Count("fraction_log", filter=delivered),
            first_day=Min("fraction_log__day", filter=delivered),
            last_day=Max("fraction_log__day", filter=delivered),
        )
        .prefetch_related("deviations")
        .order_by("number")
    )
    rows = []
    prescriptions = (
        Prescription.objects.filter(course__in=courses).select_related("lesion")
        if sees_doses
        else Prescription.objects.none()
    )
    by_course: dict[int, list[Prescription]] = {}
    for p in prescriptions:
        by_course.setdefault(p.course_id, []).append(p)
    for course in courses:
        days = (course.last_day - course.first_day).days + 1 if course.first_day else None
        rows.append(
            {
                "course": course,
                "overall_days": days,
                "summaries": services.summaries(
                    course, by_course.get(course.pk, []), course.delivered
                )
                if sees_doses
                else [],
                "deviations": [
                    d for d in course.deviations.all() if sees_doses or not d.arm_revealing
                ],
                "hidden_deviations": 0
                if sees_doses
                else sum(1 for d in course.deviations.all() if d.arm_revealing),
            }
        )
    site = patient.study_site
    can_enter = scope_for(request.user).has_role(DATA_ENTRY_ROLES, site.study_id, site.pk)
    return render(
        request,
        "treatments/patient_courses.html",
        {
            "patient": patient,
            "rows": rows,
            "sees_doses": sees_doses,
            "can_enter": can_enter and sees_doses,
        },
    )


_PRESCRIPTION_FIELDS = ("lesion_id", "total_dose_gy", "fractions", "dose_per_fraction_gy")
_FRACTION_FIELDS = ("number", "day", "status", "reason")


def _rows_of(model, fields: tuple[str, ...], order: str) -> Subquery:
    """A course's rows of ``model`` as a JSON list of text values (one subquery)."""
    values = {name: Cast(name, TextField()) for name in fields}
    return Subquery(
        model.objects.filter(course=OuterRef("pk"))
        .order_by()
        .values("course")
        .annotate(rows=JSONBAgg(JSONObject(**values), order_by=order))
        .values("rows")
    )


def _course_rows_query(patient_pk: int, course_pk: int):
    return (
        RadiotherapyCourse.objects.filter(patient_id=patient_pk, pk=course_pk)
        .annotate(
            rx_rows=_rows_of(Prescription, (*_PRESCRIPTION_FIELDS, "isodose_pct"), "pk"),
            fx_rows=_rows_of(Fraction, _FRACTION_FIELDS, "number"),
        )
        .order_by()
    )


# Compiled once per process (studies/compiled.py): building this SQL costs more than running it.
_COURSE_WITH_ROWS = CompiledQuery(_course_rows_query, arity=2)


def _course_with_rows(patient, course_pk: int) -> RadiotherapyCourse | None:
    """The course with its prescriptions (``rx_rows``) and fraction log (``fx_rows``) as JSON,
    in one query."""
    course = _COURSE_WITH_ROWS.first(patient.pk, int(course_pk))
    if course is not None:
        course.patient = patient
    return course


def _number(text: str | None, kind=Decimal):
    return kind(text) if text is not None else None


def _initial_rows(course) -> tuple[list[dict], list[dict]]:
    """Initial values of the prescription and fraction rows of a course read with its rows."""
    prescriptions = [
        {
            "lesion": int(row["lesion_id"]),
            "total_dose_gy": _number(row["total_dose_gy"]),
            "fractions": _number(row["fractions"], int),
            "dose_per_fraction_gy": _number(row["dose_per_fraction_gy"]),
            "isodose_pct": _number(row["isodose_pct"], int),
        }
        for row in course.rx_rows or []
    ]
    fractions = [
        {
            "number": int(row["number"]),
            "day": date.fromisoformat(row["day"]),
            "status": row["status"],
            "reason": row["reason"],
        }
        for row in course.fx_rows or []
    ]
    return prescriptions, fractions


def _formsets(data, patient, course, lesions):
    initial_p, initial_f = [], []
    if course is not None:
        initial_p, initial_f = _initial_rows(course)
    prescriptions = PrescriptionFormSet(
        data, prefix="rx", initial=initial_p, form_kwargs={"lesions": lesions}
    )
    fractions = FractionFormSet(data, prefix="fx", initial=initial_f)
    return prescriptions, fractions


def _course_lesions(patient, posted: bool) -> list[Lesion]:
    """The lesions every prescription row offers, read once; on a save with the baseline
    diameters the protocol checks use (the service takes them instead of reading them again)."""
    if posted:
        return list(services.course_lesions(patient).order_by("label"))
    return list(patient.lesions.exclude(category=Lesion.Category.NEW).order_by("label"))


@require_http_methods(["GET", "POST"])
def course_edit(request: HttpRequest, patient_pk: int, course_pk: int | None = None):
    patient = get_patient_for_user(request.user, patient_pk, write=True)
    require(_sees_doses(request.user, patient))  # STOP-2: the unblinded planner enters doses
    course = None
    if course_pk is not None:
        course = _course_with_rows(patient, course_pk)
        if course is None:
            raise Http404
    data = request.POST or None
    form = CourseForm(data, instance=course, editing=course is not None)
    lesions = _course_lesions(patient, posted=data is not None)
    prescriptions, fractions = _formsets(data, patient, course, lesions)
    problems, deviations = [], []
    if request.method == "POST" and all(f.is_valid() for f in (form, prescriptions, fractions)):
        try:
            _save(request, patient, course, form, prescriptions, fractions, lesions)
        except services.DeviationsToConfirm as asked:
            deviations = asked.deviations
        except ValidationError as error:
            problems = error.messages
        else:
            messages.success(request, _("SBRT course saved."))
            return redirect("patient_courses", patient_pk=patient.pk)
    return render(
        request,
        "treatments/course_form.html",
        {
            "patient": patient,
            "form": form,
            "prescriptions": prescriptions,
            "fractions": fractions,
            "problems": problems,
            "deviations": deviations,
            "course": course,
        },
    )


def _save(request, patient, course, form, prescriptions, fractions, lesions) -> None:
    data = {name: form.cleaned_data[name] for name in CourseForm.Meta.fields}
    services.course_record(
        lesions=lesions,
        patient=patient,
        by=request.user,
        data=data,
        course=course,
        reason=form.cleaned_data.get("reason", ""),
        confirmed=form.cleaned_data["confirm_deviations"],
        prescriptions=[
            services.PrescriptionRow(
                lesion=f.cleaned_data["lesion"],
                total_dose_gy=f.cleaned_data["total_dose_gy"],
                fractions=f.cleaned_data["fractions"],
                dose_per_fraction_gy=f.cleaned_data["dose_per_fraction_gy"],
                isodose_pct=f.cleaned_data["isodose_pct"],
            )
            for f in prescriptions.forms
            if f.cleaned_data.get("lesion")
        ],
        fractions=[
            services.FractionRow(
                number=f.cleaned_data["number"],
                day=f.cleaned_data["day"],
                status=f.cleaned_data["status"],
                reason=f.cleaned_data["reason"],
            )
            for f in fractions.forms
            if f.cleaned_data.get("number")
        ],
    )
