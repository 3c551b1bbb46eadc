"""Randomisation: concealed slots taken under a lock, run-in then randomised, strata."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from patients import services
from patients.models import Allocation
from studies.models import AllocationSlot, StratificationFactor
from studies.services import randomisation_list_generate
from tests.factories import UserFactory
from tests.patients.conftest import make_ready, site_of


def _stat():
    return UserFactory(username="stan_statistician")


@pytest.mark.django_db
def test_randomisation_needs_a_list(seeds, investigator):
    patient = make_ready(seeds["STEREOSARC"], investigator)
    with pytest.raises(ValidationError, match="No randomisation list"):
        services.patient_enrol(patient=patient, by=investigator)
    patient.refresh_from_db()
    assert patient.subject_id is None and not Allocation.objects.filter(patient=patient).exists()


@pytest.mark.django_db
def test_patients_take_the_lists_slots_in_order(seeds, investigator):
    sarc = seeds["STEREOSARC"]
    rlist = randomisation_list_generate(
        study=sarc, by=_stat(), seed="known-seed", slots_per_stratum=20
    )
    stratum = site_of(sarc).number
    expected = list(
        AllocationSlot.objects.filter(rlist=rlist, stratum=stratum)
        .order_by("sequence")
        .values_list("arm__code", flat=True)[:4]
    )
    got = []
    for n in range(4):
        patient = make_ready(sarc, investigator, number=f"R{n}")
        got.append(services.patient_enrol(patient=patient, by=investigator).arm.code)
    assert got == expected


@pytest.mark.django_db
def test_the_same_seed_gives_the_same_list(seeds):
    sarc, stat = seeds["STEREOSARC"], _stat()
    first = randomisation_list_generate(study=sarc, by=stat, seed="abc", slots_per_stratum=30)
    arms1 = list(first.slots.order_by("stratum", "sequence").values_list("arm__code", flat=True))
    first.is_active = False
    first.save()
    second = randomisation_list_generate(study=sarc, by=stat, seed="abc", slots_per_stratum=30)
    arms2 = list(second.slots.order_by("stratum", "sequence").values_list("arm__code", flat=True))
    assert arms1 == arms2 and len(arms1) == 30 * sarc.study_sites.count()


@pytest.mark.django_db
def test_strata_cross_sites_and_factors(seeds, investigator):
    sarc = seeds["STEREOSARC"]
    StratificationFactor.objects.create(study=sarc, name="ecog", label="ECOG", levels="0,1")
    randomisation_list_generate(study=sarc, by=_stat(), slots_per_stratum=10)
    patient = make_ready(sarc, investigator)
    with pytest.raises(ValidationError, match="stratification factor"):
        services.patient_enrol(patient=patient, by=investigator, strata={})
    allocation = services.patient_enrol(patient=patient, by=investigator, strata={"ecog": "1"})
    assert allocation.stratum == f"{site_of(sarc).number}|ecog=1"
    assert allocation.slot.sequence == 1


@pytest.mark.django_db
def test_the_atra_trial_runs_in_single_arm_then_randomises(seeds, investigator):
    atra = seeds["ATRA-SBRT"]
    atra.run_in_size = 2
    atra.save()
    randomisation_list_generate(study=atra, by=_stat(), slots_per_stratum=10)
    parts = []
    for n in range(3):
        patient = make_ready(atra, investigator, number=f"A{n}")
        allocation = services.patient_enrol(patient=patient, by=investigator)
        parts.append((allocation.part, allocation.arm.code if allocation.part == "run_in" else ""))
    assert parts == [("run_in", "SBRT_ATRA"), ("run_in", "SBRT_ATRA"), ("randomised", "")]


@pytest.mark.django_db(transaction=True)
def test_twenty_investigators_randomising_at_once_get_distinct_consecutive_slots(
    seeds, investigator
):
    sarc = seeds["STEREOSARC"]
    randomisation_list_generate(study=sarc, by=_stat(), slots_per_stratum=40)
    patients = [make_ready(sarc, investigator, number=f"C{n:02d}") for n in range(20)]
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def randomise(patient):
        try:
            barrier.wait()
            services.patient_enrol(patient=patient, by=investigator)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=randomise, args=(p,)) for p in patients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    sequences = sorted(
        Allocation.objects.filter(patient__in=patients).values_list("slot__sequence", flat=True)
    )
    assert sequences == list(range(1, 21))
    subject_ids = set(
        Allocation.objects.filter(patient__in=patients).values_list(
            "patient__subject_id", flat=True
        )
    )
    assert len(subject_ids) == 20
    taken = AllocationSlot.objects.filter(rlist__study=sarc, taken_at__isnull=False).count()
    assert taken == 20
