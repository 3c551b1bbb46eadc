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


class RandomisationListForm(forms.Form):
    seed = forms.CharField(
        label=_("Seed"),
        required=False,
        max_length=100,
        help_text=_("Leave empty for a random seed. The seed is stored and shown to nobody."),
        widget=forms.PasswordInput(render_value=False),
    )
    block_multipliers = forms.CharField(
        label=_("Block size multipliers"),
        initial="1,2",
        help_text=_("Block sizes are these multiples of the sum of arm weights, drawn at random."),
    )
    slots_per_stratum = forms.IntegerField(
        label=_("Slots per stratum"), initial=100, min_value=10, max_value=5000
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False

    def clean_seed(self) -> str:
        seed = self.cleaned_data["seed"]
        if "|" in seed:
            raise forms.ValidationError(_("The seed cannot contain “|”."))
        return seed

    def clean_block_multipliers(self) -> tuple[int, ...]:
        raw = self.cleaned_data["block_multipliers"]
        try:
            values = tuple(int(part) for part in raw.split(",") if part.strip())
        except ValueError:
            values = ()
        if not values or any(v < 1 or v > 10 for v in values):
            raise forms.ValidationError(_("Give whole numbers from 1 to 10, e.g. 1,2."))
        return values


class RandomisationUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Allocation list (CSV)"),
        help_text=_("Columns: stratum, sequence, arm (arm code). One row per slot."),
    )

    def clean_file(self) -> list[dict[str, str]]:
        import csv
        import io

        upload = self.cleaned_data["file"]
        if upload.size > 5 * 1024 * 1024:
            raise forms.ValidationError(_("The file is larger than 5 MB."))
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise forms.ValidationError(_("The file is not UTF-8 text.")) from error
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or {"stratum", "sequence", "arm"} - set(reader.fieldnames):
            raise forms.ValidationError(
                _("The first line must name the columns stratum, sequence and arm.")
            )
        return list(reader)
