"""Fast rendering of the CRF forms' widgets, with the same HTML as Django's templates.

Django renders every widget through a template, and a ``<select>`` renders one more template
per ``<option>``: on a CRF page with formsets that is hundreds of template renders, more than
the rest of the page costs. ``FastRenderer`` is a form renderer that writes the stock widget
and error-list templates (and formsets' management forms) out in Python, byte for byte the
same HTML (``tests/cross/test_fast_widgets.py`` compares both); any other template, or any
project that sets another ``FORM_RENDERER``, goes through the default renderer unchanged.

``CachedOptionsSelect`` is a select of a long reference list (the ~850 CTCAE terms) whose
options are written once per language and version of the list, then reused with the chosen
value marked.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from functools import cache
from html import escape as _escape  # django.utils.html.escape, without the lazy wrapper
from threading import Lock

from django import forms
from django.forms.renderers import BaseRenderer, DjangoTemplates, get_default_renderer
from django.forms.utils import flatatt
from django.utils.formats import localize
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.safestring import SafeData, mark_safe
from django.utils.timezone import template_localtime
from django.utils.translation import get_language

WIDGETS = "django/forms/widgets/"
OPTION_TEMPLATE = WIDGETS + "select_option.html"
#: Stock widget templates that are only ``{% include "django/forms/widgets/input.html" %}``.
INPUT_TEMPLATES = tuple(
    f"{WIDGETS}{name}.html"
    for name in (
        "input",
        "checkbox",
        "color",
        "date",
        "datetime",
        "email",
        "hidden",
        "number",
        "password",
        "search",
        "tel",
        "text",
        "time",
        "url",
    )
)
ERROR_LIST_TEMPLATES = ("django/forms/errors/list/default.html", "django/forms/errors/list/ul.html")


def _text(value) -> str:
    """``{{ value }}``: localized, then escaped unless already safe."""
    if type(value) is str:  # the usual case, first: nothing to localize
        return _escape(value)
    if isinstance(value, Promise):  # a lazy translation: nothing to localize either
        value = str(value)
    else:
        value = localize(template_localtime(value))
        if not issubclass(type(value), str):
            value = str(value)
    return value if isinstance(value, SafeData) else _escape(value)


def _formatted(value) -> str:
    """``{{ value|stringformat:'s' }}``: ``str()`` without localization, escaped unless safe."""
    text = str(value)
    return text if isinstance(value, SafeData) else _escape(text)


def _attrs(attrs: dict) -> str:
    """``django/forms/widgets/attrs.html``."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        shown = "" if value is True else f'="{_formatted(value)}"'
        parts.append(f" {_text(name)}{shown}")
    return "".join(parts)


def _input(widget: dict) -> str:
    """``django/forms/widgets/input.html``."""
    value = widget["value"]
    shown = "" if value is None else f' value="{_formatted(value)}"'
    return (
        f'<input type="{_text(widget["type"])}" name="{_text(widget["name"])}"{shown}'
        f"{_attrs(widget['attrs'])}>"
    )


def _option(option: dict) -> str:
    """``django/forms/widgets/select_option.html`` (its file ends with a newline)."""
    return (
        f'<option value="{_formatted(option["value"])}"{_attrs(option["attrs"])}>'
        f"{_text(option['label'])}</option>\n"
    )


def _select(widget: dict) -> str | None:
    """``django/forms/widgets/select.html``; None if an option has a template of its own."""
    parts = [f'<select name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_text(group_name)}">')
        for option in group_choices:
            if option["template_name"] != OPTION_TEMPLATE:
                return None
            parts.append("\n  " + _option(option))
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


def _textarea(widget: dict) -> str:
    """``django/forms/widgets/textarea.html``."""
    value = _text(widget["value"]) if widget["value"] else ""
    return f'<textarea name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>\n{value}</textarea>'


def _error_list(context: dict) -> str:
    """``django/forms/errors/list/ul.html`` (and ``default.html``, which includes it)."""
    errors = context["errors"]
    if not errors:
        return ""
    field_id = getattr(errors, "field_id", None)
    shown_id = f' id="{_text(field_id)}_error"' if field_id else ""
    items = "".join(f"<li>{_text(error)}</li>" for error in errors)
    return f'<ul class="{_text(context["error_class"])}"{shown_id}>{items}</ul>'


def _hidden_only_form(context: dict) -> str | None:
    """``django/forms/div.html`` of a form of hidden fields only and no error (a formset's
    management form): the hidden fields; None for any other form."""
    if context["fields"] or context["errors"]:
        return None
    return "".join(str(field) for field in context["hidden_fields"])


_WRITERS: dict[str, Callable[[dict], str | None]] = {
    **{name: lambda context: _input(context["widget"]) for name in INPUT_TEMPLATES},
    WIDGETS + "select.html": lambda context: _select(context["widget"]),
    WIDGETS + "textarea.html": lambda context: _textarea(context["widget"]),
    **{name: _error_list for name in ERROR_LIST_TEMPLATES},
    "django/forms/div.html": _hidden_only_form,
}


class FastRenderer(BaseRenderer):
    """The default form renderer, with the stock widget templates written in Python.

    Used only while the default renderer is Django's own (``DjangoTemplates``, whose widget
    templates cannot be overridden by the project); otherwise it is a plain pass-through. It
    may itself be the ``FORM_RENDERER``: it then stands in front of ``DjangoTemplates``.
    """

    @staticmethod
    def _default() -> BaseRenderer:
        default = get_default_renderer()
        return _stock_renderer() if isinstance(default, FastRenderer) else default

    @property
    def form_template_name(self) -> str:
        return self._default().form_template_name

    @property
    def formset_template_name(self) -> str:
        return self._default().formset_template_name

    @property
    def field_template_name(self) -> str:
        return self._default().field_template_name

    @property
    def bound_field_class(self):
        return self._default().bound_field_class

    def get_template(self, template_name):
        return self._default().get_template(template_name)

    def render(self, template_name, context, request=None):
        default = self._default()
        write = _WRITERS.get(template_name) if type(default) is DjangoTemplates else None
        html = write(context) if write is not None else None
        if html is None:
            return default.render(template_name, context, request=request)
        return html


@cache
def _stock_renderer() -> DjangoTemplates:
    return DjangoTemplates()


#: The renderer of the CRF forms (``default_renderer`` of a form, ``renderer`` of a formset).
fast_renderer = FastRenderer()


class CachedOptionsSelect(forms.Select):
    """A select of a long reference list: its options written once, then reused.

    A subclass names its list (``list_name``) and says what identifies it as shown
    (``version()``: e.g. a digest computed by the database in one light query, instead of
    reading the whole list). The options are cached per list, language and version, so a
    changed list, or another language, is written afresh; the chosen value is marked on the
    cached text. Attributes are written by ``flatatt`` (sorted), the options without line
    breaks.
    """

    MAX_CACHED = 8
    list_name = ""
    _cache: dict[tuple, str] = {}
    _lock = Lock()

    def version(self) -> Hashable:
        raise NotImplementedError("a CachedOptionsSelect says what identifies its list")

    def render(self, name, value, attrs=None, renderer=None):
        final = self.build_attrs(self.attrs, attrs)
        final["name"] = name
        options = self.options_html()
        for chosen in self.format_value(value):
            tag = format_html('<option value="{}">', chosen)
            options = options.replace(tag, tag[:-1] + " selected>", 1)
        return mark_safe(format_html("<select{}>", flatatt(final)) + options + "</select>")  # noqa: S308 - every piece escaped

    def options_html(self) -> str:
        key = (type(self).list_name, get_language(), self.version())
        options = self._cache.get(key)
        if options is None:
            options = self._write_options()
            with self._lock:
                if len(self._cache) >= self.MAX_CACHED:
                    self._cache.clear()
                self._cache[key] = options
        return options

    def _write_options(self) -> str:
        def option(value, label) -> str:
            return format_html('<option value="{}">{}</option>', value, label)

        parts = []
        for value, label in self.choices:
            if isinstance(label, list | tuple):
                parts.append(format_html('<optgroup label="{}">', value))
                parts.extend(option(v, text) for v, text in label)
                parts.append("</optgroup>")
            else:
                parts.append(option(value, label))
        return "".join(parts)
