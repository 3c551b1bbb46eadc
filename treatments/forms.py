"""The SBRT course form: course details, one prescription per treated lesion, the fraction log."""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from lesions.models import Lesion
from treatments.models import Fraction, RadiotherapyCourse

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class CourseForm(forms.ModelForm):
    reason = forms.CharField(
        label=_("Reason for change"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Needed when you correct a saved course."),
    )
    confirm_deviations = forms.BooleanField(
        label=_("I confirm these deviations from the protocol are what was done"),
        required=False,
    )

    class Meta:
        model = RadiotherapyCourse
        fields = [
            "technique",
            "motion_management",
            "image_guidance",
            "planned_start",
            "planned_end",
        ]
        widgets = {"planned_start": DATE, "planned_end": DATE}

    def __init__(self, *args, editing: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not editing:
            del self.fields["reason"]
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True


class LesionChoiceField(forms.ModelChoiceField):
    """A lesion chosen among lesions already read: neither rendering nor validating a form of
    the formset runs a query (the page reads the patient's lesions once)."""

    def use(self, lesions) -> None:
        self._by_pk = {str(lesion.pk): lesion for lesion in lesions}
        self.choices = [("", self.empty_label), *((le.pk, str(le)) for le in lesions)]

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, Lesion):
            value = value.pk
        lesion = getattr(self, "_by_pk", {}).get(str(value))
        if lesion is None:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return lesion


class PrescriptionForm(forms.Form):
    lesion = LesionChoiceField(label=_("lesion"), queryset=Lesion.objects.none(), required=False)
    total_dose_gy = forms.DecimalField(
        label=_("total dose (Gy)"), required=False, max_digits=5, decimal_places=2, min_value=0
    )
    fractions = forms.IntegerField(label=_("fractions"), required=False, min_value=1, max_value=40)
    dose_per_fraction_gy = forms.DecimalField(
        label=_("dose per fraction (Gy)"),
        required=False,
        max_digits=5,
        decimal_places=2,
        min_value=0,
    )
    isodose_pct = forms.IntegerField(
        label=_("isodose (%)"), required=False, min_value=30, max_value=100
    )

    def __init__(self, *args, lesions=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if lesions is not None:
            self.fields["lesion"].use(list(lesions))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("lesion"):
            for name in ("total_dose_gy", "fractions", "dose_per_fraction_gy"):
                if cleaned.get(name) is None:
                    self.add_error(name, _("This field is required."))
        return cleaned


class FractionForm(forms.Form):
    number = forms.IntegerField(label=_("fraction"), required=False, min_value=1, max_value=40)
    day = forms.DateField(label=_("date"), required=False, widget=DATE)
    status = forms.ChoiceField(label=_("status"), choices=Fraction.Status.choices)
    reason = forms.CharField(label=_("reason"), required=False, max_length=200)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("number") and not cleaned.get("day"):
            self.add_error("day", _("This field is required."))
        return cleaned


PrescriptionFormSet = forms.formset_factory(PrescriptionForm, extra=3, max_num=10)
FractionFormSet = forms.formset_factory(FractionForm, extra=5, max_num=40)
