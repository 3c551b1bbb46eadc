"""Case report forms of the patient's path (crispy-forms, Bootstrap 5)."""

from __future__ import annotations

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
from studies.crispy_fields import crf_helper
from studies.widgets import fast_renderer

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class CrispyMixin:
    default_renderer = fast_renderer

    def setup_helper(self) -> None:
        self.helper = crf_helper(self)


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


class FactsForm(CrispyMixin, forms.ModelForm):
    """Screening data for computed eligibility; a reason is asked only to change saved values."""

    reason = forms.CharField(
        label=_("Reason for change"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Needed only when you change or delete values saved before."),
    )

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
        self.setup_helper()

    def changes_saved_values(self) -> bool:
        """True when a value that was already saved is changed (not when one is first entered)."""
        return bool(self.instance.pk) and any(
            self.initial.get(name) is not None for name in self.changed_data if name != "reason"
        )


def formset_changes_saved_rows(formset) -> bool:
    """True when a saved row of the formset is edited or deleted."""
    return any(
        form.instance.pk and (form.has_changed() or form in formset.deleted_forms)
        for form in formset.forms
    )


class LesionForm(forms.ModelForm):
    default_renderer = fast_renderer

    class Meta:
        model = ScreeningLesion
        fields = ["organ", "diameter_mm", "progressing", "long_bone"]


_ALL_UNITS = sorted({unit for units in LAB_UNITS.values() for unit in units})


class LabForm(forms.ModelForm):
    default_renderer = fast_renderer

    # A blank first choice, so that an untouched row is left out rather than half-filled.
    unit = forms.ChoiceField(
        label=_("unit"), choices=[("", "—"), *((u, u) for u in _ALL_UNITS)], required=False
    )

    class Meta:
        model = ScreeningLab
        fields = ["analyte", "value", "unit", "uln", "sampled_on"]
        widgets = {"sampled_on": DATE}

    def clean(self):
        cleaned = super().clean()
        analyte, unit = cleaned.get("analyte"), cleaned.get("unit")
        if analyte and not unit:
            self.add_error("unit", _("Give the unit of this value."))
        elif analyte and unit not in LAB_UNITS.get(analyte, ()):
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
    Patient,
    ScreeningLesion,
    form=LesionForm,
    extra=3,
    can_delete=True,
    max_num=10,
    renderer=fast_renderer,
)


#: The screening labs formset (built once: the factory is not free on every request).
LabFormSet = forms.inlineformset_factory(
    Patient,
    ScreeningLab,
    form=LabForm,
    extra=0,
    can_delete=True,
    max_num=len(ScreeningLab.Analyte.values),
    renderer=fast_renderer,
)


def lab_formset(data, patient: Patient, prefix: str = "labs"):
    """One row per analyte not yet entered, the analyte already chosen; saved rows first.

    The saved rows are read once: the analytes still missing come from them.
    """
    formset = LabFormSet(data, instance=patient, prefix=prefix)
    entered = {lab.analyte for lab in formset.get_queryset()}
    missing = [a for a in ScreeningLab.Analyte.values if a not in entered]
    formset.extra = len(missing)
    formset.initial_extra = [{"analyte": analyte} for analyte in missing]
    return formset


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


class UnblindForm(CrispyMixin, forms.Form):
    reason = forms.CharField(
        label=_("Medical reason for emergency unblinding"),
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    password = forms.CharField(
        label=_("Your password (to confirm it is you)"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.setup_helper()


class DeclineForm(CrispyMixin, forms.Form):
    reason = forms.CharField(label=_("Reason for declining"), max_length=200)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.setup_helper()
