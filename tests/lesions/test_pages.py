"""The lesion pages: baseline form with RECIST rules, follow-up form, computed results shown."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from lesions import services
from lesions.models import ImagingAssessment, Lesion
from lesions.services import LesionRow, MeasurementRow
from tests.patients.conftest import today

pytestmark = pytest.mark.django_db


def _baseline_post(rows, days_ago=90):
    data = {
        "scan_date": (today() - timedelta(days=days_ago)).isoformat(),
        "modality": "CT",
        "lesions-TOTAL_FORMS": "6",
        "lesions-INITIAL_FORMS": "0",
        "lesions-MIN_NUM_FORMS": "0",
        "lesions-MAX_NUM_FORMS": "15",
    }
    for i, (label, organ, node, category, diameter) in enumerate(rows):
        data.update(
            {
                f"lesions-{i}-label": label,
                f"lesions-{i}-organ": organ,
                f"lesions-{i}-category": category,
                f"lesions-{i}-diameter_mm": diameter,
            }
        )
        if node:
            data[f"lesions-{i}-is_node"] = "on"
    return data


def test_the_baseline_form_saves_lesions_and_shows_the_page(enrolled, investigator, client):
    client.force_login(investigator)
    url = reverse("baseline_new", kwargs={"patient_pk": enrolled.pk})
    response = client.post(
        url,
        _baseline_post(
            [
                ("T1", "lung", False, "target", "30"),
                ("T2", "lymph node", True, "target", "16"),
                ("NT1", "bone", False, "non_target", ""),
            ]
        ),
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert list(enrolled.lesions.order_by("label").values_list("label", flat=True)) == [
        "NT1",
        "T1",
        "T2",
    ]
    page = client.get(reverse("patient_lesions", kwargs={"patient_pk": enrolled.pk}))
    assert "46.0" in page.content.decode()  # baseline sum


def test_unused_baseline_rows_are_left_out_as_a_browser_posts_them(enrolled, investigator, client):
    """A browser posts every row's selects: unused rows carry organ and category blanks."""
    data = _baseline_post([("T1", "lung", False, "target", "30")])
    for i in range(1, 6):
        data.update({f"lesions-{i}-category": "", f"lesions-{i}-organ": ""})
    client.force_login(investigator)
    response = client.post(reverse("baseline_new", kwargs={"patient_pk": enrolled.pk}), data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert enrolled.lesions.count() == 1


def test_the_baseline_form_names_the_broken_rule(enrolled, investigator, client):
    client.force_login(investigator)
    url = reverse("baseline_new", kwargs={"patient_pk": enrolled.pk})
    response = client.post(url, _baseline_post([("T1", "lung", False, "target", "8")]))
    assert response.status_code == 200
    assert "10 mm" in response.content.decode()
    assert not enrolled.lesions.exists()


def test_a_negative_or_absurd_diameter_is_refused_on_the_form(enrolled, investigator, client):
    client.force_login(investigator)
    url = reverse("baseline_new", kwargs={"patient_pk": enrolled.pk})
    html = client.post(url, _baseline_post([("T1", "lung", False, "target", "501")])).content
    assert "less than or equal to 500" in html.decode()
    assert not enrolled.lesions.exists()


def _setup(enrolled, investigator):
    services.baseline_record(
        patient=enrolled,
        by=investigator,
        scan_date=today() - timedelta(days=120),
        modality="CT",
        rows=[
            LesionRow("T1", "lung", False, "target", Decimal("30")),
            LesionRow("T2", "liver", False, "target", Decimal("16")),
        ],
    )


def test_the_follow_up_form_shows_previous_values_and_the_computed_response(
    enrolled, investigator, client
):
    _setup(enrolled, investigator)
    client.force_login(investigator)
    url = reverse("scan_new", kwargs={"patient_pk": enrolled.pk})
    page = client.get(url).content.decode()
    assert "30.0 mm" in page and "16.0 mm" in page
    t1, t2 = (enrolled.lesions.get(label=x).pk for x in ("T1", "T2"))
    response = client.post(
        url,
        {
            "scan_date": (today() - timedelta(days=60)).isoformat(),
            "modality": "CT",
            "new_lesions": "NO",
            "new-TOTAL_FORMS": "2",
            "new-INITIAL_FORMS": "0",
            "new-MIN_NUM_FORMS": "0",
            "new-MAX_NUM_FORMS": "10",
            f"m{t1}-state": "present",
            f"m{t1}-diameter_mm": "22",
            f"m{t2}-state": "present",
            f"m{t2}-diameter_mm": "10.2",
        },
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    page = client.get(reverse("patient_lesions", kwargs={"patient_pk": enrolled.pk}))
    html = page.content.decode()
    assert "-30.0 %" in html and ">PR<" in html
    assert "<svg" in html


def test_a_measured_state_without_diameter_is_refused(enrolled, investigator, client):
    _setup(enrolled, investigator)
    client.force_login(investigator)
    t1, t2 = (enrolled.lesions.get(label=x).pk for x in ("T1", "T2"))
    response = client.post(
        reverse("scan_new", kwargs={"patient_pk": enrolled.pk}),
        {
            "scan_date": (today() - timedelta(days=60)).isoformat(),
            "modality": "CT",
            "new_lesions": "NO",
            "new-TOTAL_FORMS": "0",
            "new-INITIAL_FORMS": "0",
            "new-MIN_NUM_FORMS": "0",
            "new-MAX_NUM_FORMS": "10",
            f"m{t1}-state": "present",
            f"m{t1}-diameter_mm": "",
            f"m{t2}-state": "disappeared",
        },
    )
    assert "Give the diameter" in response.content.decode()
    assert ImagingAssessment.objects.filter(patient=enrolled).count() == 1


def test_the_lesion_page_query_count_is_flat_as_scans_grow(
    enrolled, investigator, client, django_assert_max_num_queries
):
    _setup(enrolled, investigator)
    client.force_login(investigator)
    url = reverse("patient_lesions", kwargs={"patient_pk": enrolled.pk})
    lesions = {le.label: le.pk for le in Lesion.objects.filter(patient=enrolled)}

    def scan(days_ago):
        services.assessment_record(
            patient=enrolled,
            by=investigator,
            scan_date=today() - timedelta(days=days_ago),
            modality="CT",
            non_target_status="",
            new_lesions="NO",
            measurements={
                lesions["T1"]: MeasurementRow("present", Decimal("25")),
                lesions["T2"]: MeasurementRow("present", Decimal("12")),
            },
        )

    scan(100)
    with django_assert_max_num_queries(15) as small:
        assert client.get(url).status_code == 200
    for days in range(90, 10, -8):
        scan(days)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(url).status_code == 200


def test_correcting_the_baseline_needs_a_reason_and_recomputes(enrolled, investigator, client):
    from studies.audit import history_for

    _setup(enrolled, investigator)  # T1 30 + T2 16 = 46 mm
    lesions = {le.label: le for le in Lesion.objects.filter(patient=enrolled)}
    services.assessment_record(
        patient=enrolled,
        by=investigator,
        scan_date=today() - timedelta(days=60),
        modality="CT",
        non_target_status="",
        new_lesions="NO",
        measurements={
            lesions["T1"].pk: MeasurementRow("present", Decimal("22")),
            lesions["T2"].pk: MeasurementRow("present", Decimal("10.2")),
        },
    )
    client.force_login(investigator)
    url = reverse("baseline_edit", kwargs={"patient_pk": enrolled.pk})
    data = {
        "scan_date": (today() - timedelta(days=120)).isoformat(),
        "modality": "CT",
        f"lesion_{lesions['T1'].pk}": "40",
        f"lesion_{lesions['T2'].pk}": "16",
    }
    assert "This field is required." in client.post(url, data).content.decode()
    response = client.post(url, {**data, "reason": "T1 re-measured by the radiologist"})
    assert response.status_code == 302
    scan = ImagingAssessment.objects.get(patient=enrolled, is_baseline=False)
    assert scan.result.change_from_baseline_pct == Decimal("-42.5")  # 32.2 / 56
    measurement = lesions["T1"].measurements.get(assessment__is_baseline=True)
    assert history_for(measurement)[-1].reason == "T1 re-measured by the radiologist"


def test_a_correction_breaking_a_recist_rule_is_refused(enrolled, investigator, client):
    _setup(enrolled, investigator)
    t1 = Lesion.objects.get(patient=enrolled, label="T1")
    t2 = Lesion.objects.get(patient=enrolled, label="T2")
    client.force_login(investigator)
    response = client.post(
        reverse("baseline_edit", kwargs={"patient_pk": enrolled.pk}),
        {
            "scan_date": (today() - timedelta(days=120)).isoformat(),
            "modality": "CT",
            f"lesion_{t1.pk}": "8",
            f"lesion_{t2.pk}": "16",
            "reason": "typo",
        },
    )
    assert "10 mm" in response.content.decode()
    assert t1.measurements.get().diameter_mm == Decimal("30.0")


@pytest.mark.parametrize(
    ("into", "accepted"), [("other", True), ("self", False), ("unknown", False)]
)
def test_a_lesion_coalesces_only_into_another_target_of_the_patient(
    enrolled, investigator, client, into, accepted
):
    _setup(enrolled, investigator)
    client.force_login(investigator)
    t1, t2 = (enrolled.lesions.get(label=x).pk for x in ("T1", "T2"))
    target = {"other": t2, "self": t1, "unknown": t2 + 100_000}[into]
    response = client.post(
        reverse("scan_new", kwargs={"patient_pk": enrolled.pk}),
        {
            "scan_date": (today() - timedelta(days=60)).isoformat(),
            "modality": "CT",
            "new_lesions": "NO",
            "new-TOTAL_FORMS": "0",
            "new-INITIAL_FORMS": "0",
            "new-MIN_NUM_FORMS": "0",
            "new-MAX_NUM_FORMS": "10",
            f"m{t1}-state": "coalesced",
            f"m{t1}-coalesced_into": str(target),
            f"m{t2}-state": "present",
            f"m{t2}-diameter_mm": "40",
        },
    )
    refused = "Select a valid choice" in response.content.decode()
    assert refused is not accepted
    saved = ImagingAssessment.objects.filter(patient=enrolled).count() == 2
    assert saved is accepted
    if accepted:
        assert response.status_code == 302
