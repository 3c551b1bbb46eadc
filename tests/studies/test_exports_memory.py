"""Exports stream: the peak memory of an export of a study ten times larger stays within 1.2 times
the peak of the smaller one (measured with tracemalloc, in process, every format).

Measured: peaks of 0.67-0.84 MB for 30 and 300 patients, ratios 1.01-1.05 (no constant floor
needed). Reading the tables in one fetch instead (CHUNK = 100000) makes the CSV peak 2.6 times
larger: the test fails, as it should."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import date, timedelta
from decimal import Decimal

import pytest

from lesions.models import ImagingAssessment, Lesion, Measurement, PatientResponse, TimepointResult
from patients.ctcae_terms import ensure_terms as ensure_ctcae_terms
from patients.models import AdverseEvent, Allocation, Consent, CtcaeTerm, LabResult, Patient
from studies.exports import export_study
from studies.models import Arm
from studies.roles import Role
from tests.factories import (
    ArmFactory,
    MembershipFactory,
    StudyFactory,
    StudySiteFactory,
    UserFactory,
)
from treatments.models import Fraction, Prescription, RadiotherapyCourse

pytestmark = pytest.mark.django_db

N = 30
#: Rows per server-side cursor fetch during the test: smaller than every table of the small study,
#: so both sizes are read in several chunks (with the default of 1000 the small study would fit in
#: one chunk and the test would compare a partial chunk with a full one, not growth with size).
CHUNK = 20
START = date(2025, 1, 6)


def _add_patients(site, arm, user, first: int, count: int) -> None:
    patients = Patient.objects.bulk_create(
        Patient(
            study_site=site,
            subject_id=f"MEM-{n:05d}",
            status=Patient.Status.FOLLOW_UP,
            sex="F",
            year_of_birth=1960,
            enrolled_on=START,
        )
        for n in range(first, first + count)
    )
    Allocation.objects.bulk_create(
        Allocation(patient=p, arm=arm, part="randomised", allocated_by=user) for p in patients
    )
    Consent.objects.bulk_create(
        Consent(patient=p, consented_on=START, form_version="v1", obtained_by=user)
        for p in patients
    )
    lesions = Lesion.objects.bulk_create(
        Lesion(patient=p, label=f"T{i}", organ="lung", category="target")
        for p in patients
        for i in (1, 2)
    )
    scans = ImagingAssessment.objects.bulk_create(
        ImagingAssessment(
            patient=p, scan_date=START + timedelta(days=d), modality="CT", is_baseline=d == 0
        )
        for p in patients
        for d in (0, 60, 120)
    )
    by_patient = {}
    for lesion in lesions:
        by_patient.setdefault(lesion.patient_id, []).append(lesion)
    Measurement.objects.bulk_create(
        Measurement(assessment=s, lesion=le, diameter_mm=Decimal(20))
        for s in scans
        for le in by_patient[s.patient_id]
    )
    TimepointResult.objects.bulk_create(
        TimepointResult(assessment=s, sum_mm=Decimal(40), target="SD", overall="SD")
        for s in scans
        if not s.is_baseline
    )
    PatientResponse.objects.bulk_create(
        PatientResponse(patient=p, best_overall_response="SD") for p in patients
    )
    courses = RadiotherapyCourse.objects.bulk_create(
        RadiotherapyCourse(patient=p, technique="linac", planned_start=START) for p in patients
    )
    first_lesion = {p.pk: by_patient[p.pk][0] for p in patients}
    Prescription.objects.bulk_create(
        Prescription(
            course=c,
            lesion=first_lesion[c.patient_id],
            total_dose_gy=Decimal(27),
            fractions=3,
            dose_per_fraction_gy=Decimal(9),
        )
        for c in courses
    )
    Fraction.objects.bulk_create(
        Fraction(course=c, number=n, day=START + timedelta(days=n))
        for c in courses
        for n in (1, 2, 3)
    )
    term = CtcaeTerm.objects.get(term="Pneumonitis")
    AdverseEvent.objects.bulk_create(
        AdverseEvent(
            patient=p,
            term=term,
            grade=2,
            onset_on=START + timedelta(days=30 + i),
            attribution_sbrt="possible",
            attribution_systemic="unrelated",
            outcome="recovered",
        )
        for p in patients
        for i in (0, 1)
    )
    LabResult.objects.bulk_create(
        LabResult(
            patient=p,
            sampled_on=START + timedelta(days=d),
            analyte="lymphocytes",
            value=Decimal("1.1"),
            unit="G/L",
            value_standard=Decimal("1.1"),
            standard_unit="10^9/L",
        )
        for p in patients
        for d in (10, 40, 70, 100)
    )


def _peak(study, user, fmt: str, path) -> tuple[int, int]:
    """(peak bytes allocated during the export, rows written)."""
    gc.collect()
    tracemalloc.start()
    try:
        rows = export_study(
            study,
            user,
            fmt,
            path,
            blinded=False,
            include_audit=fmt == "odm",
            chunk_size=CHUNK,
        )
        return tracemalloc.get_traced_memory()[1], rows
    finally:
        tracemalloc.stop()


def test_the_peak_memory_of_a_ten_times_larger_export_stays_within_one_point_two(tmp_path):
    ensure_ctcae_terms()
    study = StudyFactory(code="MEM")
    arm = ArmFactory(study=study, code="A")
    ArmFactory(study=study, code="B")
    site = StudySiteFactory(study=study, number="01")
    user = UserFactory(username="mem_statistician")
    MembershipFactory(user=user, study=study, role=Role.STATISTICIAN, blinded=False)
    investigator = UserFactory(username="mem_investigator")
    formats = ("csv", "odm", "sdtm")
    _add_patients(site, arm, investigator, 0, N)
    for fmt in formats:  # warm up: imports, query compilation, translation catalogues
        export_study(study, user, fmt, tmp_path / f"warm.{fmt}", blinded=False, chunk_size=CHUNK)
    small = {fmt: _peak(study, user, fmt, tmp_path / f"small.{fmt}") for fmt in formats}
    _add_patients(site, arm, investigator, N, 9 * N)
    assert Patient.objects.filter(study_site=site).count() == 10 * N
    assert Arm.objects.filter(study=study).count() == 2
    large = {fmt: _peak(study, user, fmt, tmp_path / f"large.{fmt}") for fmt in formats}
    for fmt in formats:
        (small_peak, small_rows), (large_peak, large_rows) = small[fmt], large[fmt]
        assert large_rows >= 9 * small_rows  # ten times the data was written
        assert large_peak <= 1.2 * small_peak, (fmt, small_peak, large_peak)
