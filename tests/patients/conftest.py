"""Seed trials with one investigator per study, and helpers to walk a patient to enrolment."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from patients import services
from patients.models import ScreeningLab, ScreeningLesion
from studies.models import Study, StudySite
from studies.roles import Role
from tests.factories import MembershipFactory, UserFactory


@pytest.fixture
def seeds(db):
    call_command("load_seed_trials", verbosity=0)
    return {s.code: s for s in Study.objects.all()}


def site_of(study: Study) -> StudySite:
    return study.study_sites.order_by("number").first()


@pytest.fixture
def investigator(seeds):
    """An investigator at the first site of every seed study."""
    user = UserFactory(username="ivy_investigator")
    for study in seeds.values():
        MembershipFactory(
            user=user, study=study, study_site=site_of(study), role=Role.INVESTIGATOR, blinded=True
        )
    return user


def today() -> date:
    return timezone.localdate()


def screen(study: Study, by, number: str = "S001", **extra):
    data = {
        "screening_number": number,
        "screened_on": today(),
        "sex": "F",
        "age_at_consent": 64,
        **extra,
    }
    return services.patient_screen(study_site=site_of(study), by=by, **data)


def fill_facts(patient, *, ecog=1, lesions=(("lung", "22"), ("liver", "31")), **extra):
    facts = patient.facts
    values = {
        "ecog": ecog,
        "current_line": 1,
        "prior_lines": 1,
        "liver_metastases": False,
        "restaging_on": today() - timedelta(days=20),
        "planned_treatment_start": today() + timedelta(days=7),
        "childbearing_potential": False,
        **extra,
    }
    for name, value in values.items():
        setattr(facts, name, value)
    facts.save()
    for organ, diameter in lesions:
        ScreeningLesion.objects.create(patient=patient, organ=organ, diameter_mm=Decimal(diameter))


def fill_stereosarc_labs(patient):
    sampled = today() - timedelta(days=3)
    for analyte, value, unit, uln in (
        ("anc", "2000", "/uL", None),
        ("platelets", "150000", "/uL", None),
        ("haemoglobin", "12", "g/dL", None),
        ("creatinine", "80", "umol/L", "100"),
        ("bilirubin", "10", "umol/L", "17"),
        ("ast", "30", "U/L", "40"),
        ("alt", "30", "U/L", "40"),
    ):
        ScreeningLab.objects.create(
            patient=patient,
            analyte=analyte,
            value=Decimal(value),
            unit=unit,
            uln=Decimal(uln) if uln else None,
            sampled_on=sampled,
        )


def answer_all(patient, by, *, overrides=None):
    """Answer every criterion as the computed result says, or as satisfied when not computed."""
    answers = {}
    for check in services.eligibility_checks(patient):
        answers[check.criterion.pk] = check.outcome != "not_met"
    answers.update(overrides or {})
    return services.eligibility_answer(patient=patient, answers=answers, by=by)


def make_ready(study: Study, by, number: str = "S001"):
    """Screen, enter eligible data, answer the checklist and record consent."""
    patient = screen(study, by, number)
    fill_facts(patient)
    if study.code == "STEREOSARC":
        fill_stereosarc_labs(patient)
    answer_all(patient, by)
    services.consent_record(patient=patient, consented_on=today(), form_version="v2.1", by=by)
    patient.refresh_from_db()
    return patient
