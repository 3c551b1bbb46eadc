"""Seed-trial fixtures shared with the patient and lesion tests."""

from tests.patients.conftest import investigator, seeds  # noqa: F401 - fixtures
