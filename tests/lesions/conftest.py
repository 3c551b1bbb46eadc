"""Reuse the seed-trial fixtures of the patient tests, and give an enrolled patient."""

from __future__ import annotations

import pytest

from patients import services as patient_services
from tests.patients.conftest import investigator, make_ready, seeds  # noqa: F401 - fixtures


@pytest.fixture
def enrolled(seeds, investigator):  # noqa: F811 - fixtures
    """An enrolled StORM-01 patient (single arm, confirmation of responses required)."""
    patient = make_ready(seeds["STORM-01"], investigator)
    patient_services.patient_enrol(patient=patient, by=investigator)
    patient.refresh_from_db()
    return patient
