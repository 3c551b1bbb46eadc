"""The SBRT course form: course details, one prescription per treated lesion, the fraction log."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from lesions.models import Lesion
from studies.crispy_fields import crf_helper
from studies.widgets import fast_renderer
from treatments.models import Fraction, RadiotherapyCourse

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class CourseForm(forms.ModelForm):
    default_renderer = fast_renderer

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
        self.helper = crf_helper(self)


@dataclass(frozen=True)
class LesionOptions:
    """Lesions offered by every row of a formset, with their labels written once (a label
    translates the lesion's organ)."""

    labels: tuple[tuple[int, str], ...]
    by_pk: dict[str, Lesion]

    @classmethod
    def of(cls, lesions: Iterable[Lesion]) -> LesionOptions:
        lesions = list(lesions)
        return cls(
            labels=tuple((le.pk, str(le)) for le in lesions),
            by_pk={str(le.pk): le for le in lesions},
        )


class LesionChoiceField(forms.ModelChoiceField):
    """A lesion chosen among lesions already read: neither rendering nor validating a form of
    the formset runs a query (the page reads the patient's lesions once)."""

    def use(self, lesions: LesionOptions | Iterable[Lesion]) -> None:
        options = lesions if isinstance(lesions, LesionOptions) else LesionOptions.of(lesions)
        self._by_pk = options.by_pk
        self.choices = [("", self.empty_label), *options.labels]

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
    default_renderer = fast_renderer

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
            self.fields["lesion"].use(lesions)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("lesion"):
            for name in ("total_dose_gy", "fractions", "dose_per_fraction_gy"):
                if cleaned.get(name) is None:
                    self.add_error(name, _("This field is required."))
        return cleaned


class FractionForm(forms.Form):
    default_renderer = fast_renderer

    number = forms.IntegerField(label=_("fraction"), required=False, min_value=1, max_value=40)
    day = forms.DateField(label=_("date"), required=False, widget=DATE)
    status = forms.ChoiceField(label=_("status"), choices=Fraction.Status.choices)
    reason = forms.CharField(label=_("reason"), required=False, max_length=200)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("number") and not cleaned.get("day"):
            self.add_error("day", _("This field is required."))
        return cleaned


class BasePrescriptionFormSet(forms.BaseFormSet):
    """Every row offers the same lesions (``form_kwargs["lesions"]``): prepared once."""

    def __init__(self, *args, form_kwargs=None, **kwargs) -> None:
        form_kwargs = dict(form_kwargs or {})
        if form_kwargs.get("lesions") is not None:
            form_kwargs["lesions"] = LesionOptions.of(form_kwargs["lesions"])
        super().__init__(*args, form_kwargs=form_kwargs, **kwargs)


PrescriptionFormSet = forms.formset_factory(
    PrescriptionForm,
    formset=BasePrescriptionFormSet,
    extra=3,
    max_num=10,
    renderer=fast_renderer,
)
FractionFormSet = forms.formset_factory(FractionForm, extra=5, max_num=40, renderer=fast_renderer)
