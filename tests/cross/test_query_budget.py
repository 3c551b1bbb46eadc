"""Query budgets (issue #9): each page and changelist runs few SQL queries, and the same number
whatever the amount of data.

The pages are measured on a small site (3 documented patients; the measured patient has 2 of each
repeated record: scans, lines, adverse events, lab samples), then again once the site has grown
tenfold (30 patients; the measured patient has 20 of each).  At both sizes the count must stay
within the page's budget, and be the same: a query per row would show as growth.

Counts are those of ``django_assert_max_num_queries``, inside the test's transaction: they include
7 queries of every authenticated request (session, user, memberships, the two-factor check, and
the session save wrapped in a savepoint pair).  The timings are measured by ``make bench``.
"""

from __future__ import annotations

import re
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from lesions.models import ImagingAssessment, Lesion, Measurement
from patients.ctcae_terms import ensure_terms
from patients.models import AdverseEvent, CtcaeTerm, LabResult, Patient
from studies.admin_base import CappedCountPaginator
from studies.audit import event_model_for
from studies.roles import Role
from tests.cross import budget_world
from tests.factories import MembershipFactory, PatientFactory, UserFactory
from tests.patients.conftest import investigator, seeds  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

PAGE_BUDGET = 12
CHANGELIST_BUDGET = 10
# Saving a form runs the service within the page budget too: locks, checks, the audited write,
# the engines (RECIST, protocol deviations, visit plan) and the automatic edit checks; a
# follow-up scan with its measurements and an SBRT course with its prescriptions, fractions and
# deviations included, whatever their number.
SAVEPOINT = re.compile(r'(^|;\s*)(RELEASE )?SAVEPOINT "[^"]+"\s*$')
POST_BUDGET = dict.fromkeys(
    ("ae_edit", "lab_edit", "line_edit", "scan_edit", "course_edit"), PAGE_BUDGET
)
CHANGELISTS = (
    "patients_patient",
    "patients_adverseevent",
    "patients_labresult",
    "patients_patientevent",
    "patients_adverseeventevent",
    "patients_labresultevent",
    "lesions_measurementevent",
)
SMALL = {"patients": 3, "records": 2}
LARGE = {"patients": 30, "records": 20}


def _site_pages(w) -> dict[str, str]:
    site = {"site_pk": w.study_site.pk}
    return {
        name: reverse(name, kwargs=site)
        for name in ("study_site_detail", "patient_list", "site_forms", "site_visits")
    }


def _patient_pages(w) -> dict[str, str]:
    p = w.patient.pk
    pages = {
        name: reverse(name, kwargs={"patient_pk": p})
        for name in (
            "casebook",
            "patient_detail",
            "patient_consent",
            "patient_facts",
            "patient_lesions",
            "patient_visits",
            "patient_aes",
            "patient_labs",
            "patient_courses",
            "patient_lines",
            "patient_drug",
        )
    }
    for name, key, obj in (
        ("scan_edit", "scan_pk", w.scan),
        ("course_edit", "course_pk", w.course),
        ("line_edit", "line_pk", w.line),
        ("ae_edit", "ae_pk", w.ae),
        ("ae_edit (serious)", "ae_pk", w.serious_ae),
        ("lab_edit", "lab_pk", w.lab),
        ("cycle_edit", "cycle_pk", w.cycle),
    ):
        url_name = name.split(" ")[0]
        pages[name] = reverse(url_name, kwargs={"patient_pk": p, key: obj.pk})
    return pages


def _edited(name: str, data: dict[str, list[str]]) -> dict[str, list[str]]:
    """The page's own form, posted back with one value changed and a reason for change."""
    data = {**data, "reason": ["Query budget check"]}
    if name == "lab_edit":
        data["value"] = [str(D(data["value"][0]) + D("0.1"))]
    elif name == "ae_edit":
        data["grade"] = ["2" if data["grade"][0] == "1" else "1"]
    elif name == "line_edit":
        data["stop_detail"] = [data.get("stop_detail", [""])[0] + "x"]
    elif name == "course_edit":
        key = next(k for k in data if k.startswith("fx-") and k.endswith("-reason"))
        data[key] = [data[key][0] + "x"]
        data["confirm_deviations"] = ["on"]  # the deviations were confirmed when first saved
    elif name == "scan_edit":
        key = next(k for k in data if k.endswith("-diameter_mm"))
        data[key] = [str(D(data[key][0]) + D("0.5"))]
    return data


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _measure(w, assert_max) -> dict[str, int]:
    """Query count of every page, form submission and changelist, each within its budget."""
    counts: dict[str, int] = {}
    investigator_ = _client(w.investigator)

    def get(client, label, url, budget):
        client.get(url)  # warm: per-process caches (content types, templates) are not the page's
        with assert_max(budget, info=label) as captured:
            assert client.get(url).status_code == 200, label
        counts[label] = len(captured.captured_queries)

    for name, url in {**_site_pages(w), **_patient_pages(w)}.items():
        get(investigator_, name, url, PAGE_BUDGET)
    get(_client(w.users["monitor"]), "casebook (monitor)", _patient_pages(w)["casebook"], 12)
    for name, budget in POST_BUDGET.items():
        url = _patient_pages(w)[name]
        data = _edited(name, budget_world.form_data(investigator_.get(url).content.decode()))
        with assert_max(budget + 4, info=f"POST {name}") as captured:
            response = investigator_.post(url, data)
        assert response.status_code == 302, f"POST {name}: {response.status_code}"
        # In production the view's transaction is a BEGIN and a COMMIT of the connection, not
        # statements; inside the test's transaction it becomes a SAVEPOINT and its RELEASE.
        statements = [q for q in captured.captured_queries if not SAVEPOINT.search(q["sql"])]
        assert len(statements) <= budget, f"POST {name}: {len(statements)} > {budget}"
        counts[f"POST {name}"] = len(statements)
    data_manager = _client(w.users["data_manager"])
    for name in CHANGELISTS:
        get(data_manager, name, reverse(f"admin:{name}_changelist"), CHANGELIST_BUDGET)
    return counts


def test_pages_and_changelists_stay_within_budget_as_the_site_grows_tenfold(
    seeds,  # noqa: F811 - fixture
    investigator,  # noqa: F811 - fixture
    django_assert_max_num_queries,
):
    w = budget_world.build(seeds, investigator, **SMALL)
    small = _measure(w, django_assert_max_num_queries)
    budget_world.grow(
        w,
        LARGE["patients"] - SMALL["patients"],
        records=LARGE["records"] - SMALL["records"],
    )
    assert Patient.objects.filter(study_site=w.study_site).count() == LARGE["patients"]
    assert w.patient.adverse_events.filter(serious=False).count() == LARGE["records"]
    large = _measure(w, django_assert_max_num_queries)
    grew = {page: (small[page], large[page]) for page in small if small[page] != large[page]}
    assert not grew, f"query counts changed with the size of the data: {grew}"


# --- the audit changelists ---------------------------------------------------------------------


def _patient_records(patient) -> None:
    """An adverse event, a lab result and a measured lesion (each writes its audit event)."""
    ensure_terms()
    AdverseEvent.objects.create(
        patient=patient,
        term=CtcaeTerm.objects.get(term="Fatigue"),
        grade=2,
        onset_on="2026-01-20",
        attribution_sbrt="possible",
        attribution_systemic="unlikely",
        outcome="recovering",
    )
    LabResult.objects.create(
        patient=patient,
        sampled_on="2026-01-20",
        analyte="lymphocytes",
        value=450,
        unit="/mm3",
        value_standard=D("0.45"),
        standard_unit="10^9/L",
    )
    scan = ImagingAssessment.objects.create(patient=patient, scan_date="2026-01-05", modality="CT")
    lesion = Lesion.objects.create(patient=patient, label="T1", organ="lung", category="target")
    Measurement.objects.create(assessment=scan, lesion=lesion, diameter_mm=D("21"))


AUDITED = {
    Patient: lambda p: [p.pk],
    AdverseEvent: lambda p: list(p.adverse_events.values_list("pk", flat=True)),
    LabResult: lambda p: list(p.lab_results.values_list("pk", flat=True)),
    Measurement: lambda p: list(
        Measurement.objects.filter(assessment__patient=p).values_list("pk", flat=True)
    ),
}


def _listed_ids(html: str) -> set[int]:
    """The audited records' ids in the changelist's "pgh_obj_id" column."""
    return {int(v) for v in re.findall(r'<td class="field-pgh_obj_id">(\d+)</td>', html)}


@pytest.fixture
def audited(world):
    for patient in (world.patient_a, world.patient_b, world.patient_c):
        _patient_records(patient)
    site_monitor = UserFactory(username="mia_site_monitor", is_staff=True)
    MembershipFactory(user=site_monitor, study=world.s1, study_site=world.site_a, role=Role.MONITOR)
    world.users["mia_site_monitor"] = site_monitor
    return world


@pytest.mark.parametrize("model", list(AUDITED), ids=lambda m: m.__name__)
def test_a_data_manager_reads_the_audit_trail_of_patient_data_and_a_site_monitor_their_site(
    audited, login, model
):
    event = event_model_for(model)
    url = reverse(f"admin:{event._meta.app_label}_{event._meta.model_name}_changelist")
    own, other_site, other_study = (
        AUDITED[model](p) for p in (audited.patient_a, audited.patient_b, audited.patient_c)
    )
    response = login(audited.user("dora_datamanager")).get(url)
    assert response.status_code == 200
    listed = _listed_ids(response.content.decode())
    assert set(own) | set(other_site) <= listed  # every site of the data manager's study
    assert not set(other_study) & listed

    client = login(audited.user("mia_site_monitor"))
    listed = _listed_ids(client.get(url).content.decode())
    assert set(own) <= listed
    assert not (set(other_site) | set(other_study)) & listed
    # Another site's event is not found, not even by its address.
    hidden = event.objects.filter(pgh_obj_id=other_site[0]).first()
    change = reverse(
        f"admin:{event._meta.app_label}_{event._meta.model_name}_change", args=[hidden.pk]
    )
    assert client.get(change).status_code == 404
    assert login(audited.user("alice_pi")).get(url).status_code in (302, 403)  # no audit role


def test_the_audit_search_finds_one_records_events_by_its_id_only(audited, login):
    client = login(audited.user("dora_datamanager"))
    url = reverse("admin:patients_patientevent_changelist")
    found = _listed_ids(client.get(url, {"q": str(audited.patient_a.pk)}).content.decode())
    assert found == {audited.patient_a.pk}
    assert not _listed_ids(client.get(url, {"q": "S1-01"}).content.decode())


def test_the_capped_paginator_counts_no_further_than_its_cap(world, login, monkeypatch):
    for _n in range(4):
        PatientFactory(study_site=world.site_a)
    events = event_model_for(Patient).objects.order_by("-pgh_id")
    assert events.count() > 5
    with CaptureQueriesContext(connection) as captured:
        paginator = type("Capped", (CappedCountPaginator,), {"cap": 5})(events, 2)
        assert (paginator.count, paginator.capped, paginator.num_pages) == (5, True, 3)
    [sql] = [q["sql"] for q in captured.captured_queries]
    assert "COUNT(*)" in sql and "LIMIT 6" in sql
    assert not CappedCountPaginator(events.filter(pgh_obj_id=world.patient_a.pk), 2).capped

    monkeypatch.setattr(CappedCountPaginator, "cap", 3)
    client = login(world.user("dora_datamanager"))
    with CaptureQueriesContext(connection) as captured:
        html = client.get(reverse("admin:patients_patientevent_changelist")).content.decode()
    assert 'data-testid="capped-count"' in html
    counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT" in sql for sql in counts), "an uncapped count was run"
    assert not [q for q in captured.captured_queries if "DISTINCT" in q["sql"]]


# --- the study dashboard ---------------------------------------------------------------------


def test_the_dashboard_of_a_site_monitor_reads_the_forms_of_their_site_only(world, login):
    monitor = UserFactory(username="mia_site_monitor", is_staff=True)
    MembershipFactory(user=monitor, study=world.s1, study_site=world.site_a, role=Role.MONITOR)
    url = reverse("study_dashboard", kwargs={"study_pk": world.s1.pk})

    def form_query_ids(user) -> set[int]:
        with CaptureQueriesContext(connection) as captured:
            assert login(user).get(url).status_code == 200
        [sql] = [q["sql"] for q in captured.captured_queries if "patients_consent t" in q["sql"]]
        [ids] = set(re.findall(r"ANY\('\{([\d,]*)\}'", sql))
        return {int(i) for i in ids.split(",") if i}

    assert form_query_ids(monitor) == {world.patient_a.pk}
    assert form_query_ids(world.user("dora_datamanager")) == {
        world.patient_a.pk,
        world.patient_b.pk,
    }
