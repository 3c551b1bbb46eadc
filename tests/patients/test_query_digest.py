"""The daily query digest: who is told of each step, in which language, with what (and never a
name); every message notified exactly once when the task runs twice, or twice at once, in a real
Celery worker on Redis."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from patients import query_services
from patients.models_dm import DataQuery, QueryMessage
from patients.query_tasks import send_query_digests
from studies.audit import event_model_for
from studies.models import OutboxEmail, UserPreference
from studies.roles import Role
from tests.factories import MembershipFactory, UserFactory
from tests.patients.test_queries import _open, dm  # noqa: F401 - the fixture

EMAIL = "{}@example.org"


def _digests() -> dict[str, OutboxEmail]:
    rows = OutboxEmail.objects.filter(key__startswith="query-digest:")
    return {row.to[0]: row for row in rows}


def _notified_updates(message: QueryMessage) -> int:
    """How many times the audit trail saw ``notified_at`` set on the message."""
    events = event_model_for(QueryMessage).objects.filter(pgh_obj_id=message.pk)
    return events.filter(pgh_label="update", notified_at__isnull=False).count()


@pytest.fixture
def steps(dm):  # noqa: F811 - pytest fixture injection
    """Carl opens a query at site A, Nina (who reads French) answers it; site B has one too."""
    UserPreference.objects.create(user=dm.user("nina_nurse"), language="fr")
    dm.query = _open(dm)
    query_services.query_answer(query=dm.query, text="Corrigé.", by=dm.user("nina_nurse"))
    dm.query_b = _open(dm, patient=dm.patient_b, object_id=dm.lab_b.pk, text="Site B value?")
    return dm


@pytest.mark.django_db
def test_each_step_goes_to_the_right_people_in_their_language_once(steps):
    assert send_query_digests() == 5
    digests = _digests()
    assert set(digests) == {
        EMAIL.format(name)
        for name in ("alice_pi", "nina_nurse", "bob_pi_site_b", "carl_monitor", "dora_datamanager")
    }
    # The opening goes to the site's staff, the answer to the monitor and the data manager;
    # nobody is told of their own step, and site B's staff hear only of site B.
    alice, nina, bob = (
        digests[EMAIL.format(n)] for n in ("alice_pi", "nina_nurse", "bob_pi_site_b")
    )
    carl, dora = digests[EMAIL.format("carl_monitor")], digests[EMAIL.format("dora_datamanager")]
    assert "Please check this value" in alice.body and "Corrigé" not in alice.body
    assert "Please check this value" in nina.body
    assert "Corrigé." in carl.body and "Corrigé." in dora.body
    assert "Site B value?" in bob.body and "Site B" not in alice.body + carl.body
    assert f"Query {steps.query.pk}" in alice.body
    # Subject identifier, form, field, age; never the patient's name or local reference.
    assert "S1-01-001 · Lab result · Value" in alice.body
    assert "opened 0 day(s) ago" in alice.body
    assert "Valeur" in nina.body and "Value" not in nina.body  # French field label
    for digest in digests.values():
        assert "DUPONT" not in digest.body + digest.subject
    # Every message was notified once; a second run sends nothing.
    assert not QueryMessage.objects.filter(notified_at__isnull=True).exists()
    assert send_query_digests() == 0
    assert len(_digests()) == 5
    assert {_notified_updates(m) for m in QueryMessage.objects.all()} == {1}


@pytest.mark.django_db
def test_a_later_closing_reaches_the_site_in_the_next_digest_alone(
    steps,
):
    send_query_digests()
    query_services.query_close(query=steps.query, text="All good.", by=steps.user("carl_monitor"))
    assert send_query_digests() == 2  # alice and nina, not carl
    latest = OutboxEmail.objects.filter(key__startswith="query-digest:").order_by("-pk")[:2]
    assert sorted(row.to[0] for row in latest) == [
        EMAIL.format("alice_pi"),
        EMAIL.format("nina_nurse"),
    ]
    assert all("All good." in row.body and "Please check" not in row.body for row in latest)


@pytest.mark.django_db
def test_queries_on_arm_revealing_forms_reach_only_unblinded_staff(dm):  # noqa: F811
    blind_nurse = UserFactory(username="bea_blind_nurse")
    MembershipFactory(
        user=blind_nurse, study=dm.s2, study_site=dm.site_c, role=Role.SUBINVESTIGATOR, blinded=True
    )
    now = timezone.now()
    for kind, text in (("drug", "Dose of cycle 2?"), ("lab", "Lymphocytes?")):
        query = DataQuery.objects.create(
            patient=dm.patient_c, form_kind=kind, object_id=1, opened_at=now
        )
        QueryMessage.objects.create(
            query=query,
            action="open",
            text=text,
            author=dm.user("una_unblinded_stat"),
            created_at=now,
        )
    send_query_digests()
    digests = _digests()
    assert "Dose of cycle 2?" in digests[EMAIL.format("pete_planner")].body
    blind = digests[EMAIL.format("bea_blind_nurse")].body
    assert "Lymphocytes?" in blind and "Dose" not in blind and "Study drug" not in blind


# --- with a real worker ------------------------------------------------------------------------


def _wait_until(predicate, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def _all_sent() -> bool:
    rows = OutboxEmail.objects.filter(key__startswith="query-digest:")
    return rows.count() == 5 and not rows.filter(sent_at__isnull=True).exists()


def _assert_each_recipient_got_one_email() -> None:
    subjects = ("Data queries", "Requêtes")  # Nina reads French
    delivered = Counter(
        tuple(m.to) for m in mail.outbox if any(word in m.subject for word in subjects)
    )
    assert sorted(delivered) == sorted(
        (EMAIL.format(name),)
        for name in ("alice_pi", "nina_nurse", "bob_pi_site_b", "carl_monitor", "dora_datamanager")
    )
    assert set(delivered.values()) == {1}
    assert {_notified_updates(m) for m in QueryMessage.objects.all()} == {1}


@pytest.mark.django_db(transaction=True)
def test_in_a_real_worker_run_twice_each_digest_arrives_once(steps, celery_worker):
    mail.outbox.clear()
    assert send_query_digests.delay().get(timeout=30) == 5
    _wait_until(_all_sent)
    assert send_query_digests.delay().get(timeout=30) == 0
    time.sleep(1)
    _assert_each_recipient_got_one_email()
    nina = next(m for m in mail.outbox if m.to == [EMAIL.format("nina_nurse")])
    assert "Valeur" in nina.body
    assert nina.subject.startswith("[OligoCRF] Requêtes")


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_notify_each_message_once(steps, celery_worker):
    mail.outbox.clear()
    result = send_query_digests.delay()
    here = send_query_digests()
    there = result.get(timeout=30)
    connection.close()
    assert here + there == 5
    _wait_until(_all_sent)
    time.sleep(1)
    _assert_each_recipient_got_one_email()
