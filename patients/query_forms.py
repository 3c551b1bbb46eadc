"""Forms of data queries: opening one on a form or a field, and a step of its conversation.

The services (``patients/query_services.py``) do the checks that need the database (the form
exists for this patient, the step is allowed in the query's status); these forms only shape the
input.
"""

from __future__ import annotations

from collections.abc import Iterable

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Layout
from django import forms
from django.utils.translation import gettext_lazy as _

from patients import casebook, query_services
from patients.models_dm import QueryMessage

TEXT = forms.Textarea(attrs={"rows": 4})


def form_choice(kind: str, object_id: int) -> str:
    return f"{kind}:{object_id}"


def parse_form_choice(value: str) -> tuple[str, int] | None:
    kind, _sep, object_id = (value or "").partition(":")
    return (kind, int(object_id)) if object_id.isdigit() else None


def _form_choices(rows: Iterable[casebook.FormRow]) -> list[tuple[str, str]]:
    choices = [("", "---------")]
    for row in rows:
        when = f" · {row.on_date.isoformat()}" if row.on_date else ""
        label = f"{casebook.form_label(row.kind)}{when} (#{row.object_id})"
        choices.append((form_choice(row.kind, row.object_id), label))
    return choices


def _field_choices(kinds: Iterable[str]) -> list:
    """The fields of one kind of form, or grouped by form when several may be chosen."""
    kinds = list(dict.fromkeys(kinds))
    empty = [("", _("The whole form"))]
    if len(kinds) == 1:
        return empty + query_services.field_choices(kinds[0])
    return empty + [
        (casebook.form_label(kind), query_services.field_choices(kind)) for kind in kinds
    ]


class QueryOpenForm(forms.Form):
    """A new query: the form (one of the patient's forms), optionally a field, the message."""

    form = forms.ChoiceField(label=_("Form"))
    field = forms.ChoiceField(label=_("Field"), required=False)
    text = forms.CharField(label=_("Message to the site"), widget=TEXT, max_length=4000)

    def __init__(self, *args, rows: list[casebook.FormRow], kind: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["form"].choices = _form_choices(rows)
        kinds = [kind] if kind else [row.kind for row in rows]
        self.fields["field"].choices = _field_choices(kinds)
        self.helper = FormHelper()
        self.helper.form_tag = False

    def clean_form(self) -> tuple[str, int]:
        parsed = parse_form_choice(self.cleaned_data["form"])
        if parsed is None:
            raise forms.ValidationError(_("Choose a form."))
        return parsed

    def clean(self):
        cleaned = super().clean()
        chosen, field = cleaned.get("form"), cleaned.get("field")
        if chosen and field and field not in dict(query_services.field_choices(chosen[0])):
            self.add_error("field", _("This form has no such field."))
        return cleaned


class QueryStepForm(forms.Form):
    """A step of the conversation: answer (site), close or re-open (monitor), with a message."""

    action = forms.ChoiceField(label=_("Step"))  # sent by the button pressed
    text = forms.CharField(label=_("Message"), widget=TEXT, max_length=4000)

    def __init__(self, *args, actions: Iterable[str], **kwargs):
        super().__init__(*args, **kwargs)
        labels = {
            QueryMessage.Action.ANSWER: _("Answer"),
            QueryMessage.Action.CLOSE: _("Close"),
            QueryMessage.Action.REOPEN: _("Re-open"),
        }
        self.fields["action"].choices = [(a, labels[a]) for a in actions]
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout("text")
