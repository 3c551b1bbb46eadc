"""Rows read as JSON in a subquery and turned back into model instances (studies/jsonrows.py):
every field type of the visit models comes back as the ORM itself would load it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import OuterRef
from django.test.utils import CaptureQueriesContext

from patients.models import Patient, ScreeningLesion
from patients.models_visits import PlannedVisit
from studies.jsonrows import from_json_rows, json_row, json_rows
from studies.models import Study, VisitDefinition
from tests.factories import PatientFactory, StudyFactory, StudySiteFactory

pytestmark = pytest.mark.django_db

Kind, Anchor, State = VisitDefinition.Kind, VisitDefinition.Anchor, PlannedVisit.State


def _fields(instance) -> dict:
    """Every concrete field of ``instance`` by its ``repr``, so that ``1 == True``, a string for
    a date or ``Decimal("0.10000") == Decimal("0.1")`` would not pass."""
    return {f.attname: repr(getattr(instance, f.attname)) for f in instance._meta.concrete_fields}


def _assert_like_orm(read: list, loaded: list) -> None:
    """``read`` (from JSON) holds the rows of ``loaded`` (by the ORM), in the same order, as
    instances in the same state."""
    assert [_fields(obj) for obj in read] == [_fields(obj) for obj in loaded]
    for obj in read:
        assert type(obj) is type(loaded[0])
        assert obj._state.adding is False
        assert obj._state.db == "default"
        assert obj.get_deferred_fields() == set()


@pytest.fixture
def schedule():
    """A study with definitions covering every field's shapes, and a patient with visits:
    nullable integers and dates empty and set, booleans both ways, every choice."""
    study = StudyFactory(code="JSONROWS")
    other = StudyFactory(code="OTHER")
    patient = PatientFactory(study_site=StudySiteFactory(study=study))
    ct = VisitDefinition.objects.create(
        study=study,
        code="ct",
        name='CT « thorax » "every 8 weeks"\n',
        kind=Kind.IMAGING,
        anchor=Anchor.SBRT_END,
        offset_days=56,
        window_before_days=7,
        window_after_days=14,
        repeat_every_days=56,
        repeat_until_days=730,
        until_progression=True,
        source="protocol §7.2",
    )
    labs = VisitDefinition.objects.create(
        study=study,
        code="labs",
        name="Labs",
        kind=Kind.LABS,
        anchor=Anchor.ENROLMENT,
        offset_days=-3,
    )
    qol = VisitDefinition.objects.create(
        study=study, code="qol", name="QoL", kind=Kind.QOL, anchor=Anchor.ENROLMENT, offset_days=0
    )
    VisitDefinition.objects.create(
        study=other,
        code="ct",
        name="CT",
        kind=Kind.CLINICAL,
        anchor=Anchor.PROGRESSION,
        offset_days=1,
    )
    day = date(2024, 2, 29)
    for definition, occurrence, state, done_on, done_form, missed in (
        (ct, 1, State.DONE, date(2024, 12, 31), "scan:12", ""),
        (ct, 2, State.PLANNED, None, "", ""),
        (labs, 1, State.MISSED, None, "", "patient in hospital"),
        (qol, 1, State.NOT_APPLICABLE, None, "", ""),
        (qol, 2, State.DONE, date(2000, 1, 1), "", ""),
    ):
        PlannedVisit.objects.create(
            patient=patient,
            definition=definition,
            occurrence=occurrence,
            due_on=day,
            window_start=date(1999, 12, 31),
            window_end=date(2100, 1, 1),
            state=state,
            done_on=done_on,
            done_form=done_form,
            missed_reason=missed,
        )
    return study, patient


def test_visit_definitions_come_back_as_the_orm_loads_them(schedule):
    study, _patient = schedule
    definitions = VisitDefinition.objects.filter(study=OuterRef("pk")).order_by("-offset_days")
    read = Study.objects.annotate(rows=json_rows(definitions)).get(pk=study.pk)
    instances = from_json_rows(VisitDefinition, read.rows)
    loaded = list(VisitDefinition.objects.filter(study=study).order_by("-offset_days"))
    assert [d.code for d in instances] == ["ct", "qol", "labs"]  # the queryset's order
    _assert_like_orm(instances, loaded)
    ct = instances[0]
    assert (ct.repeat_every_days, ct.until_progression, ct.kind) == (56, True, "imaging")
    assert (instances[2].repeat_until_days, instances[2].until_progression) == (None, False)


def test_planned_visits_come_back_as_the_orm_loads_them(schedule):
    _study, patient = schedule
    visits = PlannedVisit.objects.filter(patient=OuterRef("pk")).order_by("definition_id", "pk")
    read = Patient.objects.annotate(rows=json_rows(visits)).get(pk=patient.pk)
    instances = from_json_rows(PlannedVisit, read.rows)
    loaded = list(PlannedVisit.objects.filter(patient=patient).order_by("definition_id", "pk"))
    assert len(instances) == 5
    _assert_like_orm(instances, loaded)
    assert {type(v.done_on) for v in instances} == {date, type(None)}
    assert {v.state for v in instances} == set(State.values)


def test_instances_can_be_changed_and_bulk_updated(schedule):
    _study, patient = schedule
    visits = PlannedVisit.objects.filter(patient=OuterRef("pk")).order_by("pk")
    read = Patient.objects.annotate(rows=json_rows(visits)).get(pk=patient.pk)
    instances = from_json_rows(PlannedVisit, read.rows)
    for visit in instances:
        visit.due_on, visit.done_on = date(2030, 1, 2), None
    with CaptureQueriesContext(connection) as queries:
        PlannedVisit.objects.bulk_update(instances, ["due_on", "done_on"])
    assert not any(q["sql"].lstrip().upper().startswith("INSERT") for q in queries)
    assert set(PlannedVisit.objects.filter(patient=patient).values_list("due_on", "done_on")) == {
        (date(2030, 1, 2), None)
    }
    assert PlannedVisit.objects.filter(patient=patient).count() == 5


def test_decimals_and_timestamps_keep_their_value():
    """Decimals are read as text (a JSON number would be a float); timestamps keep their time
    zone and microseconds."""
    patient = PatientFactory()
    for diameter in (Decimal("0.1"), Decimal("499.9"), None):
        ScreeningLesion.objects.create(patient=patient, organ="lung", diameter_mm=diameter)
    lesions = ScreeningLesion.objects.filter(patient=OuterRef("pk")).order_by("pk")
    read = Patient.objects.annotate(rows=json_rows(lesions)).get(pk=patient.pk)
    instances = from_json_rows(ScreeningLesion, read.rows)
    _assert_like_orm(
        instances, list(ScreeningLesion.objects.filter(patient=patient).order_by("pk"))
    )
    assert [lesion.diameter_mm for lesion in instances] == [Decimal("0.1"), Decimal("499.9"), None]

    site = patient.study_site
    patients = Patient.objects.filter(study_site=OuterRef("pk")).order_by("pk")
    rows = type(site).objects.annotate(rows=json_rows(patients)).get(pk=site.pk).rows
    again = from_json_rows(Patient, rows)
    _assert_like_orm(again, [Patient.objects.get(pk=patient.pk)])
    assert again[0].created_at.utcoffset() is not None


def test_some_fields_only_defer_the_others(schedule):
    _study, patient = schedule
    visits = PlannedVisit.objects.filter(patient=OuterRef("pk")).order_by("pk")
    rows = (
        Patient.objects.annotate(rows=json_rows(visits, ["id", "definition", "due_on"]))
        .get(pk=patient.pk)
        .rows
    )
    assert set(rows[0]) == {"id", "definition_id", "due_on"}
    visit = from_json_rows(PlannedVisit, rows)[0]
    assert visit.due_on == date(2024, 2, 29)
    assert "state" in visit.get_deferred_fields()
    assert "due_on" not in visit.get_deferred_fields()


def test_no_rows():
    patient = PatientFactory()
    visits = PlannedVisit.objects.filter(patient=OuterRef("pk"))
    rows = Patient.objects.annotate(rows=json_rows(visits)).get(pk=patient.pk).rows
    assert rows == []
    assert from_json_rows(PlannedVisit, rows) == []
    assert from_json_rows(PlannedVisit, None) == []


def test_fields_are_checked():
    with pytest.raises(ValueError, match="no concrete field"):
        json_row(PlannedVisit, ["id", "nonsense"])
    with pytest.raises(ValueError, match="primary key"):
        json_row(PlannedVisit, ["due_on"])
