"""The home, study and site pages: what each role sees, and query counts that stay flat."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import PatientFactory, StudySiteFactory

pytestmark = pytest.mark.django_db


def test_home_lists_the_users_sites_with_enrolment_against_target(world, login):
    world.s1.target_enrolment = 40
    world.s1.save()
    PatientFactory(study_site=world.site_a, enrolled_on=None, status="screening")
    html = login(world.user("alice_pi")).get(reverse("home")).content.decode()
    assert "S1-TRIAL" in html and "Alpha Institute" in html
    assert "Beta Hospital" not in html and "S2-BLIND" not in html
    assert "1 enrolled / 40" in html  # the screening patient does not count


def test_home_shows_every_site_to_a_sponsor_role(world, login):
    html = login(world.user("carl_monitor")).get(reverse("home")).content.decode()
    assert "Alpha Institute" in html and "Beta Hospital" in html
    assert "2 enrolled / 100" in html
    assert "Gamma Centre" not in html


def test_site_page_lists_its_patients_and_staff_only(world, login):
    html = (
        login(world.user("alice_pi"))
        .get(reverse("study_site_detail", kwargs={"site_pk": world.site_a.pk}))
        .content.decode()
    )
    assert "S1-01-001" in html and "S1-02-001" not in html
    assert "nina_nurse" in html.lower() or "Nina_Nurse" in html
    assert "Edit site details" not in html  # investigators do not configure sites


def test_site_edit_is_forbidden_to_site_staff(world, login):
    url = reverse("study_site_edit", kwargs={"site_pk": world.site_a.pk})
    assert login(world.user("alice_pi")).get(url).status_code == 403


def test_a_bad_activation_date_is_refused_on_the_form(world, login):
    client = login(world.user("sam_sponsor"))
    url = reverse("study_site_edit", kwargs={"site_pk": world.site_a.pk})
    response = client.post(
        url, {"recruitment_status": "RECRUITING", "activation_date": "2026-02-31", "reason": "typo"}
    )
    assert response.status_code == 200
    assert "Enter a valid date" in response.content.decode()


def _grow(world, n_sites: int, patients_per_site: int) -> None:
    for _ in range(n_sites):
        site = StudySiteFactory(study=world.s1)
        PatientFactory.create_batch(patients_per_site, study_site=site)


@pytest.mark.parametrize("url_name", ["home", "study_detail"])
def test_page_query_count_does_not_grow_with_sites(
    world, login, url_name, django_assert_max_num_queries
):
    client = login(world.user("sam_sponsor"))
    kwargs = {"study_pk": world.s1.pk} if url_name == "study_detail" else {}
    url = reverse(url_name, kwargs=kwargs)
    _grow(world, 2, 2)
    with django_assert_max_num_queries(12) as small:
        assert client.get(url).status_code == 200
    _grow(world, 40, 5)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(url).status_code == 200


def test_site_page_query_count_does_not_grow_with_patients(
    world, login, django_assert_max_num_queries
):
    client = login(world.user("alice_pi"))
    url = reverse("study_site_detail", kwargs={"site_pk": world.site_a.pk})
    with django_assert_max_num_queries(12) as small:
        client.get(url)
    PatientFactory.create_batch(120, study_site=world.site_a)
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert client.get(url).status_code == 200
