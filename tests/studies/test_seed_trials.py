"""load_seed_trials creates the five seed trials as the registry pages describe them."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db.models import Count

from studies.audit import event_model_for
from studies.models import Arm, Site, Study, StudySite

pytestmark = pytest.mark.django_db

EXPECTED = {
    # code: (registry id, phase, design, blinding, target, arms, sites)
    "STORM-01": ("NCT04299646", "PHASE2", "single_arm", "open", 77, 1, 30),
    "STORM-01-R": ("", "PHASE2", "randomised", "open", None, 2, 1),
    "STEREOSARC": ("NCT03548428", "PHASE2", "randomised", "open", 103, 2, 17),
    "ATRA-SBRT": ("NCT06439888", "PHASE1_2", "run_in_randomised", "open", 52, 2, 1),
    "STOP-2": ("NCT06918951", "PHASE3", "randomised", "double_blind", 194, 2, 1),
}


def _snapshot():
    return (
        list(Study.objects.order_by("pk").values()),
        list(Arm.objects.order_by("pk").values()),
        list(Site.objects.order_by("pk").values()),
        list(StudySite.objects.order_by("pk").values()),
    )


def _event_total():
    return sum(event_model_for(m).objects.count() for m in (Study, Arm, Site, StudySite))


def test_the_five_seed_trials_match_their_registry_pages():
    call_command("load_seed_trials", verbosity=0)
    studies = Study.objects.annotate(
        n_arms=Count("arms", distinct=True), n_sites=Count("study_sites", distinct=True)
    )
    found = {
        s.code: (
            s.registry_id,
            s.phase,
            s.design,
            s.blinding,
            s.target_enrolment,
            s.n_arms,
            s.n_sites,
        )
        for s in studies
    }
    assert found == EXPECTED


def test_site_lists_carry_cities_and_recruitment_statuses():
    call_command("load_seed_trials", verbosity=0)
    storm = StudySite.objects.filter(study__code="STORM-01").select_related("site")
    recruiting = {ss.site.city for ss in storm if ss.recruitment_status == "RECRUITING"}
    assert recruiting == {
        "Angers",
        "Caen",
        "Dijon",
        "Lille",
        "Nantes",
        "Tarbes",
        "Valence",
        "Villejuif",
    }
    first = storm.get(number="01")
    assert (first.site.institution, first.site.city) == ("Clinique Claude Bernard", "Albi")
    assert first.recruitment_status == "NOT_YET_RECRUITING"
    sarc = Study.objects.get(code="STEREOSARC")
    assert sarc.title.startswith("Stereotaxic Body Irradiation of Oligometastase in Sarcoma")
    assert set(sarc.arms.values_list("name", flat=True)) == {"SBRT + Atezolizumab", "SBRT"}


def test_loading_twice_changes_nothing_and_writes_no_audit_row():
    call_command("load_seed_trials", verbosity=0)
    before, events = _snapshot(), _event_total()
    call_command("load_seed_trials", verbosity=0)
    assert _snapshot() == before
    assert _event_total() == events


def test_seed_loading_is_attributed_in_the_audit_trail():
    call_command("load_seed_trials", verbosity=0)
    event = event_model_for(Study).objects.filter(pgh_obj__code="STOP-2").get()
    assert event.pgh_context.metadata["command"] == "load_seed_trials"
