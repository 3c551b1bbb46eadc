"""The audit trail: every path that writes trial data leaves who, when, old, new and why."""

from __future__ import annotations

import pghistory
import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from studies.audit import event_model_for, history_for, reason_for_change
from studies.models import Membership, StudySite
from studies.services import study_site_update
from tests.factories import StudySiteFactory

pytestmark = pytest.mark.django_db

StudySiteEvent = event_model_for(StudySite)


def _last_event(obj):
    return StudySiteEvent.objects.filter(pgh_obj_id=obj.pk).order_by("-pgh_id").first()


def _change(entry, field):
    return next(c for c in entry.changes if c.field == field)


def test_a_service_save_records_user_old_new_and_reason(world):
    user = world.user("sam_sponsor")
    study_site_update(
        study_site=world.site_a,
        data={"principal_investigator": "Dr Curie"},
        by=user,
        reason="PI named in the activation letter",
    )
    last = history_for(world.site_a)[-1]
    assert last.action == "update"
    assert last.user == "sam_sponsor"
    assert last.reason == "PI named in the activation letter"
    change = _change(last, "principal_investigator")
    assert (change.old, change.new) == ("", "Dr Curie")


def test_a_queryset_update_is_audited_with_old_and_new_values(world):
    user = world.user("dora_datamanager")
    with pghistory.context(user=user.pk, reason="Site closed by sponsor"):
        StudySite.objects.filter(pk=world.site_b.pk).update(recruitment_status="SUSPENDED")
    last = history_for(world.site_b)[-1]
    assert (last.user, last.reason) == ("dora_datamanager", "Site closed by sponsor")
    change = _change(last, "recruitment_status")
    assert (change.old, change.new) == ("Not yet recruiting", "Suspended")


def test_a_bulk_update_audits_every_row(world):
    user = world.user("dora_datamanager")
    sites = [world.site_a, world.site_b]
    for site in sites:
        site.target_enrolment = 12
    with reason_for_change("Targets from the steering committee", user=user.pk):
        StudySite.objects.bulk_update(sites, ["target_enrolment"])
    for site in sites:
        change = _change(history_for(site)[-1], "target_enrolment")
        assert (change.old, change.new) == (None, 12)
        assert history_for(site)[-1].reason == "Targets from the steering committee"


def test_raw_sql_is_audited_too(world):
    with reason_for_change("Raw fix", user=world.user("sam_sponsor").pk), connection.cursor() as c:
        c.execute("UPDATE studies_studysite SET number = '99' WHERE id = %s", [world.site_c.pk])
    change = _change(history_for(world.site_c)[-1], "number")
    assert (change.old, change.new) == ("01", "99")


def test_a_delete_keeps_the_deleted_values(world):
    study_site = StudySiteFactory(study=world.s1, number="07")
    pk = study_site.pk
    with reason_for_change("Site never activated", user=world.user("sam_sponsor").pk):
        study_site.delete()
    event = StudySiteEvent.objects.filter(pgh_obj_id=pk, pgh_label="delete").get()
    assert event.number == "07"
    assert event.pgh_context.metadata["reason"] == "Site never activated"


def test_audit_rows_cannot_be_changed_or_deleted(world):
    event = _last_event(world.site_a)
    with pytest.raises(DatabaseError, match="Cannot update or delete"), transaction.atomic():
        StudySiteEvent.objects.filter(pk=event.pk).update(number="00")
    with pytest.raises(DatabaseError, match="Cannot update or delete"), transaction.atomic():
        StudySiteEvent.objects.filter(pk=event.pk).delete()
    assert StudySiteEvent.objects.filter(pk=event.pk, number=event.number).exists()


def test_role_changes_are_audited(world):
    membership = Membership.objects.get(user=world.user("carl_monitor"))
    with reason_for_change("Promoted", user=world.user("sam_sponsor").pk):
        membership.role = "data_manager"
        membership.save()
    change = _change(history_for(membership)[-1], "role")
    assert (change.old, change.new) == ("Monitor (CRA)", "Data manager")


def test_an_edit_without_reason_is_refused_and_changes_nothing(world, login):
    client = login(world.user("sam_sponsor"))
    url = reverse("study_site_edit", kwargs={"site_pk": world.site_a.pk})
    events_before = StudySiteEvent.objects.count()
    response = client.post(url, {"recruitment_status": "SUSPENDED", "reason": "  "})
    assert response.status_code == 200
    assert "Give a reason for changing saved data" in response.content.decode()
    world.site_a.refresh_from_db()
    assert world.site_a.recruitment_status != "SUSPENDED"
    assert StudySiteEvent.objects.count() == events_before


def test_an_edit_with_reason_is_saved_and_shown_in_the_history_page(world, login):
    client = login(world.user("sam_sponsor"))
    url = reverse("study_site_edit", kwargs={"site_pk": world.site_a.pk})
    response = client.post(
        url,
        {
            "recruitment_status": "RECRUITING",
            "activation_date": "2026-03-02",
            "principal_investigator": "Dr Lovelace",
            "reason": "Activation visit done",
        },
    )
    assert response.status_code == 302
    page = client.get(reverse("study_site_history", kwargs={"site_pk": world.site_a.pk}))
    html = page.content.decode()
    assert "Activation visit done" in html and "Dr Lovelace" in html and "sam_sponsor" in html


def test_site_staff_cannot_read_the_audit_trail_but_monitors_can(world, login):
    url = reverse("study_site_history", kwargs={"site_pk": world.site_a.pk})
    assert login(world.user("alice_pi")).get(url).status_code == 403
    assert login(world.user("carl_monitor")).get(url).status_code == 200


def test_admin_change_without_reason_is_refused(world, login):
    client = login(world.user("sam_sponsor"))
    url = reverse("admin:studies_studysite_change", args=[world.site_a.pk])
    events_before = StudySiteEvent.objects.count()
    data = {
        "study": world.s1.pk,
        "site": world.site_a.site_id,
        "number": "01",
        "recruitment_status": "SUSPENDED",
        "reason": "",
    }
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Give a reason" in response.content.decode()
    assert StudySiteEvent.objects.count() == events_before
    response = client.post(url, {**data, "reason": "Sponsor decision"})
    assert response.status_code == 302
    assert history_for(world.site_a)[-1].reason == "Sponsor decision"


def test_admin_delete_needs_a_reason(world, login):
    client = login(world.user("sam_sponsor"))
    extra = StudySiteFactory(study=world.s1, number="08")
    url = reverse("admin:studies_studysite_delete", args=[extra.pk])
    client.post(url, {"post": "yes"})
    assert StudySite.objects.filter(pk=extra.pk).exists()
    client.post(url, {"post": "yes", "reason": "Created by mistake"})
    assert not StudySite.objects.filter(pk=extra.pk).exists()
    event = StudySiteEvent.objects.get(pgh_obj_id=extra.pk, pgh_label="delete")
    assert event.pgh_context.metadata["reason"] == "Created by mistake"


def test_monitors_can_read_but_not_change_in_the_admin(world, login):
    client = login(world.user("carl_monitor"))
    url = reverse("admin:studies_studysite_change", args=[world.site_a.pk])
    assert client.get(url).status_code == 200
    data = {
        "study": world.s1.pk,
        "site": world.site_a.site_id,
        "number": "01",
        "recruitment_status": "SUSPENDED",
        "reason": "try",
    }
    assert client.post(url, data).status_code == 403


def test_account_changes_are_audited_without_the_password(world):
    from studies.models import AuditedUser

    user = world.user("alice_pi")
    with reason_for_change("Left the hospital", user=world.user("sam_sponsor").pk):
        user.is_active = False
        user.set_password("a-brand-new-password")
        user.save()
    last = history_for(AuditedUser.objects.get(pk=user.pk))[-1]
    assert _change(last, "is_active").new is False
    assert last.reason == "Left the hospital"
    assert not any(
        c.field == "password"
        for entry in history_for(AuditedUser.objects.get(pk=user.pk))
        for c in entry.changes
    )


def test_models_and_migrations_agree():
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
