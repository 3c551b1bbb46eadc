"""The sponsor's admin panel: scoped lists, choices limited to own studies, audit history."""

from __future__ import annotations

import pytest
from django.urls import reverse

from studies.models import Membership
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_changelists_show_only_the_users_studies(world, login):
    client = login(world.user("carl_monitor"))
    html = client.get(reverse("admin:studies_studysite_changelist")).content.decode()
    assert "Alpha Institute" in html and "Beta Hospital" in html
    assert "Gamma Centre" not in html


def test_changelists_filter_by_study_site_and_role(world, login):
    client = login(world.user("sam_sponsor"))
    url = reverse("admin:studies_membership_changelist")
    html = client.get(url, {"role__exact": "investigator"}).content.decode()
    assert "alice_pi" in html and "nina_nurse" not in html
    html = client.get(url, {"q": "nina"}).content.decode()
    assert "nina_nurse" in html and "alice_pi" not in html


def test_membership_form_offers_only_administered_studies(world, login):
    client = login(world.user("sam_sponsor"))
    html = client.get(reverse("admin:studies_membership_add")).content.decode()
    assert "S1-TRIAL" in html
    assert "S2-BLIND" not in html and "Gamma Centre" not in html


def test_giving_a_monitor_role_opens_the_admin_panel(world, login):
    newcomer = UserFactory(username="new_cra")
    client = login(world.user("sam_sponsor"))
    response = client.post(
        reverse("admin:studies_membership_add"),
        {
            "user": newcomer.pk,
            "study": world.s1.pk,
            "study_site": world.site_b.pk,
            "role": "monitor",
            "blinded": "on",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Membership.objects.filter(user=newcomer, role="monitor").exists()
    newcomer.refresh_from_db()
    assert newcomer.is_staff


def test_a_membership_for_a_study_the_user_does_not_administer_is_refused(world, login):
    client = login(world.user("sam_sponsor"))
    response = client.post(
        reverse("admin:studies_membership_add"),
        {
            "user": world.user("alice_pi").pk,
            "study": world.s2.pk,
            "study_site": world.site_c.pk,
            "role": "investigator",
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert not Membership.objects.filter(study=world.s2, user=world.user("alice_pi")).exists()


def test_admin_history_button_shows_the_audit_trail(world, login):
    client = login(world.user("sam_sponsor"))
    change = reverse("admin:studies_studysite_change", args=[world.site_a.pk])
    client.post(
        change,
        {
            "study": world.s1.pk,
            "site": world.site_a.site_id,
            "number": "01",
            "recruitment_status": "RECRUITING",
            "reason": "Site initiation visit",
        },
    )
    html = client.get(reverse("admin:studies_studysite_history", args=[world.site_a.pk]))
    text = html.content.decode()
    assert "Site initiation visit" in text and "Recruiting" in text and "sam_sponsor" in text


def test_statisticians_cannot_read_the_audit_trail(world, login):
    client = login(world.user("tom_statistician"))
    url = reverse("admin:studies_studysite_history", args=[world.site_a.pk])
    assert client.get(url).status_code == 403


def test_site_staff_get_403_from_the_admin(world, login):
    assert login(world.user("alice_pi")).get(reverse("admin:index")).status_code == 403


def test_the_sidebar_is_djangos_list_rendered_once_per_list_and_page(world, login):
    from django.contrib import admin
    from django.template.loader import render_to_string

    client = login(world.user("sam_sponsor"))
    url = reverse("admin:studies_studysite_changelist")
    first = client.get(url)
    html = client.get(url).content.decode()  # the cached sidebar
    sidebar = html.split('id="nav-sidebar"')[1].split("</nav>")[0]
    apps = first.context["available_apps"]
    expected = render_to_string(
        "admin/app_list.html",
        {"app_list": apps, "show_changelinks": False, "request": first.wsgi_request},
    )
    assert expected.strip() and expected in sidebar
    assert 'class="model-studysite current-model"' in sidebar
    other = client.get(reverse("admin:studies_membership_changelist")).content.decode()
    assert 'class="model-membership current-model"' in other
    assert 'class="model-studysite current-model"' not in other
    assert admin.site._nav_cache


def test_django_permission_admins_are_for_superusers_only(world, login, django_user_model):
    sponsor = login(world.user("sam_sponsor")).get(reverse("admin:index")).content.decode()
    assert "/admin/studies/" in sponsor
    assert "/admin/auth/user/" not in sponsor and "/admin/axes/" not in sponsor
    root = django_user_model.objects.create_superuser("root", "root@example.org", "x")
    index = login(root).get(reverse("admin:index")).content.decode()
    assert "/admin/auth/user/" in index and "/admin/axes/" in index
