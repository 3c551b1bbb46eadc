"""Imaging visit reminders: what is due, to whom, in which language; queued once; the hour gate;
the user's own reminders page; the language switcher remembering the choice."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from patients import reminders
from patients.models import Allocation, Patient
from patients.models_visits import PlannedVisit
from patients.reminders import OVERDUE, UPCOMING, decide, queue
from patients.tasks import send_visit_reminders
from studies.models import (
    OutboxEmail,
    RecruitmentStatus,
    UserPreference,
    VisitDefinition,
)
from studies.roles import Role
from tests.factories import MembershipFactory, UserFactory

TODAY = date(2026, 3, 10)


def imaging(study, code: str = "ct", name: str = "Thoraco-abdominal CT") -> VisitDefinition:
    return VisitDefinition.objects.create(
        study=study,
        code=code,
        name=name,
        kind=VisitDefinition.Kind.IMAGING,
        anchor=VisitDefinition.Anchor.ENROLMENT,
        offset_days=56,
        window_before_days=7,
        window_after_days=7,
        repeat_every_days=56,
        repeat_until_days=730,
    )


_occurrence = iter(range(1, 10_000))


def visit(patient, definition, start: date, end: date | None = None, **extra) -> PlannedVisit:
    end = end or start + timedelta(days=14)
    return PlannedVisit.objects.create(
        patient=patient,
        definition=definition,
        occurrence=extra.pop("occurrence", next(_occurrence)),
        window_start=start,
        window_end=end,
        due_on=start + (end - start) / 2,
        **extra,
    )


@pytest.fixture
def trial(world):
    """S1: site A has alice (PI, English) and nina (nurse, French); site B has bob."""
    UserPreference.objects.create(user=world.user("nina_nurse"), language="fr")
    for patient in (world.patient_a, world.patient_b):
        patient.status = Patient.Status.FOLLOW_UP
        patient.save()
    world.ct = imaging(world.s1)
    return world


def _pairs(found):
    return sorted((r.visit.pk, r.kind, r.language, r.to) for r in found)


ALICE = ("alice_pi@example.org",)
NINA = ("nina_nurse@example.org",)


# --- decide(): which visits, which kind ---------------------------------------------------------


def test_a_window_opening_within_n_days_is_reminded_and_not_one_day_later(trial):
    trial.s1.reminder_days_ahead = 7
    trial.s1.save()
    p = trial.patient_a
    today = visit(p, trial.ct, TODAY)
    in_n = visit(p, trial.ct, TODAY + timedelta(days=7))
    visit(p, trial.ct, TODAY + timedelta(days=8))  # N + 1: not yet
    visit(p, trial.ct, TODAY - timedelta(days=1))  # in its window already: not "upcoming"
    found = decide(trial.s1, TODAY)
    assert {(r.visit.pk, r.kind) for r in found} == {(today.pk, UPCOMING), (in_n.pk, UPCOMING)}
    # Configurable: with 8 days ahead the third one is reminded too.
    trial.s1.reminder_days_ahead = 8
    assert len({r.visit.pk for r in decide(trial.s1, TODAY)}) == 3


def test_a_visit_is_overdue_the_day_after_its_window_closes(trial):
    p = trial.patient_a
    closes_today = visit(p, trial.ct, TODAY - timedelta(days=14), TODAY)
    closed_yesterday = visit(p, trial.ct, TODAY - timedelta(days=15), TODAY - timedelta(days=1))
    found = decide(trial.s1, TODAY)
    assert {(r.visit.pk, r.kind) for r in found} == {(closed_yesterday.pk, OVERDUE)}
    assert {(r.visit.pk, r.kind) for r in decide(trial.s1, TODAY + timedelta(days=1))} == {
        (closed_yesterday.pk, OVERDUE),
        (closes_today.pk, OVERDUE),
    }


def test_done_missed_na_visits_off_study_patients_and_other_kinds_are_never_reminded(trial):
    p = trial.patient_a
    soon, late = TODAY + timedelta(days=2), TODAY - timedelta(days=30)
    for state in ("done", "missed", "na"):
        visit(p, trial.ct, soon, state=state)
        visit(p, trial.ct, late, late + timedelta(days=7), state=state)
    labs = imaging(trial.s1, code="labs", name="Lymphocyte count")
    labs.kind = VisitDefinition.Kind.LABS
    labs.save()
    visit(p, labs, soon)
    visit(p, labs, late, late + timedelta(days=7))
    assert decide(trial.s1, TODAY) == []
    # The same visits planned for a patient who went off study: nothing either.
    gone = trial.patient_b
    gone.status = Patient.Status.OFF_STUDY
    gone.save()
    visit(gone, trial.ct, soon)
    visit(gone, trial.ct, late, late + timedelta(days=7))
    assert decide(trial.s1, TODAY) == []
    # A planned imaging visit of a followed patient is: the selection is not just empty.
    reminded = visit(p, trial.ct, soon)
    assert [r.visit.pk for r in decide(trial.s1, TODAY)] == [reminded.pk, reminded.pk]


def test_another_studys_visits_are_not_in_this_studys_reminders(trial):
    s2_ct = imaging(trial.s2)
    trial.patient_c.status = Patient.Status.FOLLOW_UP
    trial.patient_c.save()
    other = visit(trial.patient_c, s2_ct, TODAY + timedelta(days=1))
    assert decide(trial.s1, TODAY) == []
    assert {r.visit.pk for r in decide(trial.s2, TODAY)} == {other.pk}


# --- recipients and languages -----------------------------------------------------------------


def test_the_sites_data_entry_staff_get_one_email_per_language(trial):
    a = visit(trial.patient_a, trial.ct, TODAY + timedelta(days=3))
    b = visit(trial.patient_b, trial.ct, TODAY - timedelta(days=20), TODAY - timedelta(days=2))
    # Not emailed: an inactive membership, a user without an address, a sponsor-side role at
    # the site, study-wide staff (carl the monitor, dora, sam, tom).
    gone = UserFactory(username="gone_nurse")
    MembershipFactory(
        user=gone,
        study=trial.s1,
        study_site=trial.site_a,
        role=Role.SUBINVESTIGATOR,
        is_active=False,
    )
    MembershipFactory(
        user=UserFactory(username="no_mail", email=""),
        study=trial.s1,
        study_site=trial.site_a,
        role=Role.INVESTIGATOR,
    )
    MembershipFactory(
        user=UserFactory(username="site_monitor"),
        study=trial.s1,
        study_site=trial.site_a,
        role=Role.MONITOR,
    )
    # Another English data-entry user at site A, and a French planner.
    planner = UserFactory(username="paul_planner")
    UserPreference.objects.create(user=planner, language="fr")
    MembershipFactory(user=planner, study=trial.s1, study_site=trial.site_a, role=Role.PLANNER)
    MembershipFactory(
        user=UserFactory(username="sub_en"),
        study=trial.s1,
        study_site=trial.site_a,
        role=Role.SUBINVESTIGATOR,
    )
    found = decide(trial.s1, TODAY)
    assert _pairs(found) == sorted(
        [
            (a.pk, UPCOMING, "en", ("alice_pi@example.org", "sub_en@example.org")),
            (a.pk, UPCOMING, "fr", ("nina_nurse@example.org", "paul_planner@example.org")),
            (b.pk, OVERDUE, "en", ("bob_pi_site_b@example.org",)),
        ]
    )
    assert {r.key for r in found} == {
        f"reminder:{a.pk}:upcoming:en",
        f"reminder:{a.pk}:upcoming:fr",
        f"reminder:{b.pk}:overdue:en",
    }


def test_the_french_recipient_reads_french_and_the_english_one_english(trial):
    v = visit(trial.patient_a, trial.ct, TODAY + timedelta(days=3))
    found = {r.language: r for r in decide(trial.s1, TODAY)}
    assert (found["en"].to, found["fr"].to) == (ALICE, NINA)
    english, french = found["en"].body, found["fr"].body
    assert "Subject identifier: S1-01-001" in english and "Site: 01" in english
    assert "Identifiant patient: S1-01-001" in french and "Centre: 01" in french
    assert "Subject identifier" not in french and "Site:" not in french
    for reminder in found.values():
        assert v.window_start.isoformat() in reminder.subject
        assert "S1-01-001" in reminder.subject


def test_a_user_without_a_preference_gets_the_default_language(trial, settings):
    visit(trial.patient_a, trial.ct, TODAY + timedelta(days=3))
    settings.LANGUAGE_CODE = "fr"
    found = {r.language: r.to for r in decide(trial.s1, TODAY)}
    assert found == {"fr": ("alice_pi@example.org", "nina_nurse@example.org")}


def test_the_email_carries_identifier_visit_window_and_link_never_a_name_or_arm(trial):
    patient = trial.patient_a
    patient.local_reference = "MRN-424242"
    patient.screening_number = "SCR-0077"
    patient.save()
    arm = trial.s1.arms.get(code="B")
    arm.name = "Secretive experimental arm"
    arm.save()
    Allocation.objects.create(
        patient=patient, arm=arm, part="randomised", allocated_by=trial.user("alice_pi")
    )
    v = visit(patient, trial.ct, date(2026, 3, 13), date(2026, 3, 27), occurrence=3)
    overdue = visit(patient, trial.ct, date(2026, 2, 1), date(2026, 2, 15), occurrence=2)
    found = decide(trial.s1, TODAY)
    assert len(found) == 4
    for reminder in found:
        text = reminder.subject + "\n" + reminder.body
        assert "S1-01-001" in text and "Thoraco-abdominal CT" in text
        for secret in (
            "Secretive experimental arm",
            "MRN-424242",
            "SCR-0077",
            "Alice_Pi",
            "Nina_Nurse",
        ):
            assert secret not in text
        assert f"/patients/{patient.pk}/" in reminder.body
    upcoming = next(r for r in found if r.visit == v and r.language == "en")
    assert "2026-03-13 to 2026-03-27" in upcoming.body and "(occurrence 3)" in upcoming.body
    late = next(r for r in found if r.visit == overdue and r.language == "en")
    assert "overdue" in late.subject and "2026-02-15" in late.subject


def test_the_link_is_absolute_when_the_site_url_is_configured(trial):
    visit(trial.patient_a, trial.ct, TODAY + timedelta(days=3))
    with override_settings(SITE_URL="https://crf.example.org/"):
        body = decide(trial.s1, TODAY)[0].body
    assert f"https://crf.example.org/patients/{trial.patient_a.pk}/" in body


def test_decide_reads_with_a_flat_number_of_queries(trial, django_assert_max_num_queries):
    for n in range(30):
        visit(trial.patient_a if n % 2 else trial.patient_b, trial.ct, TODAY + timedelta(days=2))
    with django_assert_max_num_queries(2):
        assert len(decide(trial.s1, TODAY)) == 15 * 2 + 15


# --- queue(): once -------------------------------------------------------------------------------


def test_queueing_twice_queues_nothing_twice(trial):
    visit(trial.patient_a, trial.ct, TODAY + timedelta(days=3))
    visit(trial.patient_b, trial.ct, TODAY - timedelta(days=20), TODAY - timedelta(days=2))
    assert queue(trial.s1, TODAY) == 3
    rows = list(OutboxEmail.objects.order_by("key").values_list("key", "to"))
    assert queue(trial.s1, TODAY) == 0
    assert queue(trial.s1, TODAY + timedelta(days=1)) == 0  # tomorrow: still the same keys
    assert list(OutboxEmail.objects.order_by("key").values_list("key", "to")) == rows
    # A new visit coming into range is queued alone.
    new = visit(trial.patient_a, trial.ct, TODAY + timedelta(days=8))
    assert queue(trial.s1, TODAY + timedelta(days=1)) == 2
    assert OutboxEmail.objects.filter(key__startswith=f"reminder:{new.pk}:").count() == 2


def test_a_run_that_crashes_midway_queues_nothing_and_the_rerun_queues_all(trial, monkeypatch):
    for days in (1, 2, 3):
        visit(trial.patient_a, trial.ct, TODAY + timedelta(days=days))
    real = reminders.outbox_enqueue
    calls = []

    def crash_on_third(**kwargs):
        calls.append(kwargs["key"])
        if len(calls) == 3:
            raise RuntimeError("worker lost")
        return real(**kwargs)

    monkeypatch.setattr(reminders, "outbox_enqueue", crash_on_third)
    with pytest.raises(RuntimeError):
        queue(trial.s1, TODAY)
    assert not OutboxEmail.objects.exists()  # the two written before the crash rolled back
    monkeypatch.setattr(reminders, "outbox_enqueue", real)
    assert queue(trial.s1, TODAY) == 6
    assert queue(trial.s1, TODAY) == 0


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_queue_each_reminder_once(trial, monkeypatch):
    """Run A holds its rows uncommitted while run B decides and inserts the same keys: B waits on
    the unique index, then skips each one; every key exists once."""
    from studies import tasks as studies_tasks

    monkeypatch.setattr(studies_tasks.send_outbox_email, "delay", lambda pk: None)
    for days in (1, 2, 3):
        visit(trial.patient_a, trial.ct, TODAY + timedelta(days=days))
    visit(trial.patient_b, trial.ct, TODAY - timedelta(days=20), TODAY - timedelta(days=2))
    expected = {r.key for r in decide(trial.s1, TODAY)}
    assert len(expected) == 7

    real = reminders.outbox_enqueue
    a_wrote_all = threading.Event()
    b_inserting = threading.Event()
    written: dict[str, int] = {}

    def enqueue(**kwargs):
        name = threading.current_thread().name
        if name == "B":
            b_inserting.set()
        email = real(**kwargs)
        written[name] = written.get(name, 0) + 1
        if name == "A" and written[name] == len(expected):
            a_wrote_all.set()
            assert b_inserting.wait(20), "run B never reached its inserts"
            time.sleep(0.5)  # B is now blocked on A's first uncommitted key
        return email

    monkeypatch.setattr(reminders, "outbox_enqueue", enqueue)
    results: dict[str, int | BaseException] = {}

    def run(name: str):
        try:
            if name == "B":
                assert a_wrote_all.wait(20)  # decides while A's rows are still uncommitted
            results[name] = queue(trial.s1, TODAY)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            results[name] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,), name=n) for n in ("A", "B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == {"A": 7, "B": 0}
    assert written == {"A": 7, "B": 7}  # B tried every key and the unique index refused them
    keys = list(OutboxEmail.objects.values_list("key", flat=True))
    assert sorted(keys) == sorted(expected)


def test_the_outbox_key_is_unique_in_the_database(trial):
    OutboxEmail.objects.create(key="reminder:1:upcoming:en", to=ALICE, subject="s", body="b")
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboxEmail.objects.create(key="reminder:1:upcoming:en", to=ALICE, subject="s", body="b")


# --- the task: each study at its own hour -------------------------------------------------------


def test_each_study_is_reminded_at_its_hour_on_its_own_clock(trial):
    s1, s2 = trial.s1, trial.s2
    s1.time_zone, s1.reminder_hour = "Europe/Paris", 7
    s1.save()
    s2.time_zone, s2.reminder_hour = "America/New_York", 22
    s2.save()
    trial.patient_c.status = Patient.Status.FOLLOW_UP
    trial.patient_c.save()
    s1_visit = visit(trial.patient_a, trial.ct, TODAY + timedelta(days=3))
    # Opens on 10 March: due "today" in New York at 22:30 on the 10th, when it is already the
    # 11th in UTC (the visit would then be in its window, no longer "upcoming").
    s2_visit = visit(trial.patient_c, imaging(s2), TODAY)

    def keys():
        return set(OutboxEmail.objects.values_list("key", flat=True))

    with time_machine.travel(datetime(2026, 3, 10, 5, 30, tzinfo=UTC), tick=False):
        assert send_visit_reminders() == {}  # 06:30 in Paris, 01:30 in New York
    assert keys() == set()
    with time_machine.travel(datetime(2026, 3, 10, 6, 30, tzinfo=UTC), tick=False):
        assert send_visit_reminders() == {"S1": 2}  # 07:30 in Paris
    assert keys() == {f"reminder:{s1_visit.pk}:upcoming:en", f"reminder:{s1_visit.pk}:upcoming:fr"}
    with time_machine.travel(datetime(2026, 3, 10, 7, 5, tzinfo=UTC), tick=False):
        assert send_visit_reminders() == {}  # 08:05 in Paris
    with time_machine.travel(datetime(2026, 3, 11, 2, 30, tzinfo=UTC), tick=False):
        assert send_visit_reminders() == {"S2": 1}  # 22:30 on 10 March in New York (EDT)
    assert f"reminder:{s2_visit.pk}:upcoming:en" in keys()
    assert len(keys()) == 3


def test_force_runs_every_open_study_and_skips_closed_ones_and_bad_zones(trial):
    visit(trial.patient_a, trial.ct, TODAY + timedelta(days=3))
    trial.s2.status = RecruitmentStatus.COMPLETED
    trial.s2.save()
    with time_machine.travel(datetime(2026, 3, 10, 13, 0, tzinfo=UTC), tick=False):
        assert send_visit_reminders(force=True) == {"S1": 2}
        trial.s1.time_zone = "Mars/Olympus_Mons"
        trial.s1.save()
        assert send_visit_reminders(force=True) == {}
    assert OutboxEmail.objects.count() == 2


# --- the user's own reminders ------------------------------------------------------------------


def _reminders_for(to, n: int, start: int = 0):
    for i in range(start, start + n):
        OutboxEmail.objects.create(
            key=f"reminder:{i}:upcoming:en", to=list(to), subject=f"Reminder {i}", body="b"
        )


def test_my_reminders_lists_the_users_own_only(trial, login):
    alice = trial.user("alice_pi")
    _reminders_for(ALICE, 2)
    _reminders_for(NINA, 1, start=10)
    _reminders_for(ALICE + NINA, 1, start=20)
    OutboxEmail.objects.filter(key="reminder:1:upcoming:en").update(
        sent_at=datetime(2026, 3, 10, 7, tzinfo=UTC)
    )
    OutboxEmail.objects.create(key="sae:1:initial", to=list(ALICE), subject="SAE", body="b")
    OutboxEmail.objects.create(
        key="reminder:30:upcoming:en", to=["alice_pi@example.org.evil"], subject="Near", body="b"
    )
    response = login(alice).get(reverse("my_reminders"))
    assert response.status_code == 200
    subjects = [r.subject for r in response.context["page"]]
    assert subjects == ["Reminder 20", "Reminder 1", "Reminder 0"]  # newest first
    html = response.content.decode()
    assert "Reminder 10" not in html and "SAE" not in html and "Near" not in html
    assert html.count('data-testid="reminder-sent"') == 1
    assert html.count('data-testid="reminder-pending"') == 2
    nina = login(trial.user("nina_nurse")).get(reverse("my_reminders"))
    assert [r.subject for r in nina.context["page"]] == ["Reminder 20", "Reminder 10"]


def test_a_user_without_an_email_address_sees_none(trial, login):
    carl = trial.user("carl_monitor")
    carl.email = ""
    carl.save()
    OutboxEmail.objects.create(key="reminder:1:upcoming:en", to=[""], subject="Blank", body="b")
    response = login(carl).get(reverse("my_reminders"))
    assert response.status_code == 200 and list(response.context["page"]) == []


def test_my_reminders_pages_by_fifty_with_a_flat_query_count(
    trial, login, django_assert_max_num_queries
):
    client = login(trial.user("alice_pi"))
    _reminders_for(ALICE, 3)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("my_reminders")).status_code == 200
    _reminders_for(ALICE, 120, start=3)
    with django_assert_max_num_queries(len(few)):
        response = client.get(reverse("my_reminders"))
    assert len(response.context["page"]) == 50
    assert response.context["page"].paginator.count == 123
    last = client.get(reverse("my_reminders"), {"page": 3})
    subjects = [r.subject for r in last.context["page"]]
    assert len(subjects) == 23 and subjects[-3:] == ["Reminder 2", "Reminder 1", "Reminder 0"]


# --- the language switcher remembers the choice -------------------------------------------------


def test_the_language_switcher_saves_a_logged_in_users_language(trial):
    from django.contrib.auth.models import AnonymousUser

    from studies.preferences import set_language_and_remember

    alice = trial.user("alice_pi")
    factory = RequestFactory()

    def post(user, language):
        request = factory.post("/i18n/setlang/", {"language": language, "next": "/"})
        request.user = user
        return set_language_and_remember(request)

    response = post(alice, "fr")
    assert response.status_code == 302 and response.cookies["django_language"].value == "fr"
    assert UserPreference.objects.get(user=alice).language == "fr"
    post(alice, "de")  # a language Django knows but the site does not offer: not saved
    assert UserPreference.objects.get(user=alice).language == "fr"
    post(alice, "en")
    assert UserPreference.objects.get(user=alice).language == "en"
    post(AnonymousUser(), "fr")
    assert UserPreference.objects.count() == 2  # nina's (fixture) and alice's
    # A GET changes nothing.
    request = factory.get("/i18n/setlang/", {"language": "fr"})
    request.user = alice
    set_language_and_remember(request)
    assert UserPreference.objects.get(user=alice).language == "en"
