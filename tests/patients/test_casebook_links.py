"""The casebook's links and dates, built once per URL name and per date (``patients/casebook.py``):
the same as ``reverse()`` and the ``date`` filter give, in every language and under any script
prefix."""

from __future__ import annotations

from datetime import date

import pytest
from django.template import Context, Template
from django.urls import reverse, set_script_prefix
from django.utils import translation

from patients import casebook
from patients.models_dm import FormKind


def _expected(kind: str, patient_pk: int, object_id: int | None) -> str:
    if kind in casebook._BY_OBJECT and object_id is not None:
        name, kwarg = casebook._BY_OBJECT[kind]
        return reverse(name, kwargs={"patient_pk": patient_pk, kwarg: object_id})
    name = casebook._BY_PATIENT.get(kind, "casebook")
    return reverse(name, kwargs={"patient_pk": patient_pk})


@pytest.mark.parametrize("kind", [*FormKind.values, "unknown"])
@pytest.mark.parametrize("keys", [(7, 123), (918273645, 1), (12, None)])
def test_a_forms_link_is_the_one_reverse_gives(kind, keys):
    patient_pk, object_id = keys
    assert casebook.form_url(kind, patient_pk, object_id) == _expected(kind, patient_pk, object_id)


def test_links_follow_the_script_prefix():
    try:
        set_script_prefix("/oligocrf/")
        url = casebook.form_url(FormKind.AE, 3, 45)
        assert url.startswith("/oligocrf/") and url == _expected(FormKind.AE, 3, 45)
    finally:
        set_script_prefix("/")
    assert casebook.form_url(FormKind.AE, 3, 45) == _expected(FormKind.AE, 3, 45)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_short_dates_are_those_of_the_date_filter(language):
    template = Template('{{ d|date:"SHORT_DATE_FORMAT" }}')
    with translation.override(language):
        for value in (date(2026, 11, 3), date(999, 12, 31)):
            assert casebook.short_date(value) == template.render(Context({"d": value}))
    assert casebook.short_date(None) == ""


def test_a_date_is_written_in_the_language_of_the_page():
    value = date(2026, 11, 3)
    with translation.override("en"):
        english = casebook.short_date(value)
    with translation.override("fr"):
        french = casebook.short_date(value)
    assert english != french and french == "03/11/2026"
