"""Laboratory forms (crispy-forms, Bootstrap 5): a sample, a correction, a site's normal ranges.

Units are selects offering the analyte's accepted units (``patients/labunits.py``); values are
checked by the service (``patients/lab_services.py``), which words every refusal.
"""

from __future__ import annotations

from decimal import Decimal

from crispy_forms.layout import HTML, Column, Field, Layout, Row
from django import forms
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _

from patients import labunits
from patients.models_safety import Analyte, LabResult, NormalRange
from studies.crispy_fields import crf_helper
from studies.widgets import fast_renderer

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _plain(number: Decimal | None) -> str | None:
    """A stored decimal without its trailing zeros, in plain notation: 12.000 -> "12"."""
    return None if number is None else format(number.normalize(), "f")


def _unit_choices(analyte: str) -> list[tuple[str, str]]:
    return [(unit, unit) for unit in labunits.units_for(analyte)]


def _value_field(label) -> forms.DecimalField:
    return forms.DecimalField(label=label, required=False, max_digits=12, decimal_places=3)


def _reason_field(help_text) -> forms.CharField:
    return forms.CharField(
        label=_("Reason for change"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=help_text,
    )


class LabSampleForm(forms.Form):
    """One sample: its date and a value (with its unit) for any of the analytes."""

    default_renderer = fast_renderer

    sampled_on = forms.DateField(label=_("sample date"), widget=DATE)

    def __init__(self, *args, units: dict[str, str] | None = None, **kwargs) -> None:
        """``units``: analyte -> unit preselected (the site laboratory's, when known)."""
        super().__init__(*args, **kwargs)
        units = units or {}
        rows = [Field("sampled_on")]
        for analyte, label in Analyte.choices:
            self.fields[f"{analyte}_value"] = _value_field(label)
            self.fields[f"{analyte}_unit"] = forms.ChoiceField(
                label=_("unit"),
                required=False,
                choices=_unit_choices(analyte),
                initial=units.get(analyte, labunits.standard_unit(analyte)),
            )
            rows.append(
                Row(
                    Column(f"{analyte}_value", css_class="col-sm-5"),
                    Column(f"{analyte}_unit", css_class="col-sm-4"),
                    css_class=f"lab-row lab-{analyte}",
                )
            )
        self.helper = crf_helper(self, Layout(*rows))

    def clean(self):
        cleaned = super().clean()
        for analyte in Analyte.values:
            if cleaned.get(f"{analyte}_value") is not None and not cleaned.get(f"{analyte}_unit"):
                self.add_error(f"{analyte}_unit", _("Give the unit."))
        if not self.errors and not self.rows():
            raise forms.ValidationError(_("Enter at least one result."))
        return cleaned

    def rows(self) -> list[tuple[str, Decimal, str]]:
        """(analyte, value, unit) of every analyte given a value."""
        data = getattr(self, "cleaned_data", {})
        return [
            (analyte, data[f"{analyte}_value"], data.get(f"{analyte}_unit", ""))
            for analyte in Analyte.values
            if data.get(f"{analyte}_value") is not None
        ]

    @staticmethod
    def field_for(key: str) -> str | None:
        """The form field a service error key belongs to."""
        if key == "sampled_on":
            return key
        return f"{key}_value" if key in Analyte.values else None


class LabCorrectionForm(forms.Form):
    """Correct one saved result; a reason is required when anything changes.

    A plain form (not a ModelForm): the service compares the saved row with the new values.
    """

    default_renderer = fast_renderer

    sampled_on = forms.DateField(label=_("sample date"), widget=DATE)
    analyte = forms.ChoiceField(label=_("analyte"), choices=Analyte.choices)
    value = forms.DecimalField(label=_("value"), max_digits=12, decimal_places=3)
    unit = forms.ChoiceField(label=_("unit"), help_text=_("Choose a unit of the analyte."))
    reason = _reason_field(_("Required: the result is already saved."))

    def __init__(self, *args, result: LabResult, **kwargs) -> None:
        initial = {
            "sampled_on": result.sampled_on,
            "analyte": result.analyte,
            "value": _plain(result.value),
            "unit": result.unit,
        }
        super().__init__(*args, initial=initial, **kwargs)
        self.fields["unit"].choices = [
            (str(label), _unit_choices(analyte)) for analyte, label in Analyte.choices
        ]
        self.helper = crf_helper(self)

    def row(self) -> tuple[str, Decimal, str]:
        data = self.cleaned_data
        return data["analyte"], data["value"], data["unit"]

    @staticmethod
    def field_for(key: str) -> str | None:
        if key in ("sampled_on", "reason"):
            return key
        return "value" if key in Analyte.values else None


class NormalRangesForm(forms.Form):
    """A site laboratory's normal ranges, one row per analyte (LLN, ULN, unit)."""

    default_renderer = fast_renderer

    FIELDS = ("lln", "uln", "unit")

    def __init__(self, *args, ranges: dict[str, NormalRange] | None = None, **kwargs) -> None:
        self.ranges = ranges or {}
        initial = {}
        for analyte, normal_range in self.ranges.items():
            initial[f"{analyte}_lln"] = _plain(normal_range.lln)
            initial[f"{analyte}_uln"] = _plain(normal_range.uln)
            initial[f"{analyte}_unit"] = normal_range.unit
        super().__init__(*args, initial=initial, **kwargs)
        rows = []
        for analyte, label in Analyte.choices:
            self.fields[f"{analyte}_lln"] = _value_field(_("lower limit (LLN)"))
            self.fields[f"{analyte}_uln"] = _value_field(_("upper limit (ULN)"))
            self.fields[f"{analyte}_unit"] = forms.ChoiceField(
                label=_("unit"),
                required=False,
                choices=[("", "—"), *_unit_choices(analyte)],
            )
            rows.append(HTML(f'<h2 class="h6 mt-2">{escape(label)}</h2>'))
            rows.append(
                Row(
                    *(Column(f"{analyte}_{name}", css_class="col-sm-4") for name in self.FIELDS),
                    css_class=f"range-{analyte}",
                )
            )
        self.fields["reason"] = _reason_field(_("Required when you change or remove a range."))
        rows.append(Field("reason"))
        self.helper = crf_helper(self, Layout(*rows))

    def clean(self):
        cleaned = super().clean()
        for analyte in Analyte.values:
            has_limit = any(cleaned.get(f"{analyte}_{n}") is not None for n in ("lln", "uln"))
            if has_limit and not cleaned.get(f"{analyte}_unit"):
                self.add_error(f"{analyte}_unit", _("Give the unit of the range."))
        return cleaned

    def changed_rows(self) -> list[tuple[str, Decimal | None, Decimal | None, str]]:
        """(analyte, lln, uln, unit) of every analyte whose range is new, changed or cleared."""
        rows = []
        for analyte in Analyte.values:
            lln, uln, unit = (self.cleaned_data.get(f"{analyte}_{n}") for n in self.FIELDS)
            unit = unit or ""
            existing = self.ranges.get(analyte)
            if existing is None and lln is None and uln is None:
                continue
            if existing is not None and (existing.lln, existing.uln, existing.unit) == (
                lln,
                uln,
                unit,
            ):
                continue
            rows.append((analyte, lln, uln, unit))
        return rows

    @staticmethod
    def field_for(analyte: str, key: str) -> str | None:
        if key == "reason":
            return key
        return f"{analyte}_{key}" if key in NormalRangesForm.FIELDS else f"{analyte}_lln"
