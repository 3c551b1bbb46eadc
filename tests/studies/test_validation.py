"""LoadedRelationsMixin: full_clean() without a query per foreign key already read."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import PatientFactory
from treatments.models import SystemicLine

pytestmark = pytest.mark.django_db


def _patient_queries(captured) -> list[str]:
    return [q["sql"] for q in captured if 'FROM "patients_patient"' in q["sql"]]


def test_a_foreign_key_read_in_this_request_is_not_queried_again():
    patient = PatientFactory()
    line = SystemicLine(patient=patient, line_number=1, start=date(2025, 1, 6))
    with CaptureQueriesContext(connection) as captured:
        line.full_clean()
    assert _patient_queries(captured) == []


def test_a_key_that_no_longer_matches_its_object_is_checked_and_refused():
    patient = PatientFactory()
    line = SystemicLine(patient=patient, line_number=1, start=date(2025, 1, 6))
    line.patient_id = patient.pk + 100_000  # drops the cached patient
    with CaptureQueriesContext(connection) as captured, pytest.raises(ValidationError) as error:
        line.full_clean()
    assert "patient" in error.value.message_dict
    assert len(_patient_queries(captured)) == 1


def test_other_field_errors_are_still_reported():
    line = SystemicLine(patient=PatientFactory(), line_number=None, start=None)
    with pytest.raises(ValidationError) as error:
        line.full_clean()
    assert {"line_number", "start"} <= set(error.value.message_dict)
    assert "patient" not in error.value.message_dict
