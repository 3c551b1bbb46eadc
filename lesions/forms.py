"""The baseline and follow-up imaging forms (crispy-forms, Bootstrap 5)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from lesions.models import ImagingAssessment, Lesion, Measurement
from studies.crispy_fields import crf_helper
from studies.widgets import fast_renderer

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def diameter_field(label, *, required: bool = False, help_text: str = "") -> forms.DecimalField:
    """A lesion diameter in mm, 0.1 mm steps; 0 to 500 mm (above is not a real lesion)."""
    return forms.DecimalField(
        label=label,
        required=required,
        max_digits=5,
        decimal_places=1,
        min_value=0,
        max_value=500,
        help_text=help_text,
    )


class ScanForm(forms.ModelForm):
    default_renderer = fast_renderer

    reason = forms.CharField(
        label=_("Reason for change"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Needed when you correct a saved scan."),
    )

    class Meta:
        model = ImagingAssessment
        fields = [
            "scan_date",
            "modality",
            "non_target_status",
            "new_lesions",
            "non_target_increase",
        ]
        widgets = {"scan_date": DATE}

    def __init__(
        self,
        *args,
        baseline: bool = False,
        has_non_targets: bool = True,
        editing: bool = False,
        irecist: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        if baseline or not irecist or not has_non_targets:
            del self.fields["non_target_increase"]
        if baseline:
            del self.fields["non_target_status"], self.fields["new_lesions"]
        elif not has_non_targets:
            del self.fields["non_target_status"]
        else:
            self.fields["non_target_status"].required = True
        if not editing:
            del self.fields["reason"]
        self.helper = crf_helper(self)


class BaselineLesionForm(forms.ModelForm):
    default_renderer = fast_renderer

    diameter_mm = diameter_field(
        _("Diameter (mm)"), help_text=_("Targets: longest diameter, short axis for nodes.")
    )

    class Meta:
        model = Lesion
        fields = [
            "label",
            "organ",
            "location",
            "is_node",
            "category",
            "status_at_inclusion",
            "planned_for_sbrt",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # A blank first choice, so that an unused row of the table is left out, not refused.
        self.fields["category"].choices = [("", "—")] + [
            c for c in Lesion.Category.choices if c[0] != Lesion.Category.NEW
        ]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("category") == Lesion.Category.TARGET and cleaned.get("diameter_mm") is None:
            self.add_error("diameter_mm", _("A target lesion needs its baseline measurement."))
        return cleaned


BaselineFormSet = forms.formset_factory(
    BaselineLesionForm, extra=6, max_num=15, renderer=fast_renderer
)


class MeasurementForm(forms.Form):
    """One target lesion at a follow-up scan, shown with its previous value."""

    default_renderer = fast_renderer

    state = forms.ChoiceField(label=_("state"), choices=Measurement.State.choices)
    diameter_mm = diameter_field(_("diameter (mm)"))
    fragments_mm = forms.CharField(label=_("fragments (mm)"), required=False, max_length=60)
    coalesced_into = forms.ModelChoiceField(
        label=_("coalesced into"), required=False, queryset=Lesion.objects.none()
    )

    status = forms.ChoiceField(
        label=_("status"),
        required=False,
        choices=[("", "—"), *ImagingAssessment.NonTarget.choices],
    )

    def __init__(self, *args, lesion: Lesion, previous, others, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lesion, self.previous = lesion, previous
        self.fields["coalesced_into"].queryset = others

    @property
    def followed_by_status(self) -> bool:
        """A new non-target lesion is followed by its status, not measured (iRECIST)."""
        return self.lesion.category == Lesion.Category.NEW and not self.lesion.new_is_target

    def _clean_status(self, cleaned):
        if not cleaned.get("status"):
            self.add_error("status", _("Give the status of this new lesion."))
        cleaned["state"] = _status_state(cleaned.get("status", ""))
        cleaned["diameter_mm"] = None
        return cleaned

    def clean(self):
        cleaned = super().clean()
        if self.followed_by_status:
            return self._clean_status(cleaned)
        cleaned["status"] = ""
        state, diameter = cleaned.get("state"), cleaned.get("diameter_mm")
        if state == Measurement.State.PRESENT and diameter is None:
            self.add_error("diameter_mm", _("Give the diameter, or choose another state."))
        if state != Measurement.State.PRESENT and diameter is not None:
            self.add_error("diameter_mm", _("A diameter is given only for a measured lesion."))
        if state == Measurement.State.SPLIT and not cleaned.get("fragments_mm"):
            self.add_error("fragments_mm", _("Give the fragments' diameters."))
        if state == Measurement.State.COALESCED and not cleaned.get("coalesced_into"):
            self.add_error("coalesced_into", _("Say which lesion it merged into."))
        return cleaned


def _status_state(status: str) -> str:
    gone = status == ImagingAssessment.NonTarget.CR
    return Measurement.State.DISAPPEARED if gone else Measurement.State.PRESENT


class NewLesionForm(forms.Form):
    default_renderer = fast_renderer

    label = forms.CharField(label=_("label"), max_length=10, required=False)
    organ = forms.ChoiceField(
        label=_("organ"),
        choices=[("", "—"), *Lesion._meta.get_field("organ").choices],
        required=False,
    )
    diameter_mm = diameter_field(_("diameter (mm)"))
    is_node = forms.BooleanField(label=_("lymph node"), required=False)
    is_target = forms.BooleanField(
        label=_("measurable"),
        required=False,
        initial=True,
        help_text=_("iRECIST: a new-lesion target (measured) or non-target."),
    )

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("label"):
            return cleaned
        if not cleaned.get("organ"):
            self.add_error("organ", _("Give the organ of the new lesion."))
        if cleaned.get("is_target") and cleaned.get("diameter_mm") is None:
            self.add_error("diameter_mm", _("A measurable new lesion needs its diameter."))
        return cleaned


NewLesionFormSet = forms.formset_factory(NewLesionForm, extra=2, max_num=10, renderer=fast_renderer)


class BaselineCorrectionForm(forms.Form):
    """The baseline scan's date, modality and target diameters, corrected with a reason."""

    default_renderer = fast_renderer

    scan_date = forms.DateField(label=_("scan date"), widget=DATE)
    modality = forms.ChoiceField(label=_("modality"), choices=ImagingAssessment.Modality.choices)
    reason = forms.CharField(label=_("Reason for change"), widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, targets=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.targets = list(targets)
        for lesion in self.targets:
            self.fields[f"lesion_{lesion.pk}"] = diameter_field(
                f"{lesion.label} ({lesion.get_organ_display()})", required=True
            )
        self.helper = crf_helper(self)

    def diameters(self) -> dict[int, Decimal]:
        return {le.pk: self.cleaned_data[f"lesion_{le.pk}"] for le in self.targets}
