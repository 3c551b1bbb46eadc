"""Saves that write their rows in bulk (scan measurements, SBRT course fractions) are audited
row by row: who, when, old and new value, and the reason given on the form."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from lesions.models import Measurement
from studies.audit import event_model_for, history_for
from tests.cross import budget_world
from tests.cross.test_query_budget import SMALL, _edited
from tests.patients.conftest import investigator, seeds  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def _post_edited(w, name: str, key: str, obj) -> None:
    client = Client()
    client.force_login(w.investigator)
    url = reverse(name, kwargs={"patient_pk": w.patient.pk, key: obj.pk})
    data = _edited(name, budget_world.form_data(client.get(url).content.decode()))
    data["reason"] = ["Transcription error corrected"]
    assert client.post(url, data).status_code == 302


def _last_change(obj, field: str):
    entries = [e for e in history_for(obj) if any(c.field == field for c in e.changes)]
    assert entries, f"no audited change of {field}"
    entry = entries[-1]
    return entry, next(c for c in entry.changes if c.field == field)


def test_a_corrected_measurement_is_audited_with_its_reason(seeds, investigator):  # noqa: F811
    w = budget_world.build(seeds, investigator, **SMALL)
    measurement = w.scan.measurements.exclude(diameter_mm=None).order_by("lesion__label").first()
    before = measurement.diameter_mm
    _post_edited(w, "scan_edit", "scan_pk", w.scan)
    measurement.refresh_from_db()
    assert measurement.diameter_mm != before
    entry, change = _last_change(measurement, "diameter_mm")
    assert entry.action == "update"
    assert entry.reason == "Transcription error corrected"
    assert entry.user == str(w.investigator)
    assert change.old == before and change.new == measurement.diameter_mm


def test_a_corrected_fraction_is_audited_with_its_reason(seeds, investigator):  # noqa: F811
    w = budget_world.build(seeds, investigator, **SMALL)
    fraction = w.course.fraction_log.order_by("number").first()
    _post_edited(w, "course_edit", "course_pk", w.course)
    fraction.refresh_from_db()
    assert fraction.reason.endswith("x")
    entry, change = _last_change(fraction, "reason")
    assert entry.action == "update"
    assert entry.reason == "Transcription error corrected"
    assert entry.user == str(w.investigator)
    assert change.new == fraction.reason


def test_a_scan_saved_again_unchanged_writes_no_audit_row(seeds, investigator):  # noqa: F811
    """The measurements are upserted in one statement: unchanged rows get no audit event."""
    w = budget_world.build(seeds, investigator, **SMALL)
    events = event_model_for(Measurement).objects
    before = events.count()
    client = Client()
    client.force_login(w.investigator)
    url = reverse("scan_edit", kwargs={"patient_pk": w.patient.pk, "scan_pk": w.scan.pk})
    data = budget_world.form_data(client.get(url).content.decode())
    data["reason"] = ["Saved again as it was"]
    assert client.post(url, data).status_code == 302
    assert events.count() == before
    data = _edited("scan_edit", data)  # one diameter changed: one audited row
    assert client.post(url, data).status_code == 302
    assert events.count() == before + 1
