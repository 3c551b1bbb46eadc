"""Template tags of data management: the open queries of a form, the site's query panel.

``{% form_queries patient "ae" ae.pk %}`` shows the live queries of one form as a warning box
(one SQL query); ``{% site_query_panel study_site %}`` shows how many queries are open at a
site and the age of the oldest (one SQL query).  Both show nothing to users who neither raise
nor answer queries, and hide queries on arm-revealing forms from users blind to the arm.
"""

from __future__ import annotations

from functools import cache

from django import template
from django.utils import timezone

from patients import casebook, query_services
from patients.models_dm import DataQuery
from studies.access import scope_for
from studies.blinding import sees_allocation

register = template.Library()


def _user(context):
    request = context.get("request")
    return getattr(request, "user", None) or context.get("user")


@cache
def _live_queries():
    """The live queries with their last message, built once per process (filtered per form)."""
    return query_services.with_last_message(
        DataQuery.objects.filter(status__in=query_services.LIVE)
    ).order_by("opened_at", "pk")


@register.inclusion_tag("patients/_form_queries.html", takes_context=True)
def form_queries(context, patient, kind: str, object_id) -> dict:
    user = _user(context)
    if (
        patient is None
        or object_id in (None, "")
        or user is None
        or not query_services.can_read(user, patient)
        or kind in query_services.hidden_kinds(user, patient)
    ):
        return {"show": False}
    queries = _live_queries().filter(patient=patient, form_kind=kind, object_id=object_id)
    now = timezone.now()
    return {
        "show": True,
        "patient": patient,
        "kind": kind,
        "object_id": object_id,
        "rows": [query_services.query_row(q, now) for q in queries],
        "can_open": query_services.can_manage(user, patient),
    }


@register.inclusion_tag("patients/_site_queries_panel.html", takes_context=True)
def site_query_panel(context, study_site) -> dict:
    user = _user(context)
    if user is None or not scope_for(user).has_role(
        query_services.QUERY_READER_ROLES, study_site.study_id, study_site.pk
    ):
        return {"show": False}
    hidden = (
        frozenset()
        if sees_allocation(user, study_site.study, study_site.pk)
        else frozenset(casebook.ARM_REVEALING_KINDS)
    )
    return {
        "show": True,
        "study_site": study_site,
        "counts": query_services.site_counts(study_site, hide_kinds=hidden),
    }
