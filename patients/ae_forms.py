"""Forms of adverse events and SAE reports (crispy-forms, Bootstrap 5).

The CTCAE v5.0 term is a plain select grouped by system organ class, which works without
JavaScript; ``static/js/ctcae_picker.js`` turns it into a search box fed by the
``ctcae_term_search`` view and shows the definition of the chosen grade next to the grade.
The services (patients/ae_services.py) do the validation that needs the database.
"""

from __future__ import annotations

from itertools import groupby
from operator import attrgetter

from crispy_forms.layout import HTML, Fieldset, Layout
from django import forms
from django.db import connections
from django.db.models import Func, StringAgg, TextField, Value
from django.db.models.functions import MD5
from django.forms.models import ModelChoiceIterator
from django.urls import reverse_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from patients.models import AdverseEvent, CtcaeTerm, SaeReport
from studies.crispy_fields import crf_helper
from studies.widgets import CachedOptionsSelect, fast_renderer

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class _TermsBySoc(ModelChoiceIterator):
    """Options grouped in one <optgroup> per system organ class (one query, light columns)."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        terms = self.queryset.only("pk", "soc", "term").order_by("soc", "term")
        for soc, group in groupby(terms, key=attrgetter("soc")):
            yield (soc, [self.choice(term) for term in group])


def _terms_digest(queryset) -> str | None:
    """A digest of the terms' id, class and term (the options are these, sorted), computed by
    the database in one light query. The whole table (the field's usual queryset) is digested
    by a plain statement, cheaper to run than to compile through the ORM."""
    query = queryset.query
    if query.has_filters() or query.is_sliced or query.distinct or query.combinator:
        shown = Func(Value("\t"), "pk", "soc", "term", function="CONCAT_WS")
        return queryset.order_by().aggregate(
            digest=MD5(StringAgg(shown, Value("\n"), order_by=("pk",)), output_field=TextField())
        )["digest"]
    connection = connections[queryset.db]
    meta, quote = queryset.model._meta, connection.ops.quote_name
    pk = quote(meta.pk.column)
    columns = ", ".join([pk, *(quote(meta.get_field(name).column) for name in ("soc", "term"))])
    sql = f"SELECT MD5(STRING_AGG(CONCAT_WS(%s, {columns}), %s ORDER BY {pk})) FROM "  # noqa: S608 - quoted model names
    with connection.cursor() as cursor:
        cursor.execute(sql + quote(meta.db_table), ["\t", "\n"])
        return cursor.fetchone()[0]


class _TermSelect(CachedOptionsSelect):
    """The select of the ~850 CTCAE terms: writing its options costs more than the rest of the
    page, so they are written once per language and version of the term list."""

    list_name = "ctcae_terms"

    def version(self) -> tuple[str | None, str | None]:
        return _terms_digest(self.choices.queryset), self.choices.field.empty_label


class CtcaeTermField(forms.ModelChoiceField):
    iterator = _TermsBySoc


class AdverseEventForm(forms.ModelForm):
    default_renderer = fast_renderer

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
        self.helper = crf_helper(self, self._layout())

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
    default_renderer = fast_renderer

    class Meta:
        model = SaeReport
        fields = ["kind", "reported_on", "narrative"]
        widgets = {"reported_on": DATE, "narrative": forms.Textarea(attrs={"rows": 6})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.helper = crf_helper(self)
