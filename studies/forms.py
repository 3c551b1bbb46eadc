"""Forms of the studies app, and the reason-for-change field every edit of saved data carries."""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Field, Layout
from django import forms
from django.utils.translation import gettext_lazy as _

from studies.models import StudySite


class ReasonForChangeMixin:
    """Adds a required "reason for change" to forms editing data that was already saved.

    The reason goes into the audit trail with the old and new values (21 CFR 11.10(e)).
    """

    reason_help = _("Why is this saved data being changed? Recorded in the audit trail.")

    def add_reason_field(self) -> None:
        if self.instance.pk:
            self.fields["reason"] = forms.CharField(
                label=_("Reason for change"),
                help_text=self.reason_help,
                widget=forms.Textarea(attrs={"rows": 2}),
                max_length=500,
                required=True,
                error_messages={
                    "required": _("Give a reason for changing saved data (audit trail).")
                },
            )

    def clean_reason(self) -> str:
        reason = self.cleaned_data.get("reason", "").strip()
        if self.instance.pk and not reason:
            raise forms.ValidationError(_("Give a reason for changing saved data (audit trail)."))
        return reason


class StudySiteForm(ReasonForChangeMixin, forms.ModelForm):
    class Meta:
        model = StudySite
        fields = [
            "recruitment_status",
            "activation_date",
            "principal_investigator",
            "target_enrolment",
        ]
        widgets = {"activation_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_reason_field()
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(*(Field(name) for name in self.fields))
