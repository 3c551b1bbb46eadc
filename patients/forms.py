"""Case report forms of the patient's path (crispy-forms, Bootstrap 5)."""

from __future__ import annotations

from crispy_forms.helper import FormHelper
from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patients.eligibility import LAB_UNITS
from patients.models import (
    Consent,
    EligibilityFacts,
    Patient,
    ScreeningLab,
    ScreeningLesion,
)
from studies.forms import ReasonForChangeMixin

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class CrispyMixin:
    def setup_helper(self) -> None:
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True


class ScreeningForm(CrispyMixin, forms.ModelForm):
    class Meta:
        model = Patient
        fields = [
            "screening_number",
            "screened_on",
            "sex",
            "year_of_birth",
            "age_at_consent",
            "local_reference",
        ]
        widgets = {"screened_on": DATE}

    def __init__(self, *args, local_reference: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["screening_number"].required = True
        self.fields["screened_on"].required = True
        self.fields["sex"].required = True
        if not local_reference:
            del self.fields["local_reference"]
        self.setup_helper()


class FactsForm(ReasonForChangeMixin, CrispyMixin, forms.ModelForm):
    class Meta:
        model = EligibilityFacts
        fields = [
            "ecog",
            "current_line",
            "prior_lines",
            "liver_metastases",
            "restaging_on",
            "planned_treatment_start",
            "childbearing_potential",
            "pregnancy_test_on",
            "pregnancy_test_negative",
        ]
        widgets = {"restaging_on": DATE, "planned_treatment_start": DATE, "pregnancy_test_on": DATE}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in ("liver_metastases", "childbearing_potential", "pregnancy_test_negative"):
            self.fields[name] = forms.NullBooleanField(
                label=self.fields[name].label,
                required=False,
                widget=forms.Select(
                    choices=[("unknown", _("Not recorded")), ("true", _("Yes")), ("false", _("No"))]
                ),
            )
        if self.instance.pk and self.instance_has_data():
            self.add_reason_field()
        self.setup_helper()

    def instance_has_data(self) -> bool:
        return any(getattr(self.instance, f) is not None for f in self.Meta.widgets) or any(
            getattr(self.instance, f) is not None for f in ("ecog", "current_line", "prior_lines")
        )


class LesionForm(forms.ModelForm):
    class Meta:
        model = ScreeningLesion
        fields = ["organ", "diameter_mm", "progressing", "long_bone"]


_ALL_UNITS = sorted({unit for units in LAB_UNITS.values() for unit in units})


class LabForm(forms.ModelForm):
    unit = forms.ChoiceField(label=_("unit"), choices=[(u, u) for u in _ALL_UNITS])

    class Meta:
        model = ScreeningLab
        fields = ["analyte", "value", "unit", "uln", "sampled_on"]
        widgets = {"sampled_on": DATE}

    def clean(self):
        cleaned = super().clean()
        analyte, unit = cleaned.get("analyte"), cleaned.get("unit")
        if analyte and unit and unit not in LAB_UNITS.get(analyte, ()):
            self.add_error(
                "unit",
                _("This unit is not used for this analyte: use one of %(units)s.")
                % {"units": ", ".join(LAB_UNITS[analyte])},
            )
        sampled_on = cleaned.get("sampled_on")
        if sampled_on and sampled_on > timezone.localdate():
            self.add_error("sampled_on", _("This date is in the future."))
        return cleaned


LesionFormSet = forms.inlineformset_factory(
    Patient, ScreeningLesion, form=LesionForm, extra=3, can_delete=True, max_num=10
)
LabFormSet = forms.inlineformset_factory(
    Patient, ScreeningLab, form=LabForm, extra=2, can_delete=True, max_num=9
)


class ConsentForm(CrispyMixin, forms.ModelForm):
    class Meta:
        model = Consent
        fields = ["consented_on", "form_version"]
        widgets = {"consented_on": DATE}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.setup_helper()


class WithdrawalForm(CrispyMixin, forms.Form):
    withdrawn_on = forms.DateField(label=_("date of withdrawal"), widget=DATE)
    scope = forms.ChoiceField(
        label=_("scope of withdrawal"), choices=Consent.WithdrawalScope.choices
    )
    reason = forms.CharField(label=_("Reason for change"), widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.setup_helper()


class StatusForm(CrispyMixin, forms.Form):
    new_status = forms.ChoiceField(label=_("new status"))
    on = forms.DateField(label=_("date"), widget=DATE)
    off_study_reason = forms.ChoiceField(
        label=_("reason for going off study"),
        required=False,
        choices=[("", "—"), *Patient.OffStudyReason.choices],
    )
    reason = forms.CharField(label=_("Reason for change"), widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, choices=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["new_status"].choices = choices
        self.setup_helper()


class PatientFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False)
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All")), *Patient.Status.choices]
    )
