"""English and French: every string of the catalogue translated, and pages rendered in French."""

from __future__ import annotations

from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.urls import reverse

PO = Path(settings.BASE_DIR) / "locale" / "fr" / "LC_MESSAGES" / "django.po"


def test_the_french_catalogue_is_complete_and_compiled():
    po = polib.pofile(str(PO))
    assert len(po) > 100
    assert po.untranslated_entries() == []
    assert po.fuzzy_entries() == []
    mo = polib.mofile(str(PO.with_suffix(".mo")))
    compiled = {(e.msgctxt, e.msgid): e.msgstr for e in mo}  # same msgid, other context
    assert all(compiled.get((e.msgctxt, e.msgid)) == e.msgstr for e in po.translated_entries()), (
        "django.mo is older than django.po: run `make messages`"
    )


@pytest.mark.django_db
def test_pages_render_in_french_after_switching_language(world, login):
    client = login(world.user("alice_pi"))
    response = client.post(reverse("set_language"), {"language": "fr", "next": "/"})
    assert response.status_code == 302
    html = client.get(reverse("home")).content.decode()
    assert '<html lang="fr">' in html
    assert "Mes études" in html and "Se déconnecter" in html


@pytest.mark.django_db
def test_form_errors_are_in_the_users_language(world, login):
    client = login(world.user("sam_sponsor"))
    client.post(reverse("set_language"), {"language": "fr", "next": "/"})
    url = reverse("study_site_edit", kwargs={"site_pk": world.site_a.pk})
    html = client.post(url, {"recruitment_status": "SUSPENDED", "reason": ""}).content.decode()
    assert "Motif de modification" in html
    assert "Give a reason" not in html


@pytest.mark.django_db
def test_dates_are_unambiguous_in_english_and_french(world, login):
    import datetime

    world.s1.start_date = datetime.date(2026, 3, 2)
    world.s1.save()
    client = login(world.user("alice_pi"))
    url = reverse("study_detail", kwargs={"study_pk": world.s1.pk})
    assert "2026-03-02" in client.get(url).content.decode()
    client.post(reverse("set_language"), {"language": "fr", "next": "/"})
    assert "02/03/2026" in client.get(url).content.decode()
