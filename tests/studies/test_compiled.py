"""Querysets compiled once per process (studies/compiled.py): the same objects as the ORM's,
one query per call, and a refusal of any query whose SQL depends on its values."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from patients.models import Patient
from studies.compiled import CompiledQuery, ShapeError
from studies.models import CriterionRule, EligibilityCriterion, Membership, StudySite
from studies.roles import Role
from tests.factories import MembershipFactory, PatientFactory, StudySiteFactory, UserFactory

pytestmark = pytest.mark.django_db


def _same(a, b, related: tuple[str, ...] = ()) -> None:
    """Two model instances with the same field values, state and select_related objects."""
    assert type(a) is type(b)
    fields = [f.attname for f in type(a)._meta.concrete_fields]
    assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
    assert (a._state.adding, a._state.db) == (b._state.adding, b._state.db) == (False, "default")
    for path in related:
        x, y = a, b
        for name in path.split("__"):
            cached = type(x)._meta.get_field(name).is_cached(x)
            assert cached == type(y)._meta.get_field(name).is_cached(y) == True  # noqa: E712
            x, y = getattr(x, name), getattr(y, name)
            if x is None or y is None:
                assert x is y is None
                break
            _same(x, y)


def test_related_objects_annotations_and_json_values_are_those_of_the_orm():
    site = StudySiteFactory()
    criterion = EligibilityCriterion.objects.create(
        study=site.study, kind="inclusion", number=1, text="Age >= 18"
    )
    rule = CriterionRule.objects.create(
        criterion=criterion, rule_key="min_age", params={"years": 18, "note": "é"}
    )
    PatientFactory.create_batch(3, study_site=site)

    def rules(pk):
        return (
            CriterionRule.objects.select_related("criterion__study")
            .annotate(
                patients=Subquery(
                    Patient.objects.filter(study_site__study=OuterRef("criterion__study"))
                    .order_by()
                    .values("study_site__study")
                    .annotate(n=Count("pk"))
                    .values("n")
                )
            )
            .filter(pk=pk)
        )

    compiled = CompiledQuery(rules).first(rule.pk)
    expected = rules(rule.pk).get()
    _same(compiled, expected, related=("criterion__study",))
    assert compiled.params == {"years": 18, "note": "é"}  # the JSON converter applied
    assert compiled.patients == expected.patients == 3


def test_a_null_foreign_key_gives_none_as_the_orm_does():
    sponsor = MembershipFactory(study_site=None, study=StudySiteFactory().study)
    member = MembershipFactory(study_site=StudySiteFactory())
    query = CompiledQuery(
        lambda pk: Membership.objects.select_related("study_site__site", "user").filter(pk=pk)
    )
    for membership in (sponsor, member):
        expected = Membership.objects.select_related("study_site__site", "user").get(
            pk=membership.pk
        )
        _same(query.first(membership.pk), expected, related=("study_site__site", "user"))
    assert query.first(-5) is None


def test_the_query_is_compiled_once_and_runs_in_one_statement():
    sites = StudySiteFactory.create_batch(3)
    built = []

    def build(pk):
        built.append(pk)
        return StudySite.objects.select_related("study", "site").order_by().filter(pk=pk)

    query = CompiledQuery(build)
    for site in sites:
        with CaptureQueriesContext(connection) as captured:
            found = query.first(site.pk)
        assert len(captured.captured_queries) == 1
        assert (found.pk, found.study.code, found.site.city) == (site.pk, site.study.code, "Caen")
    assert len(built) == 2  # the two sentinel compilations, then never again


def test_two_values_go_to_their_own_places():
    site, other_site = StudySiteFactory.create_batch(2)
    patients = PatientFactory.create_batch(2, study_site=site)
    query = CompiledQuery(
        lambda site_pk, pk: Patient.objects.order_by().filter(study_site_id=site_pk, pk=pk),
        arity=2,
    )
    assert [p.pk for p in query.all(site.pk, patients[1].pk)] == [patients[1].pk]
    assert query.all(other_site.pk, patients[1].pk) == []
    with pytest.raises(TypeError):
        query.all(site.pk)


@pytest.mark.django_db(transaction=True)
def test_a_locking_read_runs_only_inside_a_transaction():
    query = CompiledQuery(lambda pk: StudySite.objects.select_for_update().order_by().filter(pk=pk))
    site = StudySiteFactory()
    with pytest.raises(TransactionManagementError):
        query.first(site.pk)  # autocommit: as Django's own compiler, refused
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        assert query.first(site.pk).pk == site.pk
    assert captured.captured_queries[-1]["sql"].endswith("FOR UPDATE")


@pytest.mark.parametrize(
    "build",
    [
        # the SQL text changes with the value
        lambda pk: StudySite.objects.filter(pk__in=list(range(abs(pk) % 3 + 1))),
        # a parameter computed from the value, not the value itself
        lambda pk: StudySite.objects.filter(pk=pk + 1),
        # the value is not used at all
        lambda pk: StudySite.objects.filter(pk=1),
        # a second query would be needed
        lambda pk: StudySite.objects.prefetch_related("patients").filter(pk=pk),
    ],
    ids=["sql-text", "derived", "unused", "prefetch"],
)
def test_a_query_whose_shape_depends_on_its_values_is_refused(build):
    with pytest.raises(ShapeError):
        CompiledQuery(build).first(1)


def test_the_patient_and_site_lookups_keep_their_scope_after_compiling(client):
    """The compiled lookups read any patient or study-site by key: the scope is checked on the
    row."""
    mine, other = StudySiteFactory(), StudySiteFactory()
    patient, stranger = PatientFactory(study_site=mine), PatientFactory(study_site=other)
    user = UserFactory()
    MembershipFactory(user=user, study_site=mine, role=Role.INVESTIGATOR)
    client.force_login(user)

    def status(p) -> int:
        return client.get(reverse("patient_detail", kwargs={"patient_pk": p.pk})).status_code

    def site_status(site) -> int:
        return client.get(reverse("study_site_detail", kwargs={"site_pk": site.pk})).status_code

    assert (status(patient), status(stranger)) == (200, 404)
    assert (site_status(mine), site_status(other)) == (200, 404)
    sponsor = UserFactory()
    MembershipFactory(user=sponsor, study=other.study, study_site=None, role=Role.DATA_MANAGER)
    client.force_login(sponsor)
    assert (status(stranger), status(patient)) == (200, 404)
    assert (site_status(other), site_status(mine)) == (200, 404)
