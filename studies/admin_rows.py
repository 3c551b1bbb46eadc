"""Fast admin changelist rows: each column prepared once per page, each row one string.

The HTML is Django's own (``tests/studies/test_admin_rows.py`` compares them).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin
from django.contrib.admin.templatetags.admin_list import (
    ResultList,
    _boolean_icon,
    result_headers,
)
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import (
    FieldIsAForeignKeyColumnName,
    _get_non_gfk_field,
    display_for_field,
    display_for_value,
    get_fields_from_path,
    lookup_field,
)
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import models
from django.db.models.constants import LOOKUP_SEP
from django.urls import NoReverseMatch, reverse
from django.utils import dateformat
from django.utils.formats import get_format
from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeString
from django.utils.translation import get_language

#: A cell of the list: the row's object -> ``<td ...>...</td>``.
Cell = Callable[[models.Model], str]
_PK = "__pk__"  # stands for the primary key in a change URL reversed once per page


class FastChangeList(ChangeList):
    """Django's changelist, its rows rendered column by column with each column's work done once.

    Django's ``items_for_result`` repeats for every cell what is the same for the whole column
    (the field's lookup, the translated empty value and choice labels, the boolean icons' static
    URLs, the change URL's reverse and preserved filters) and renders each cell through the
    template engine: most of the time of a page of rows. Here each column is prepared once per
    page and a row is one string. The HTML is Django's, cell for cell; lists with editable
    fields, popups and ``to_field`` keep Django's own rendering.
    """

    def rows_context(self) -> dict | None:
        """The context of ``change_list_results.html`` as Django's ``result_list`` tag gives it
        (each row one pre-rendered item), or None for Django's own tag."""
        if self.formset or self.is_popup or self.to_field:
            return None
        objects = list(self.result_list)
        cells = _cells(self, objects[0]) if objects else []
        headers = list(result_headers(self))
        opts = self.opts
        return {
            "templates": [
                f"admin/{opts.app_label}/{opts.model_name}/change_list_results.html",
                f"admin/{opts.app_label}/change_list_results.html",
                "admin/change_list_results.html",
            ],
            "result_hidden_fields": [],  # only list_editable lists have hidden fields
            "result_headers": headers,
            "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
            "results": [
                ResultList(None, [SafeString("".join([cell(obj) for cell in cells]))])
                for obj in objects
            ],
        }


def _cells(cl: ChangeList, sample: models.Model) -> list[Cell]:
    """One renderer per column of ``cl.list_display`` (``items_for_result``'s logic)."""
    # The empty value once translated (Django's is lazy: translated again at each use).
    empty = conditional_escape(cl.model_admin.get_empty_value_display())
    change_url = _change_url(cl, sample)
    cells, first = [], True
    for index, name in enumerate(cl.list_display):
        links = cl.list_display_links
        linked = links is not None and ((first and not links) or name in links)
        tag = "th" if linked and first else "td"
        first = first and not linked
        field = _plain_field(cl, name)
        link = _Link(linked, change_url if linked else None)
        if field is None:
            cells.append(_generic_cell(cl, index, name, tag, link, empty))
        else:
            cells.append(_field_cell(field, name, tag, link, empty))
    return cells


def _plain_field(cl: ChangeList, name) -> models.Field | None:
    """The model field a column shows directly (not a callable, relation path or primary key)."""
    if not isinstance(name, str):
        return None
    try:
        field = _get_non_gfk_field(cl.lookup_opts, name)
    except (FieldDoesNotExist, FieldIsAForeignKeyColumnName):
        return None
    return None if field.auto_created else field


def _change_url(cl: ChangeList, sample: models.Model) -> Callable[[models.Model], str] | None:
    """The escaped change URL of a row with the list's filters preserved, or None (no link).

    Reversed once with a placeholder for the primary key; rows with a non-integer key, or a
    URL the placeholder would not give, are reversed one by one as Django does.
    """
    context = {"preserved_filters": cl.preserved_filters, "opts": cl.opts}

    def reversed_one(obj) -> str:
        return escape(add_preserved_filters(context, cl.url_for_result(obj)))

    try:
        sample_url = reversed_one(sample)
        opts = cl.opts
        name = f"admin:{opts.app_label}_{opts.model_name}_change"
        site = cl.model_admin.admin_site.name
        url = reverse(name, args=[_PK], current_app=site)
    except NoReverseMatch:
        return None
    prefix, _pk, suffix = escape(add_preserved_filters(context, url)).partition(_PK)
    key = cl.pk_attname
    sample_key = getattr(sample, key)
    if type(sample_key) is not int or f"{prefix}{sample_key}{suffix}" != sample_url:
        return reversed_one

    def one(obj) -> str:
        pk = getattr(obj, key)
        return f"{prefix}{pk}{suffix}" if type(pk) is int else reversed_one(obj)

    return one


@dataclass(frozen=True)
class _Link:
    """Whether a column links to the change page, and the URL of a row (None: not reversible,
    the column shows its text alone, as Django's)."""

    linked: bool
    url: Callable[[models.Model], str] | None

    def wrap(self, obj, html: str) -> str:
        return html if self.url is None else f'<a href="{self.url(obj)}">{html}</a>'


def _field_cell(field: models.Field, name: str, tag: str, link: _Link, empty: str) -> Cell:
    classes = f"field-{name}"
    if isinstance(field, (models.DateField, models.TimeField, models.ForeignKey)):
        classes += " nowrap"
    opening, closing = f'<{tag} class="{classes}">', f"</{tag}>"
    shown = _field_display(field, empty, avoid_link=link.linked)

    def cell(obj) -> str:
        try:
            value = getattr(obj, name)
        except ObjectDoesNotExist:
            html = empty
        else:
            html = conditional_escape(shown(value))
        return f"{opening}{link.wrap(obj, html)}{closing}"

    return cell


def _field_display(field: models.Field, empty: str, avoid_link: bool) -> Callable:
    """``display_for_field`` of one column, its translations, formats and icons made once.

    Choice labels and boolean icons are looked up; other values are shown once per distinct
    value on the page (grades, units and dates repeat) and dates through :func:`_date_text`.
    """
    if isinstance(field.remote_field, models.ManyToOneRel):
        return lambda value: empty if value is None else value
    if field.name != "password" and field.flatchoices:
        try:
            shown = {value: conditional_escape(label) for value, label in field.flatchoices}
        except TypeError:  # unhashable choices: Django's own path
            shown = {}
        else:
            return _memo(shown, lambda value: empty, field, empty)
    elif isinstance(field, models.BooleanField):
        icons = {value: _boolean_icon(value) for value in (True, False, None)}
        return lambda value: (
            icons[value]
            if value is None or value is True or value is False
            else display_for_field(value, field, empty)
        )
    if isinstance(field, models.DateField) and not isinstance(field, models.DateTimeField):
        date_format, language = get_format("DATE_FORMAT"), get_language()

        def date(value):  # formats.localize() of a date
            if type(value) is datetime.date:
                return _date_text(value, date_format, language)
            return display_for_field(value, field, empty)

        return _memo({}, date, field, empty)
    return _memo(
        {},
        lambda value: display_for_field(value, field, empty, avoid_link=avoid_link),
        field,
        empty,
    )


def _memo(shown: dict, display: Callable, field: models.Field, empty: str) -> Callable:
    """``display`` once per distinct value (``shown`` is filled as the page's rows come)."""

    def one(value):
        try:
            return shown[value]
        except KeyError:
            shown[value] = text = display(value)
            return text
        except TypeError:  # unhashable value
            return display_for_field(value, field, empty)

    return one


@functools.lru_cache(maxsize=4096)
def _date_text(value: datetime.date, date_format: str, language: str | None) -> str:
    """A date as ``formats.localize`` shows it: the active language, which ``language`` names
    (month names are translated), is part of the cache's key."""
    return dateformat.format(value, date_format)


def _generic_cell(cl: ChangeList, index: int, name, tag: str, link: _Link, empty: str) -> Cell:
    """A callable, property, relation path or primary key: ``items_for_result`` cell by cell."""
    label = name.__name__ if callable(name) else name  # Django's _coerce_field_name
    label = f"lambda{index}" if label == "<lambda>" else label

    def cell(obj) -> str:
        classes = [f"field-{label}"]
        try:
            field, attr, value = lookup_field(name, obj, cl.model_admin)
        except ObjectDoesNotExist:
            shown = empty
        else:
            shown, classes = _generic_display(cl, name, field, attr, value, empty, link, classes)
        html = link.wrap(obj, conditional_escape(shown))
        return f'<{tag} class="{" ".join(classes)}">{html}</{tag}>'

    return cell


def _generic_display(cl, name, field, attr, value, empty, link: _Link, classes):
    empty = getattr(attr, "empty_value_display", empty)
    if field is None and isinstance(name, str) and LOOKUP_SEP in name:
        with contextlib.suppress(FieldDoesNotExist):  # e.g. __str__
            field = get_fields_from_path(cl.model, name)[-1]
    if field is None or field.auto_created:
        if name == "action_checkbox":
            classes = ["action-checkbox"]
        boolean = getattr(attr, "boolean", False)
        if isinstance(attr, property) and hasattr(attr, "fget"):
            boolean = getattr(attr.fget, "boolean", False)
        if isinstance(value, (datetime.date, datetime.time)):
            classes.append("nowrap")
        return display_for_value(value, empty, boolean), classes
    if isinstance(field.remote_field, models.ManyToOneRel):
        shown = empty if value is None else value
    else:
        shown = display_for_field(value, field, empty, avoid_link=link.linked)
    if isinstance(field, (models.DateField, models.TimeField, models.ForeignKey)):
        classes.append("nowrap")
    return shown, classes


class FastListAdmin(admin.ModelAdmin):
    """A changelist of rows rendered by :class:`FastChangeList`."""

    change_list_template = "admin/fast_change_list.html"

    def get_changelist(self, request, **kwargs):
        return FastChangeList


# --- filters -----------------------------------------------------------------------------------
