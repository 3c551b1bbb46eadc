"""``{{ record|display:"field" }}``: the label of the record's choice, as
``record.get_<field>_display`` gives it.

Django's ``get_<field>_display`` builds a dict of every choice of the field at each call, which
translates every label to hash it: a list of 30 adverse events translated 700 labels. This
filter builds that table once per field (labels stay lazy: each is translated when shown).
"""

from __future__ import annotations

from django import template
from django.db.models import Field, Model
from django.utils.encoding import force_str
from django.utils.hashable import make_hashable

register = template.Library()

_TABLES: dict[Field, dict] = {}


def _labels(field: Field) -> dict:
    if not isinstance(field.choices, list | tuple):  # choices given by a callable: not kept
        return dict(make_hashable(field.flatchoices))
    labels = _TABLES.get(field)
    if labels is None:
        labels = _TABLES[field] = dict(make_hashable(field.flatchoices))
    return labels


@register.filter
def display(record: Model, name: str):
    """``record.get_<name>_display()``."""
    field = record._meta.get_field(name)
    value = getattr(record, field.attname)
    return force_str(_labels(field).get(make_hashable(value), value), strings_only=True)
