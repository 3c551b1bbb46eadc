"""The form asking for a data export."""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Field, Layout
from django import forms
from django.utils.translation import gettext_lazy as _

from studies.models import ExportJob


class ExportForm(forms.Form):
    format = forms.ChoiceField(
        label=_("Format"),
        choices=ExportJob.Format.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose a format.")},
    )
    include_audit = forms.BooleanField(
        label=_("Include audit records"),
        required=False,
        help_text=_("ODM only: who changed each record, when and why (from the audit trail)."),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(Field("format"), Field("include_audit"))

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("include_audit") and cleaned.get("format") != ExportJob.Format.ODM:
            self.add_error(
                "include_audit", _("Audit records can only be included in an ODM export.")
            )
        return cleaned
