"""The CRF forms' fast rendering writes the HTML Django and crispy-forms would have written.

``studies/widgets.py`` writes the stock widget templates in Python and caches the options of the
CTCAE term select; ``studies/crispy_fields.py`` writes crispy-bootstrap5's field template in
Python. Each is compared here, byte for byte, with the templates it replaces: widgets of every
kind, fields of every kind (bound and unbound, with errors, help text, in English and French),
and the CRF forms themselves.
"""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal

import pytest
from crispy_forms.helper import FormHelper
from crispy_forms.layout import Layout, LayoutObject
from django import forms
from django.forms.renderers import DjangoTemplates
from django.template import Context, Template
from django.test import override_settings
from django.urls import reverse
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from lesions.forms import MeasurementForm, NewLesionFormSet, ScanForm
from lesions.models import Lesion
from patients.ae_forms import AdverseEventForm, _TermSelect
from patients.ctcae_terms import ensure_terms
from patients.forms import FactsForm, LesionFormSet
from patients.lab_forms import LabCorrectionForm, LabSampleForm, NormalRangesForm
from patients.models import AdverseEvent, CtcaeTerm, LabResult
from studies.crispy_fields import FastField, crf_helper
from studies.widgets import CachedOptionsSelect, FastRenderer, fast_renderer
from treatments.forms import CourseForm, FractionFormSet, PrescriptionFormSet

STOCK = DjangoTemplates()
LANGUAGES = ("en", "fr")
DAY = date(2026, 3, 2)
CRISPY = Template("{% load crispy_forms_tags %}{% crispy form %}")


class Everything(forms.Form):
    """One field of each widget kind the CRFs use, and a few they could."""

    error_css_class = "has-error"
    required_css_class = "is-required"

    text = forms.CharField(label=_("Reason for change"), help_text="Say <b>why</b>.")
    optional = forms.CharField(required=False, label="", max_length=10)
    number = forms.DecimalField(required=False, max_digits=5, decimal_places=1)
    integer = forms.IntegerField(min_value=1, max_value=40, initial=3)
    day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    tick = forms.BooleanField(required=False, label=_("Delete"), help_text=_("Yes"))
    must_tick = forms.BooleanField(label="Agreed & signed")
    choice = forms.ChoiceField(
        choices=[
            ("", "—"),
            ("Group <1>", [("a", _("Yes")), ("b", mark_safe("<i>b</i>"))]),  # noqa: S308 - a test
            (3, 3),
        ],
    )
    several = forms.MultipleChoiceField(
        required=False, choices=[("x", "X"), ("y", _("No"))], initial=["y"]
    )
    maybe = forms.NullBooleanField(required=False)
    hidden = forms.CharField(required=False, widget=forms.HiddenInput, initial="h&i")
    radio = forms.ChoiceField(required=False, choices=[("1", "One")], widget=forms.RadioSelect)
    upload = forms.FileField(required=False)
    password = forms.CharField(required=False, widget=forms.PasswordInput)
    attrs = forms.CharField(
        required=False,
        widget=forms.TextInput(
            attrs={"data-on": True, "data-off": False, "data-none": None, "title": _("Yes")}
        ),
    )


BAD = {
    "text": "",
    "optional": "far too long for ten",
    "number": "x",
    "integer": "99",
    "day": "2026-02-30",
    "notes": "<script>",
    "must_tick": "",
    "choice": "zzz",
    "several": ["y", "q"],
    "maybe": "true",
    "radio": "9",
    "attrs": 'a "quote"',
}
GOOD_LOOKING = {
    "text": "Because",
    "number": "12.5",
    "integer": "4",
    "day": "2026-03-02",
    "notes": "Line <1>\nLine 2",
    "tick": "on",
    "must_tick": "on",
    "choice": "a",
    "several": ["x"],
    "maybe": "false",
}


def _forms(data, renderer):
    return Everything(data, renderer=renderer, initial={"number": Decimal("1.50")})


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("data", [None, BAD, GOOD_LOOKING], ids=["unbound", "bad", "good"])
def test_every_widget_and_error_list_is_written_as_django_writes_it(language, data):
    with translation.override(language):
        fast, stock = _forms(data, fast_renderer), _forms(data, STOCK)
        for name in fast.fields:
            assert str(fast[name]) == str(stock[name]), name
            assert str(fast[name].errors) == str(stock[name].errors), name
        assert str(fast.non_field_errors()) == str(stock.non_field_errors())
        assert str(fast) == str(stock)  # the form's own template, through the default renderer


@override_settings(FORM_RENDERER="studies.widgets.FastRenderer")
def test_the_fast_renderer_may_be_the_projects_form_renderer():
    form, stock = Everything(BAD), _forms(BAD, STOCK)
    assert isinstance(form.renderer, FastRenderer)
    assert str(form) == str(stock)
    assert [str(form[name]) for name in form.fields] == [str(stock[name]) for name in form.fields]


def test_a_widget_template_of_its_own_goes_through_the_default_renderer():
    class Custom(forms.Select):
        option_template_name = "django/forms/widgets/radio_option.html"

    class Form(forms.Form):
        pick = forms.ChoiceField(choices=[("1", "One")], widget=Custom)

    assert str(Form(renderer=fast_renderer)["pick"]) == str(Form(renderer=STOCK)["pick"])


# --- crispy fields ------------------------------------------------------------------------------


def _stock_helper(layout: Layout | None) -> FormHelper:
    """The helper the CRF forms had: crispy's own field rendering."""
    helper = FormHelper()
    helper.form_tag = False
    helper.disable_csrf = True
    if layout is not None:
        helper.layout = _plain_names(copy.deepcopy(layout))
    return helper


def _plain_names(layout: LayoutObject) -> LayoutObject:
    for index, item in enumerate(layout.fields):
        if isinstance(item, FastField):
            assert len(item.fields) == 1
            layout.fields[index] = item.fields[0]
        elif isinstance(item, LayoutObject) and hasattr(item, "fields"):
            _plain_names(item)
    return layout


def _crispy(form, **context) -> str:
    return CRISPY.render(Context({"form": form, **context}))


def _both(make, *, layout: bool = False, **helper_options) -> tuple[str, str]:
    """``{% crispy %}`` of a form with the CRF helper, and of the same form as it was."""
    fast, stock = make(fast_renderer), make(STOCK)
    stock.helper = _stock_helper(fast.helper.layout if layout else None)
    for name, value in helper_options.items():
        setattr(fast.helper, name, value)
        setattr(stock.helper, name, value)
    return _crispy(fast), _crispy(stock)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("data", [None, BAD, GOOD_LOOKING], ids=["unbound", "bad", "good"])
def test_crispy_fields_are_written_as_the_bootstrap5_template_writes_them(language, data):
    def make(renderer):
        form = _forms(data, renderer)
        form.helper = crf_helper(form)
        return form

    with translation.override(language):
        fast, stock = _both(make)
    assert fast == stock
    assert 'class="form-check-input' in fast and "asteriskField" in fast


def test_plain_fields_are_written_without_crispys_templates(monkeypatch):
    from studies import crispy_fields

    written = []
    real = crispy_fields.write_field

    def spy(field, flags):
        written.append(field.name)
        return real(field, flags)

    monkeypatch.setattr(crispy_fields, "write_field", spy)
    form = _forms(None, fast_renderer)
    form.helper = crf_helper(form)
    _crispy(form)
    # Hidden fields, radio buttons and files go through crispy's templates.
    assert set(written) == set(form.fields) - {"hidden", "radio", "upload"}


@pytest.mark.parametrize(
    "options",
    [
        {"form_class": "form-horizontal", "label_class": "col-lg-2", "field_class": "col-lg-8"},
        {"form_show_labels": False},
        {"help_text_inline": True},
        {"form_show_errors": False},
        {"field_template": "bootstrap5/layout/inline_field.html"},
    ],
)
def test_other_helper_settings_fall_back_on_crispys_templates(options):
    def make(renderer):
        form = _forms(BAD, renderer)
        form.helper = crf_helper(form)
        return form

    fast, stock = _both(make, layout=True, **options)
    assert fast == stock


# --- the CRF forms ------------------------------------------------------------------------------


@pytest.fixture
def terms(db):
    ensure_terms()
    return CtcaeTerm.objects.order_by("pk")


def _ae_form(data=None, instance=None):
    def make(renderer):
        return AdverseEventForm(
            data,
            instance=instance,
            editing=instance is not None,
            dlt_window_days=42,
            grade_text="Mild",
            renderer=renderer,
        )

    return make


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_adverse_event_form_is_written_as_before(terms, language):
    with translation.override(language):
        for make in (
            _ae_form(),
            _ae_form({"term": terms[3].pk, "grade": "9", "onset_on": "soon", "reason": "x"}),
        ):
            fast, stock = _both(make, layout=True)
            assert fast == stock


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_other_crf_forms_are_written_as_before(db, language):
    result = LabResult(
        sampled_on=date(2026, 3, 2), analyte="anc", value=Decimal("1500.000"), unit="/uL"
    )
    makers = [
        (lambda r: FactsForm(None, renderer=r), False),
        (lambda r: FactsForm({"ecog": "7", "liver_metastases": "true"}, renderer=r), False),
        (lambda r: LabCorrectionForm(None, result=result, renderer=r), False),
        (lambda r: LabCorrectionForm({"value": "-"}, result=result, renderer=r), False),
        (lambda r: LabSampleForm({"anc_value": "1"}, renderer=r), True),
        (lambda r: NormalRangesForm(None, renderer=r), True),
        (lambda r: ScanForm(None, editing=True, irecist=True, renderer=r), False),
        (lambda r: ScanForm({"scan_date": "x"}, editing=True, renderer=r), False),
        (lambda r: CourseForm(None, editing=True, renderer=r), False),
        (lambda r: CourseForm({"planned_start": "x"}, renderer=r), False),
    ]
    with translation.override(language):
        for make, layout in makers:
            fast, stock = _both(make, layout=layout)
            assert fast == stock


ROWS = Template(
    "{{ formset.management_form }}{% for f in formset %}{% for field in f %}"
    "{{ field }}{{ field.errors }}{% endfor %}{% endfor %}"
)


@pytest.mark.parametrize("language", LANGUAGES)
def test_formset_rows_are_written_as_before(db, language):
    lesions = [
        Lesion(pk=7, label="T1", organ="lung"),
        Lesion(pk=9, label="T2 <b>", organ="liver"),
    ]
    formsets = [
        lambda: PrescriptionFormSet(
            None, prefix="rx", initial=[{"lesion": 9}], form_kwargs={"lesions": lesions}
        ),
        lambda: PrescriptionFormSet(
            {"rx-TOTAL_FORMS": "1", "rx-INITIAL_FORMS": "0", "rx-0-lesion": "8"},
            prefix="rx",
            form_kwargs={"lesions": lesions},
        ),
        lambda: FractionFormSet(None, prefix="fx", initial=[{"number": 1, "day": DAY}]),
        lambda: NewLesionFormSet(None, prefix="new"),
        lambda: LesionFormSet(None, prefix="lesions"),
    ]
    with translation.override(language):
        for build in formsets:
            fast, stock = build(), build()
            stock.renderer = STOCK
            assert ROWS.render(Context({"formset": fast})) == ROWS.render(
                Context({"formset": stock})
            )


def test_measurement_rows_are_written_as_before(db):
    lesion = Lesion(pk=3, label="T1", organ="bone")

    def make(renderer):
        return MeasurementForm(
            {"m-state": "coalesced"},
            prefix="m",
            lesion=lesion,
            previous=None,
            others=Lesion.objects.none(),
            renderer=renderer,
        )

    fast, stock = make(fast_renderer), make(STOCK)
    for name in fast.fields:
        assert str(fast[name]) + str(fast[name].errors) == str(stock[name]) + str(
            stock[name].errors
        )


def test_prescription_rows_share_the_lesions_and_still_validate_them():
    lesions = [Lesion(pk=7, label="T1", organ="lung"), Lesion(pk=9, label="T2", organ="liver")]
    data = {
        "rx-TOTAL_FORMS": "2",
        "rx-INITIAL_FORMS": "0",
        "rx-0-lesion": "9",
        "rx-0-total_dose_gy": "30",
        "rx-0-fractions": "3",
        "rx-0-dose_per_fraction_gy": "10",
        "rx-1-lesion": "8",
    }
    formset = PrescriptionFormSet(data, prefix="rx", form_kwargs={"lesions": lesions})
    assert not formset.is_valid()
    assert formset.forms[0].cleaned_data["lesion"] is lesions[1]
    assert "lesion" in formset.forms[1].errors
    field = formset.forms[0].fields["lesion"]
    assert field.choices == [
        ("", field.empty_label),
        (7, str(lesions[0])),
        (9, str(lesions[1])),
    ]


# --- the cached CTCAE term select ---------------------------------------------------------------


def _written_directly(widget: CachedOptionsSelect, name: str, value) -> str:
    """The term select as it was written before its options were cached."""
    from django.forms.utils import flatatt
    from django.utils.html import format_html

    final = widget.build_attrs(widget.attrs, {"id": "id_term"})
    final["name"] = name
    chosen = {str(v) for v in widget.format_value(value)}

    def option(key, label) -> str:
        selected = " selected" if str(key) in chosen else ""
        return format_html('<option value="{}"{}>{}</option>', key, selected, label)

    parts = [format_html("<select{}>", flatatt(final))]
    for key, label in widget.choices:
        if isinstance(label, list | tuple):
            parts.append(format_html('<optgroup label="{}">', key))
            parts.extend(option(k, text) for k, text in label)
            parts.append("</optgroup>")
        else:
            parts.append(option(key, label))
    parts.append("</select>")
    return "".join(parts)


def _term_widget() -> _TermSelect:
    return AdverseEventForm().fields["term"].widget


@pytest.mark.parametrize("chosen", [None, "first", "last"])
def test_the_cached_term_select_marks_the_chosen_term_only(terms, chosen):
    widget = _term_widget()
    value = {None: None, "first": terms.first().pk, "last": terms.last().pk}[chosen]
    widget.render("term", None, {"id": "id_term"})  # fills the cache
    html = widget.render("term", value, {"id": "id_term"})
    assert html == _written_directly(widget, "term", value)
    assert html.count(" selected>") == 1
    marked = f'<option value="{value if value else ""}" selected>'
    assert marked in html


def test_the_term_options_are_read_once_then_only_their_version(terms, django_assert_num_queries):
    widget, chosen = _term_widget(), terms.first().pk
    widget.render("term", None)
    with django_assert_num_queries(1) as captured:
        widget.render("term", chosen)
    assert "md5" in captured.captured_queries[0]["sql"].lower(), captured.captured_queries


def test_a_changed_term_list_is_written_afresh(terms):
    widget = _term_widget()
    term = terms[10]
    assert f">{term.term}</option>" in widget.render("term", None)
    CtcaeTerm.objects.filter(pk=term.pk).update(term="Renamed & moved")
    html = _term_widget().render("term", term.pk)
    assert f'<option value="{term.pk}" selected>Renamed &amp; moved</option>' in html
    assert f">{term.term}</option>" not in html
    CtcaeTerm.objects.create(meddra_code=99999999, soc="Zz new class", term="Brand new")
    assert '<optgroup label="Zz new class">' in _term_widget().render("term", None)


def test_the_term_digest_follows_the_fields_queryset(terms):
    from patients.ae_forms import _terms_digest

    whole = _terms_digest(CtcaeTerm.objects.all())
    assert whole == _terms_digest(CtcaeTerm.objects.filter(pk__gt=0))  # through the ORM
    assert whole != _terms_digest(CtcaeTerm.objects.exclude(pk=terms.first().pk))


def test_the_term_options_are_cached_per_language(terms):
    CachedOptionsSelect._cache.clear()
    for language in LANGUAGES:
        with translation.override(language):
            _term_widget().render("term", None)
    assert {key[1] for key in CachedOptionsSelect._cache if key[0] == "ctcae_terms"} == {
        "en",
        "fr",
    }


def test_the_french_adverse_event_page_shows_french_labels_and_every_term(world, terms, login):
    client = login(world.user("alice_pi"))
    url = reverse("ae_new", kwargs={"patient_pk": world.patient_a.pk})
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    french = client.get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Terme CTCAE v5.0" in french and "CTCAE v5.0 term" not in french
    assert "Rechercher un terme CTCAE v5.0" in french
    assert "CTCAE v5.0 term" in english
    for term in (terms.first(), terms.last()):
        assert f'<option value="{term.pk}">' in french
    assert french.count("<option") == english.count("<option")


# --- choice labels ------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_display_filter_gives_get_field_display(language):
    from patients.templatetags.crf_display import display

    fields = ("attribution_sbrt", "attribution_systemic", "action", "outcome")
    with translation.override(language):
        for name in fields:
            for value, _label in AdverseEvent._meta.get_field(name).flatchoices:
                ae = AdverseEvent(**{name: value})
                assert display(ae, name) == getattr(ae, f"get_{name}_display")()
            odd = AdverseEvent(**{name: "not-a-choice"})
            assert display(odd, name) == getattr(odd, f"get_{name}_display")()
