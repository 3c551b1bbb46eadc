"""The study drug cycle form: what was given; the planned dose is computed, never typed."""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from django import forms
from django.utils.translation import gettext_lazy as _

from treatments.forms import DATE
from treatments.models import DrugCycle


class CycleForm(forms.Form):
    given_on = forms.DateField(
        label=_("day 1 given"),
        required=False,
        widget=DATE,
        help_text=_("Leave empty for an omitted cycle."),
    )
    height_cm = forms.DecimalField(
        label=_("height (cm)"), required=False, max_digits=5, decimal_places=1
    )
    weight_kg = forms.DecimalField(
        label=_("weight (kg)"), required=False, max_digits=5, decimal_places=1
    )
    given_total_mg = forms.DecimalField(
        label=_("dose given this cycle (mg)"),
        required=False,
        max_digits=9,
        decimal_places=2,
        min_value=0,
        help_text=_("Total over the cycle's administration days; 0 for an omitted cycle."),
    )
    status = forms.ChoiceField(
        label=_("status"), choices=DrugCycle.Status.choices, initial=DrugCycle.Status.GIVEN
    )
    reason = forms.CharField(
        label=_("reason (delay, reduction, interruption, omission)"),
        required=False,
        max_length=200,
        help_text=_("Needed unless the cycle was given as planned."),
    )
    reason_for_change = forms.CharField(
        label=_("Reason for change"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Needed when you correct a saved cycle."),
    )

    def __init__(self, *args, editing: bool = False, per_m2: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not editing:
            del self.fields["reason_for_change"]
        if not per_m2:
            del self.fields["height_cm"]
            del self.fields["weight_kg"]
        else:
            self.fields["height_cm"].help_text = _("Measured for this cycle (for the BSA).")
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True

    @staticmethod
    def initial_for(cycle: DrugCycle) -> dict:
        return {
            "given_on": cycle.given_on,
            "height_cm": cycle.height_cm,
            "weight_kg": cycle.weight_kg,
            "given_total_mg": cycle.given_total_mg,
            "status": cycle.status,
            "reason": cycle.reason,
        }

    def data_for_service(self) -> dict:
        return {
            name: self.cleaned_data.get(name)
            for name in ("given_on", "height_cm", "weight_kg", "given_total_mg", "status", "reason")
        }
