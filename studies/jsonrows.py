"""Rows of a model read as JSON inside another query, and turned back into model instances.

A statement that reads one row (a patient, say) can carry rows of other tables with it as an
annotation, instead of one more query per table::

    Patient.objects.annotate(visits=json_rows(PlannedVisit.objects.filter(patient=OuterRef("pk"))))

:func:`json_rows` makes that annotation: ``ARRAY(SELECT JSON_OBJECT(...) ... ORDER BY ...)``, one
JSON object per row, keyed by the fields' ``attname`` (``definition_id`` for a foreign key), in
the queryset's order.  :func:`from_json_rows` turns the objects back into instances that look
like rows the ORM loaded itself: every value goes through the field's ``to_python`` (a JSON
string becomes a ``date``, a ``datetime``, a ``Decimal``...) and the instance is built by
``Model.from_db``, so ``_state.adding`` is false and ``_state.db`` is set; such instances can be
changed and saved, or given to ``bulk_update``, like any other.

JSON has no date or decimal type: dates, times and timestamps come out of PostgreSQL as ISO 8601
strings (whatever the session's ``DateStyle``; timestamps in the session's time zone, UTC under
Django), which ``to_python`` parses back; decimals are cast to text in the query, since a JSON
number would be read as a float.  Binary fields cannot be carried (:class:`TypeError`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.contrib.postgres.expressions import ArraySubquery
from django.db import DEFAULT_DB_ALIAS, models
from django.db.models import F, QuerySet
from django.db.models.functions import Cast, JSONObject

#: Fields whose JSON form would lose their value: read as text, parsed by ``to_python``.
_AS_TEXT = (models.DecimalField,)
#: Fields a JSON value cannot carry.
_UNSUPPORTED = (models.BinaryField,)


def _fields(model: type[models.Model], names: Sequence[str] | None) -> list[models.Field]:
    """The concrete fields to carry, in the model's order (``names``: field names or attnames;
    none: all of them)."""
    fields = model._meta.concrete_fields
    if names is not None:
        wanted = set(names)
        fields = [f for f in fields if f.name in wanted or f.attname in wanted]
        missing = wanted - {f.name for f in fields} - {f.attname for f in fields}
        if missing:
            raise ValueError(f"{model.__name__} has no concrete field {sorted(missing)}")
        if model._meta.pk not in fields:
            raise ValueError(f"{model.__name__} rows need their primary key")
    for field in fields:
        if isinstance(field, _UNSUPPORTED):
            raise TypeError(f"{model.__name__}.{field.name} cannot be read as JSON")
    return list(fields)


def json_row(model: type[models.Model], fields: Sequence[str] | None = None) -> JSONObject:
    """A JSON object of one row of ``model``: ``{attname: value}`` for its concrete fields
    (or only ``fields``), decimals as text."""
    values = {}
    for field in _fields(model, fields):
        value = F(field.attname)
        values[field.attname] = (
            Cast(value, models.TextField()) if isinstance(field, _AS_TEXT) else value
        )
    return JSONObject(**values)


def json_rows(queryset: QuerySet, fields: Sequence[str] | None = None) -> ArraySubquery:
    """An annotation holding the rows of ``queryset`` (usually filtered on an ``OuterRef``) as
    an array of JSON objects, in the queryset's order: give it an explicit ``order_by`` ending
    on a unique column when the order matters."""
    return ArraySubquery(queryset.values(row=json_row(queryset.model, fields)))


def from_json_rows(
    model: type[models.Model], rows: Iterable[dict] | None, using: str = DEFAULT_DB_ALIAS
) -> list[models.Model]:
    """Instances of ``model`` from the objects of :func:`json_rows` (``None``, as for no rows
    at all, gives none), as if read from database ``using``; fields absent from the objects
    are deferred."""
    instances = []
    for row in rows or ():
        fields = [f for f in model._meta.concrete_fields if f.attname in row]
        values = [f.to_python(row[f.attname]) for f in fields]
        instances.append(model.from_db(using, [f.attname for f in fields], values))
    return instances
