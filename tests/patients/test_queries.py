"""Data queries: the lifecycle (open, answer, close, re-open) with roles and audit, refusals that
change nothing, and the pages: the patient's queries, opening one, the conversation, the site's
open queries, the box on the form and the panel on the site's page."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from patients import lab_services, query_services
from patients.models import Consent
from patients.models_dm import DataQuery, QueryMessage
from studies.access import scope_for
from studies.audit import history_for
from studies.roles import Role
from tests.factories import MembershipFactory, PatientFactory, StudySiteFactory, UserFactory
from tests.patients.conftest import today

pytestmark = pytest.mark.django_db


def _lab(patient, by, days_ago: int = 10):
    Consent.objects.get_or_create(
        patient=patient,
        defaults={
            "consented_on": today() - timedelta(days=300),
            "form_version": "v1",
            "obtained_by": by,
        },
    )
    [lab] = lab_services.lab_record(
        patient=patient,
        by=by,
        sampled_on=today() - timedelta(days=days_ago),
        results=[("lymphocytes", D("1.2"), "10^9/L")],
    )
    return lab


@pytest.fixture
def dm(world):
    """Patients A (site A) and B (site B) each have a lab result; S2 has a blinded monitor."""
    for patient in (world.patient_a, world.patient_b, world.patient_c):
        patient.enrolled_on = today() - timedelta(days=290)
        patient.local_reference = "DUPONT Marie"
        patient.save()
    world.lab_a = _lab(world.patient_a, world.user("alice_pi"))
    world.lab_b = _lab(world.patient_b, world.user("bob_pi_site_b"))
    mia = UserFactory(username="mia_blind_monitor")
    MembershipFactory(user=mia, study=world.s2, study_site=None, role=Role.MONITOR, blinded=True)
    world.users["mia_blind_monitor"] = mia
    return world


def _open(world, text="Please check this value against the lab report.", **extra):
    data = {
        "patient": world.patient_a,
        "form_kind": "lab",
        "object_id": world.lab_a.pk,
        "field": "value",
        "text": text,
        "by": world.user("carl_monitor"),
        **extra,
    }
    return query_services.query_open(**data)


# --- the lifecycle -----------------------------------------------------------------------------


def test_a_query_goes_open_answered_closed_reopened_and_every_step_is_audited(dm):
    carl, nina = dm.user("carl_monitor"), dm.user("nina_nurse")
    query = _open(dm)
    assert (query.status, query.origin, query.opened_by) == ("open", "manual", carl)
    query = query_services.query_answer(query=query, text="Corrected: unit was G/L.", by=nina)
    assert query.status == "answered"
    query = query_services.query_close(query=query, text="Thanks, checked.", by=carl)
    assert query.status == "closed" and query.closed_at is not None
    query = query_services.query_reopen(query=query, text="The date is wrong too.", by=carl)
    assert (query.status, query.closed_at) == ("open", None)
    steps = list(query.messages.values_list("action", "author__username"))
    assert steps == [
        ("open", "carl_monitor"),
        ("answer", "nina_nurse"),
        ("close", "carl_monitor"),
        ("reopen", "carl_monitor"),
    ]
    history = history_for(query)
    assert [entry.action for entry in history] == ["insert", "update", "update", "update"]
    assert [entry.user for entry in history] == [
        "carl_monitor",
        "nina_nurse",
        "carl_monitor",
        "carl_monitor",
    ]
    assert [len(history_for(m)) for m in query.messages.all()] == [1, 1, 1, 1]


def test_answering_a_closed_query_is_refused_with_a_clear_message_and_changes_nothing(dm):
    query = _open(dm)
    query_services.query_close(query=query, text="Opened by mistake.", by=dm.user("carl_monitor"))
    with pytest.raises(ValidationError, match="This query is closed: it cannot be answered"):
        query_services.query_answer(query=query, text="Answer", by=dm.user("nina_nurse"))
    query.refresh_from_db()
    assert query.status == "closed"
    assert query.messages.count() == 2


@pytest.mark.parametrize(
    ("steps", "refused", "message"),
    [
        ([], "reopen", "open already"),
        (["answer"], "answer", "answered already"),
        (["close"], "close", "closed already"),
    ],
)
def test_a_step_the_status_does_not_allow_is_refused(dm, steps, refused, message):
    by = {"answer": dm.user("nina_nurse"), "close": dm.user("carl_monitor")}
    by["reopen"] = by["close"]
    do = {
        "answer": query_services.query_answer,
        "close": query_services.query_close,
        "reopen": query_services.query_reopen,
    }
    query = _open(dm)
    for step in steps:
        query = do[step](query=query, text="step", by=by[step])
    before = (query.status, query.messages.count())
    with pytest.raises(ValidationError, match=message):
        do[refused](query=query, text="again", by=by[refused])
    query.refresh_from_db()
    assert (query.status, query.messages.count()) == before


@pytest.mark.parametrize("name", ["nina_nurse", "alice_pi", "tom_statistician", "sam_sponsor"])
def test_only_monitors_and_data_managers_open_queries(dm, name):
    with pytest.raises(PermissionDenied):
        _open(dm, by=dm.user(name))
    assert not DataQuery.objects.exists()


def test_a_data_manager_opens_and_only_the_sites_own_staff_answer(dm):
    query = _open(dm, by=dm.user("dora_datamanager"))
    for name in ("carl_monitor", "bob_pi_site_b", "tom_statistician"):
        with pytest.raises(PermissionDenied):
            query_services.query_answer(query=query, text="x", by=dm.user(name))
    with pytest.raises(PermissionDenied):
        query_services.query_close(query=query, text="x", by=dm.user("nina_nurse"))
    query_services.query_answer(query=query, text="Done", by=dm.user("alice_pi"))
    assert query.messages.count() == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"text": "   "}, "text"),
        ({"form_kind": "nonsense"}, "form_kind"),
        ({"object_id": 999_999}, "object_id"),
        ({"field": "no_such_field"}, "field"),
        ({"field": "patient"}, "field"),  # not a field the site enters
    ],
)
def test_opening_a_query_with_bad_input_is_refused_and_saves_nothing(dm, changes, field):
    with pytest.raises(ValidationError) as caught:
        _open(dm, **changes)
    assert field in caught.value.message_dict
    assert not DataQuery.objects.exists() and not QueryMessage.objects.exists()


def test_a_query_cannot_name_a_form_of_another_patient(dm):
    with pytest.raises(ValidationError) as caught:
        _open(dm, object_id=dm.lab_b.pk)
    assert "object_id" in caught.value.message_dict


# --- the pages ---------------------------------------------------------------------------------


def _urls(world, query) -> dict[str, str]:
    return {
        "patient": reverse("patient_queries", kwargs={"patient_pk": world.patient_a.pk}),
        "new": reverse("query_new", kwargs={"patient_pk": world.patient_a.pk}),
        "detail": reverse("query_detail", kwargs={"query_pk": query.pk}),
        "site": reverse("site_queries", kwargs={"site_pk": world.site_a.pk}),
    }


def test_anonymous_users_are_sent_to_the_login_page(dm, client):
    for url in _urls(dm, _open(dm)).values():
        response = client.get(url)
        assert response.status_code == 302 and reverse("login") in response.url


def test_users_of_another_site_or_study_get_404(dm, login):
    urls = _urls(dm, _open(dm))
    for name in ("bob_pi_site_b", "pete_planner", "una_unblinded_stat"):
        client = login(dm.user(name))
        for url in urls.values():
            assert client.get(url).status_code == 404, (name, url)


@pytest.mark.parametrize("name", ["tom_statistician", "sam_sponsor"])
def test_roles_that_neither_raise_nor_answer_queries_get_403(dm, login, name):
    client = login(dm.user(name))
    for url in _urls(dm, _open(dm)).values():
        assert client.get(url).status_code == 403, url


def test_site_staff_cannot_open_a_query_and_a_monitor_cannot_answer(dm, login):
    query = _open(dm)
    urls = _urls(dm, query)
    nurse = login(dm.user("nina_nurse"))
    assert nurse.get(urls["new"]).status_code == 403
    assert nurse.post(urls["new"], {"form": f"lab:{dm.lab_a.pk}", "text": "x"}).status_code == 403
    monitor = login(dm.user("carl_monitor"))
    response = monitor.post(urls["detail"], {"action": "answer", "text": "I answer"})
    assert response.status_code == 200 and "action" in response.context["form"].errors
    query.refresh_from_db()
    assert query.status == "open" and query.messages.count() == 1


def test_a_monitor_opens_a_query_from_the_prefilled_page(dm, login):
    client = login(dm.user("carl_monitor"))
    url = _urls(dm, _open(dm))["new"]
    response = client.get(f"{url}?kind=lab&object={dm.lab_a.pk}&field=value")
    assert response.status_code == 200
    form = response.context["form"]
    assert form["form"].value() == f"lab:{dm.lab_a.pk}" and form["field"].value() == "value"
    assert [name for name, _label in form.fields["field"].choices][:3] == [
        "",
        "sampled_on",
        "analyte",
    ]
    response = client.post(url, {"form": f"lab:{dm.lab_a.pk}", "field": "value", "text": "Unit?"})
    query = DataQuery.objects.latest("pk")
    assert response.status_code == 302 and response.url == reverse(
        "query_detail", kwargs={"query_pk": query.pk}
    )
    assert (query.form_kind, query.object_id, query.field) == ("lab", dm.lab_a.pk, "value")


def test_opening_a_query_with_bad_input_shows_the_error_and_saves_nothing(dm, login):
    client = login(dm.user("carl_monitor"))
    url = reverse("query_new", kwargs={"patient_pk": dm.patient_a.pk})
    for data, field in (
        ({"form": f"lab:{dm.lab_a.pk}", "text": ""}, "text"),
        ({"form": f"lab:{dm.lab_b.pk}", "text": "x"}, "form"),  # another patient's form
        ({"form": f"lab:{dm.lab_a.pk}", "field": "term", "text": "x"}, "field"),
    ):
        response = client.post(url, data)
        assert response.status_code == 200
        assert response.context["form"].errors[field], data
    assert not DataQuery.objects.exists()


def test_the_site_answers_on_the_page_with_a_link_to_the_form_to_correct(dm, login):
    query = _open(dm)
    client = login(dm.user("nina_nurse"))
    url = _urls(dm, query)["detail"]
    response = client.get(url)
    lab_url = reverse("lab_edit", kwargs={"patient_pk": dm.patient_a.pk, "lab_pk": dm.lab_a.pk})
    assert response.context["buttons"] == ["answer"]
    assert lab_url in response.content.decode()
    assert 'data-testid="correct-hint"' in response.content.decode()
    assert client.post(url, {"action": "answer", "text": "Corrected."}).status_code == 302
    query.refresh_from_db()
    assert query.status == "answered"


def test_answering_a_closed_query_on_the_page_shows_the_message_and_changes_nothing(dm, login):
    query = _open(dm)
    query_services.query_close(query=query, text="Done", by=dm.user("carl_monitor"))
    client = login(dm.user("nina_nurse"))
    response = client.post(_urls(dm, query)["detail"], {"action": "answer", "text": "Late."})
    assert response.status_code == 200
    assert "This query is closed: it cannot be answered" in response.content.decode()
    query.refresh_from_db()
    assert query.status == "closed" and query.messages.count() == 2


def test_the_monitor_closes_and_reopens_on_the_page(dm, login):
    query = _open(dm)
    query_services.query_answer(query=query, text="Fixed", by=dm.user("nina_nurse"))
    client = login(dm.user("carl_monitor"))
    url = _urls(dm, query)["detail"]
    assert client.get(url).context["buttons"] == ["close", "reopen"]
    assert client.post(url, {"action": "close", "text": "OK"}).status_code == 302
    query.refresh_from_db()
    assert query.status == "closed"
    assert client.get(url).context["buttons"] == ["reopen"]
    assert client.post(url, {"action": "reopen", "text": "Not OK"}).status_code == 302
    query.refresh_from_db()
    assert query.status == "open"


def _age(query, days: int) -> None:
    DataQuery.objects.filter(pk=query.pk).update(opened_at=timezone.now() - timedelta(days=days))


def test_the_site_page_lists_live_queries_oldest_first_with_their_age(dm, login):
    recent, old, closed = _open(dm), _open(dm), _open(dm)
    _age(old, 12)
    _age(recent, 3)
    query_services.query_close(query=closed, text="x", by=dm.user("carl_monitor"))
    _open(dm, patient=dm.patient_b, object_id=dm.lab_b.pk)  # site B
    response = login(dm.user("alice_pi")).get(_urls(dm, old)["site"])
    rows = response.context["rows"]
    assert [(r.query.pk, r.age) for r in rows] == [(old.pk, 12), (recent.pk, 3)]
    assert "DUPONT" not in response.content.decode()


def test_the_patient_page_lists_every_query_live_first(dm, login):
    first, second = _open(dm), _open(dm)
    query_services.query_close(query=first, text="x", by=dm.user("carl_monitor"))
    response = login(dm.user("nina_nurse")).get(_urls(dm, first)["patient"])
    assert [r.query.pk for r in response.context["rows"]] == [second.pk, first.pk]
    assert response.context["can_open"] is False


@pytest.mark.parametrize("page", ["patient", "site"])
def test_query_lists_do_not_grow_in_sql_queries_with_rows(
    dm, login, django_assert_max_num_queries, page
):
    client = login(dm.user("carl_monitor"))
    url = _urls(dm, _open(dm))[page]
    client.get(url)  # warm up (session, scope)
    with django_assert_max_num_queries(30) as small:
        assert client.get(url).status_code == 200
    for _n in range(12):
        query_services.query_answer(query=_open(dm), text="a", by=dm.user("nina_nurse"))
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(url)
    assert len(response.context["rows"]) == 13


def test_the_form_shows_its_open_queries_in_one_sql_query(dm, login, django_assert_num_queries):
    query = _open(dm)
    lab_url = reverse("lab_edit", kwargs={"patient_pk": dm.patient_a.pk, "lab_pk": dm.lab_a.pk})
    page = login(dm.user("nina_nurse")).get(lab_url).content.decode()
    assert 'data-testid="form-queries"' in page
    assert reverse("query_detail", kwargs={"query_pk": query.pk}) in page
    assert 'data-testid="form-query-new"' not in page  # the nurse does not open queries
    template = Template('{% load dm_tags %}{% form_queries patient "lab" pk %}')
    for_monitor = Context(
        {"patient": dm.patient_a, "pk": dm.lab_a.pk, "user": dm.user("carl_monitor")}
    )
    assert 'data-testid="form-query-new"' in template.render(for_monitor)
    nina = dm.user("nina_nurse")
    scope_for(nina)  # loaded once per request by the view
    for _n in range(5):
        _open(dm)
    context = Context({"patient": dm.patient_a, "pk": dm.lab_a.pk, "user": nina})
    with django_assert_num_queries(1):
        html = template.render(context)
    assert html.count('data-testid="form-query"') == 6
    query_services.query_close(query=query, text="x", by=dm.user("carl_monitor"))
    assert template.render(context).count('data-testid="form-query"') == 5


def test_the_site_page_shows_the_open_query_count_and_the_oldest_age(dm, login):
    _age(_open(dm), 9)
    _open(dm)
    # A query of another site's patient is not the site's.
    other = PatientFactory(study_site=StudySiteFactory(study=dm.site_a.study))
    DataQuery.objects.create(patient=other, form_kind="lab", object_id=1, opened_at=timezone.now())
    url = reverse("study_site_detail", kwargs={"site_pk": dm.site_a.pk})
    page = login(dm.user("alice_pi")).get(url).content.decode()
    assert 'data-testid="site-queries-panel"' in page
    assert "2 open queries" in page and "oldest: 9 days" in page
    assert reverse("site_queries", kwargs={"site_pk": dm.site_a.pk}) in page
    assert 'data-testid="site-queries-panel"' not in (
        login(dm.user("tom_statistician")).get(url).content.decode()
    )


# --- blinding ----------------------------------------------------------------------------------


def _drug_query(world):
    """A query on a study drug cycle (a form that reveals the arm) of the double-blind S2."""
    query = DataQuery.objects.create(
        patient=world.patient_c, form_kind="drug", object_id=1, opened_at=timezone.now()
    )
    QueryMessage.objects.create(
        query=query, action="open", text="Dose of cycle 2?", created_at=timezone.now()
    )
    return query


def test_blinded_users_never_see_queries_on_arm_revealing_forms(dm, login):
    query = _drug_query(dm)
    patient_url = reverse("patient_queries", kwargs={"patient_pk": dm.patient_c.pk})
    site_url = reverse("site_queries", kwargs={"site_pk": dm.site_c.pk})
    detail_url = reverse("query_detail", kwargs={"query_pk": query.pk})
    blind = login(dm.user("mia_blind_monitor"))
    assert blind.get(patient_url).context["rows"] == []
    assert blind.get(site_url).context["rows"] == []
    assert blind.get(detail_url).status_code == 404
    site_page = blind.get(reverse("study_site_detail", kwargs={"site_pk": dm.site_c.pk}))
    assert "0 open queries" in site_page.content.decode()
    for page in (blind.get(patient_url), blind.get(site_url)):
        text = page.content.decode()
        assert "Dose of cycle 2" not in text and "Study drug" not in text and "Arm " not in text
    with pytest.raises(ValidationError):
        query_services.query_open(
            patient=dm.patient_c,
            form_kind="drug",
            object_id=1,
            field="",
            text="x",
            by=dm.user("mia_blind_monitor"),
        )
    # The unblinded planner of the site sees it.
    planner = login(dm.user("pete_planner"))
    assert [r.query.pk for r in planner.get(site_url).context["rows"]] == [query.pk]
    assert planner.get(detail_url).status_code == 200
