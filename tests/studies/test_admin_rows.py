"""The sponsor's changelists (issue #9): rows rendered once per column, the same HTML as Django's,
and filters that list only the studies and sites of the user's scope."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.urls import reverse

from lesions.models import Measurement
from patients.models import AdverseEvent, LabResult, Patient
from studies.admin_rows import FastChangeList
from studies.audit import event_model_for
from tests.cross.test_query_budget import _patient_records
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

#: Changelists and a query string that sorts, filters (preserved in the change links) or pages.
PAGES = [
    (Patient, ""),
    (Patient, "?o=-3.1&q=S1"),
    (AdverseEvent, ""),
    (AdverseEvent, "?grade=2"),
    (LabResult, "?o=2"),
    (event_model_for(Measurement), ""),
    (event_model_for(AdverseEvent), "?pgh_label=insert"),
]


def _url(model, query: str) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist") + query


def _page(client, url: str, language: str) -> str:
    html = client.get(url, headers={"accept-language": language}).content.decode()
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)


@pytest.fixture
def records(world):
    for patient in (world.patient_a, world.patient_b, world.patient_c):
        _patient_records(patient)
    world.users["root"] = UserFactory(username="root", is_staff=True, is_superuser=True)
    return world


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("username", ["dora_datamanager", "root"])
def test_changelist_rows_are_djangos_html_cell_for_cell(
    records, login, monkeypatch, username, language
):
    client = login(records.user(username))
    for model, query in PAGES:
        url = _url(model, query)
        ours = _page(client, url, language)
        assert "<tbody>" in ours and 'class="field-' in ours, url
        with monkeypatch.context() as django_rows:
            django_rows.setattr(FastChangeList, "rows_context", lambda self: None)
            djangos = _page(client, url, language)
        assert ours == djangos, url


def test_every_sponsor_list_renders_its_rows_once_per_column(records, login):
    """Every changelist of the panel built on FastChangeList answers, with the same rows as
    Django's own rendering would list."""
    client = login(records.user("root"))
    for model, model_admin in admin.site._registry.items():
        if model_admin.get_changelist(None) is not FastChangeList:
            continue
        response = client.get(_url(model, ""))
        assert response.status_code == 200, model


def test_list_filters_offer_only_the_studies_and_sites_of_the_users_scope(records, login):
    url = _url(Patient, "")
    html = login(records.user("dora_datamanager")).get(url).content.decode()
    assert "Alpha Institute" in html and "Beta Hospital" in html
    assert "Gamma Centre" not in html and "S2-BLIND" not in html  # study S2 is not dora's

    client = login(records.user("root"))
    html = client.get(url).content.decode()
    assert "S1-TRIAL" in html and "S2-BLIND" in html and "Gamma Centre" in html
    # The filters keep Django's parameters.
    site_a = records.site_a.site_id
    html = client.get(url, {"study_site__site__id__exact": site_a}).content.decode()
    assert "S1-01-001" in html and "S1-02-001" not in html
    html = client.get(url, {"study_site__study__id__exact": records.s2.pk}).content.decode()
    assert "S2-01-001" in html and "S1-01-001" not in html
