"""Forms of adverse events and SAE reports (crispy-forms, Bootstrap 5).

The CTCAE v5.0 term is a plain select grouped by system organ class, which works without
JavaScript; ``static/js/ctcae_picker.js`` turns it into a search box fed by the
``ctcae_term_search`` view and shows the definition of the chosen grade next to the grade.
The services (patients/ae_services.py) do the validation that needs the database.
"""

from __future__ import annotations

from itertools import groupby
from operator import attrgetter

from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Fieldset, Layout
from django import forms
from django.forms.models import ModelChoiceIterator
from django.forms.utils import flatatt
from django.urls import reverse_lazy
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from patients.models import AdverseEvent, CtcaeTerm, SaeReport

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class _TermsBySoc(ModelChoiceIterator):
    """Options grouped in one <optgroup> per system organ class (one query, light columns)."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        terms = self.queryset.only("pk", "soc", "term").order_by("soc", "term")
        for soc, group in groupby(terms, key=attrgetter("soc")):
            yield (soc, [self.choice(term) for term in group])


class _TermSelect(forms.Select):
    """The select of the ~850 CTCAE terms, written out directly: rendering each option through
    the widget templates costs more than the rest of the page."""

    def render(self, name, value, attrs=None, renderer=None):
        final = self.build_attrs(self.attrs, attrs)
        final["name"] = name
        chosen = {str(v) for v in self.format_value(value)}

        def option(key, label) -> str:
            selected = " selected" if str(key) in chosen else ""
            return format_html('<option value="{}"{}>{}</option>', key, selected, label)

        parts = [format_html("<select{}>", flatatt(final))]
        for key, label in self.choices:
            if isinstance(label, list | tuple):
                parts.append(format_html('<optgroup label="{}">', key))
                parts.extend(option(k, text) for k, text in label)
                parts.append("</optgroup>")
            else:
                parts.append(option(key, label))
        parts.append("</select>")
        return mark_safe("".join(parts))  # noqa: S308 - every piece escaped by format_html


class CtcaeTermField(forms.ModelChoiceField):
    iterator = _TermsBySoc


class AdverseEventForm(forms.ModelForm):
    term = CtcaeTermField(
        label=_("CTCAE v5.0 term"),
        queryset=CtcaeTerm.objects.all(),
        widget=_TermSelect(
            attrs={"data-ctcae-term": "", "data-search-url": reverse_lazy("ctcae_term_search")}
        ),
        help_text=_("Type part of the term to search the NCI CTCAE v5.0 list."),
    )
    grade = forms.TypedChoiceField(
        label=_("Grade"),
        coerce=int,
        widget=forms.Select(attrs={"data-ctcae-grade": ""}),
    )
    reason = forms.CharField(
        label=_("Reason for change"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Needed when you correct a saved adverse event."),
    )

    class Meta:
        model = AdverseEvent
        fields = list(AdverseEvent.ENTERED_FIELDS)
        widgets = {"onset_on": DATE, "resolved_on": DATE, "death_on": DATE}

    def __init__(
        self,
        *args,
        editing: bool = False,
        study_drug: bool = True,
        dlt_window_days: int | None = None,
        grade_text: str = "",
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["term"].widget.attrs.update(
            {
                "data-msg-placeholder": gettext("Search a CTCAE v5.0 term, e.g. pneumonitis"),
                "data-msg-none": gettext("No CTCAE v5.0 term matches."),
                "data-msg-undefined": gettext(
                    "CTCAE v5.0 does not define grade %(grade)s for this term."
                ),
            }
        )
        self.fields["grade"].choices = [("", "---------")] + [
            (g, gettext("Grade %(grade)s") % {"grade": g}) for g in range(1, 6)
        ]
        if not editing:
            del self.fields["reason"]
        if not study_drug:
            del self.fields["attribution_study_drug"]
        if not dlt_window_days:
            del self.fields["dlt"]
        else:
            self.fields["dlt"].help_text = _(
                "Grade 3 or higher, related to treatment, with onset within %(days)s days of the "
                "first SBRT fraction."
            ) % {"days": dlt_window_days}
        self.fields["death_on"].help_text = _("Grade 5 (death related to the event) only.")
        self.grade_text = grade_text
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True
        self.helper.layout = self._layout()

    def _layout(self) -> Layout:
        present = set(self.fields)

        def only(*names: str) -> list[str]:
            return [name for name in names if name in present]

        return Layout(
            Fieldset(
                _("Adverse event"),
                "term",
                "term_detail",
                "grade",
                HTML(
                    '<div class="form-text mb-3" data-ctcae-grade-text aria-live="polite">'
                    "{{ form.grade_text }}</div>"
                ),
                "onset_on",
                "resolved_on",
            ),
            Fieldset(
                _("Attribution"),
                *only("attribution_sbrt", "attribution_systemic", "attribution_study_drug"),
            ),
            Fieldset(_("Seriousness"), "serious", *AdverseEvent.SAE_CRITERIA),
            Fieldset(_("Action and outcome"), "action", "outcome", "death_on"),
            *([Fieldset(_("Dose-limiting toxicity"), "dlt")] if "dlt" in present else []),
            *(["reason"] if "reason" in present else []),
        )

    def service_data(self) -> dict:
        """The cleaned values the service takes (fields hidden from this study left out)."""
        return {
            name: self.cleaned_data[name]
            for name in self.Meta.fields
            if name in self.fields and name in self.cleaned_data
        }


class SaeReportForm(forms.ModelForm):
    class Meta:
        model = SaeReport
        fields = ["kind", "reported_on", "narrative"]
        widgets = {"reported_on": DATE, "narrative": forms.Textarea(attrs={"rows": 6})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True
