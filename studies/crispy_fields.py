"""crispy-forms fields written without a template render per field (Bootstrap 5 pack).

``{% crispy form %}`` renders ``bootstrap5/field.html`` and three included templates for every
field, with the whole page context flattened each time: on a CRF page of 20 fields that costs
more than rendering a 200-row table. ``FastField`` writes the same HTML, byte for byte, in
Python for the plain case (the pack's own templates, a label above the field, help text and
errors below it); anything else (another template pack or field template, horizontal forms,
inline help, radio buttons, files, hidden fields, extra attributes) goes through crispy as
usual. ``tests/cross/test_fast_widgets.py`` compares both on every kind of field of the CRFs.

``crf_helper()`` is the helper of the CRF forms: no ``<form>`` tag nor CSRF token (the page
writes them) and a layout whose plain field names are ``FastField``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import crispy_bootstrap5
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Div, Field, Fieldset, Layout, LayoutObject, Row
from crispy_forms.utils import TEMPLATE_PACK, render_field
from django import forms
from django.conf import settings
from django.forms.utils import ErrorList
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils.functional import Promise
from django.utils.html import conditional_escape

logger = logging.getLogger(__name__)

PACK = "bootstrap5"
#: The pack's templates that FastField writes in Python; it steps aside if one is overridden.
TEMPLATES = (
    "field.html",
    "layout/help_text_and_errors.html",
    "layout/help_text.html",
    "layout/field_errors.html",
)
#: Helper settings (context variables) that must be unset for the plain path.
_PLAIN = ("tag", "label_class", "field_class", "help_text_inline")


@cache
def _pack_templates_are_stock() -> bool:
    """True while ``bootstrap5/field.html`` and its includes are crispy-bootstrap5's own."""
    home = Path(crispy_bootstrap5.__file__).resolve().parent
    for name in TEMPLATES:
        try:
            origin = get_template(f"{PACK}/{name}").origin.name
        except TemplateDoesNotExist:
            return False
        if not Path(origin).resolve().is_relative_to(home):
            return False
    return True


def _text(value) -> str:
    """``{{ value }}`` of a string: escaped unless safe."""
    return conditional_escape(value if isinstance(value, str) else str(value))


def _crispy_field(bound_field: forms.BoundField, css_class: str) -> str:
    """``{% crispy_field field 'class' css_class %}``: classes added to the widget, rendered."""
    widget = bound_field.field.widget
    converters = getattr(settings, "CRISPY_CLASS_CONVERTERS", {})
    class_name = type(widget).__name__.lower()
    class_name = converters.get(class_name, class_name)
    classes = widget.attrs.get("class", "")
    if classes:
        if classes.find(class_name) == -1:
            classes += f" {class_name}"
    else:
        classes = class_name
    widget.attrs["class"] = classes
    for name in css_class.split():
        if name not in widget.attrs["class"].split():
            widget.attrs["class"] += " " + name
    return str(bound_field)


@dataclass(frozen=True)
class _Shown:
    """What the field template reads of a bound field, each read once (labels and help texts
    are lazy translations: every read translates them again)."""

    field: forms.BoundField
    label: str
    help_text: str
    errors: ErrorList
    auto_id: str
    required: bool

    @classmethod
    def of(cls, bound_field: forms.BoundField) -> _Shown:
        label, help_text = bound_field.label, bound_field.help_text
        return cls(
            field=bound_field,
            label=str(label) if isinstance(label, Promise) else label,
            help_text=str(help_text) if isinstance(help_text, Promise) else help_text,
            errors=bound_field.errors,
            auto_id=bound_field.auto_id,
            required=bound_field.field.required,
        )

    @property
    def asterisk(self) -> str:
        return '<span class="asteriskField">*</span>' if self.required else ""

    @property
    def required_class(self) -> str:
        return " requiredField" if self.required else ""


def _help_text_and_errors(shown: _Shown, show_errors: bool) -> str:
    """``layout/help_text_and_errors.html`` with errors and help text below the field."""
    errors = ""
    if show_errors and shown.errors:
        auto_id = _text(shown.auto_id)
        items = "".join(
            f'\n        <span id="error_{n}_{auto_id}"><strong>{_text(error)}</strong></span>\n    '
            for n, error in enumerate(shown.errors, start=1)
        )
        errors = (
            f'\n    <div id="{_text(shown.errors.field_id)}_error" class="invalid-feedback">\n    '
            f"{items}\n    </div>\n"
        )
    help_text = ""
    if shown.help_text:
        shown_id = f'id="{_text(shown.auto_id)}_helptext" ' if shown.auto_id else ""
        help_text = (
            f'\n    \n        <div {shown_id}class="form-text">{shown.help_text}</div>\n    \n'
        )
    return f"\n\n\n    {errors}\n\n\n\n\n    {help_text}\n\n\n"


def _checkbox(shown: _Shown, help_and_errors: str) -> str:
    invalid = " is-invalid" if shown.errors else ""
    widget = _crispy_field(shown.field, f"form-check-input{invalid}")
    return (
        f"\n                    \n                        {widget}\n                    "
        f'\n                <label for="{_text(shown.field.id_for_label)}" '
        f'class="form-check-label{shown.required_class}">'
        f"\n                    {_text(shown.label)}{shown.asterisk}\n                </label>"
        f"\n                {help_and_errors}\n            "
    )


def _control(shown: _Shown, help_and_errors: str) -> str:
    invalid = " is-invalid" if shown.errors else ""
    if isinstance(shown.field.field.widget, forms.Select):
        widget = _crispy_field(shown.field, f"form-select{invalid}")
        widget = (
            f"\n                        \n                            {widget}"
            "\n                        \n                    "
        )
    else:
        widget = _crispy_field(shown.field, f"form-control{invalid}")
        widget = f"\n                        {widget}\n                    "
    return (
        f"\n                \n                    {widget}"
        f"\n                    \n                        {help_and_errors}\n                    "
        "\n                \n            "
    )


def _label(shown: _Shown) -> str:
    id_for_label = shown.field.id_for_label
    label_for = f'for="{_text(id_for_label)}"' if id_for_label else ""
    return (
        f"\n            \n            <label\n                {label_for} "
        f'class="form-label{shown.required_class}">\n                {_text(shown.label)}'
        f"{shown.asterisk}\n            </label>\n        "
    )


def write_field(bound_field: forms.BoundField, flags: dict) -> str:
    """``bootstrap5/field.html`` of a visible field, label above (see ``writes()``)."""
    shown = _Shown.of(bound_field)
    checkbox = isinstance(bound_field.field.widget, forms.CheckboxInput)
    wrapper_class = flags.get("wrapper_class")
    classes = "form-check" if checkbox else "mb-3"
    if wrapper_class:
        classes += f" {_text(wrapper_class)}"
    if css := bound_field.css_classes():
        classes += f" {_text(css)}"
    label = _label(shown) if shown.label and not checkbox else ""
    help_and_errors = _help_text_and_errors(shown, bool(flags.get("form_show_errors")))
    body = (_checkbox if checkbox else _control)(shown, help_and_errors)
    html = (
        f'\n    <div id="div_{_text(shown.auto_id)}" class="{classes}">\n        {label}'
        f"\n\n        \n\n        \n            {body}\n        \n        \n    </div>\n    "
    )
    if checkbox:
        html = f'\n        <div class="mb-3">\n        \n    {html}\n        \n        </div>\n    '
    return f"\n\n\n    {html}\n\n"


def writes(bound_field: forms.BoundField, flags: dict) -> bool:
    """True when ``write_field`` gives the pack's HTML for this field under these settings."""
    widget = bound_field.field.widget
    return (
        all(not flags.get(name) for name in _PLAIN)
        and bool(flags.get("form_show_labels"))
        and bool(flags.get("error_text_inline"))
        and "form-horizontal" not in (flags.get("form_class") or "")
        and not bound_field.is_hidden
        and not bound_field.use_fieldset
        and not isinstance(widget, forms.RadioSelect | forms.CheckboxSelectMultiple)
        and not isinstance(widget, forms.FileInput)
        # Wrappers (multi-widgets, admin's related-field wrapper) get crispy's own handling.
        and not hasattr(widget, "widgets")
        and not hasattr(widget, "widget")
        and _pack_templates_are_stock()
    )


_FLAGS = (
    *_PLAIN,
    "form_show_labels",
    "form_show_errors",
    "error_text_inline",
    "form_class",
    "wrapper_class",
)


class FastField(Field):
    """A field of a layout, written by ``write_field`` when it can be.

    ``FastField("name")`` stands for the name in a layout (the helper's ``field_template``
    applies, as it does to a name); ``FastField("name", template=...)`` for a ``Field``
    without attributes.
    """

    def __init__(self, *fields: str, template: str | None = None) -> None:
        super().__init__(*fields, template=template)
        self.named = template is None

    def render(self, form, context, template_pack=TEMPLATE_PACK, extra_context=None, **kwargs):
        extra_context = extra_context or {}
        flags = {name: extra_context.get(name, context.get(name)) for name in _FLAGS}
        if self.named:
            template = getattr(form, "crispy_field_template", None)
        else:
            template = self.get_template_name(template_pack)
        plain = template_pack == PACK and template in (None, f"{PACK}/field.html")
        return "".join(
            self._render_one(name, form, context, template_pack, extra_context, flags, plain)
            for name in self.fields
        )

    def _render_one(self, name, form, context, template_pack, extra_context, flags, plain):
        bound_field = form[name] if name in form.fields else None
        if not plain or bound_field is None or not writes(bound_field, flags):
            if self.named:  # as crispy renders a name
                return render_field(name, form, context, template_pack=template_pack)
            return render_field(
                name,
                form,
                context,
                template=self.get_template_name(template_pack),
                attrs=self.attrs,
                layout_object=self,
                template_pack=template_pack,
                extra_context=extra_context,
            )
        if hasattr(form, "rendered_fields"):
            if name in form.rendered_fields:
                logger.warning("A field should only be rendered once: %s", name)
            form.rendered_fields.add(name)
        if not self.named:
            if isinstance(getattr(self, "bound_fields", None), list):
                self.bound_fields.append(bound_field)
            else:
                self.bound_fields = [bound_field]
        return write_field(bound_field, flags)


#: Layout objects whose names crispy renders with no options of their own.
_CONTAINERS = (Layout, Fieldset, Div, Row, Column)


def fast_fields(layout: LayoutObject) -> LayoutObject:
    """``layout`` with its plain fields as FastField: the names in plain containers (layout,
    fieldsets, divs, rows, columns), and ``Field`` objects without options."""
    if type(layout) not in _CONTAINERS:
        return layout
    for index, item in enumerate(layout.fields):
        if isinstance(item, str):
            layout.fields[index] = FastField(item)
        elif type(item) is Field and not item.attrs and not item.wrapper_class:
            layout.fields[index] = FastField(*item.fields, template=item.template)
        elif type(item) in _CONTAINERS:
            fast_fields(item)
    return layout


def crf_helper(form: forms.BaseForm, layout: Layout | None = None) -> FormHelper:
    """The helper of a CRF form: no ``<form>`` tag nor CSRF token (the page writes them);
    ``layout`` (default: every field of the form, in order) with FastField fields."""
    helper = FormHelper()
    helper.form_tag = False
    helper.disable_csrf = True
    helper.layout = fast_fields(layout if layout is not None else Layout(*form.fields))
    return helper
