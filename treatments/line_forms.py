"""The systemic therapy line form: number, agents from the controlled list, dates, stop reason."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from studies.crispy_fields import crf_helper
from studies.widgets import fast_renderer
from treatments.models import Agent, SystemicLine

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class AgentChoiceField(forms.ModelMultipleChoiceField):
    """Agents labelled with their class: "sunitinib (Tyrosine kinase inhibitor)"."""

    #: The controlled list as the page read it ({"pk": agent}); None: read it from the queryset.
    loaded: dict[str, Agent] | None = None

    def label_from_instance(self, obj: Agent) -> str:
        return f"{obj.name} ({obj.get_drug_class_display()})"

    def _check_values(self, value):
        """The chosen agents, from the list the page already read (no second query)."""
        if self.loaded is None:
            return super()._check_values(value)
        try:
            values = frozenset(value)
        except TypeError:
            raise forms.ValidationError(
                self.error_messages["invalid_list"], code="invalid_list"
            ) from None
        chosen = []
        for val in sorted(values, key=str):
            self.validate_no_null_characters(val)
            agent = self.loaded.get(str(val))
            if agent is None:
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": val},
                )
            chosen.append(agent)
        return chosen


class LineForm(forms.ModelForm):
    default_renderer = fast_renderer
    agents = AgentChoiceField(
        label=_("Agents"),
        queryset=Agent.objects.order_by("name"),
        widget=forms.SelectMultiple(attrs={"size": 12}),
        help_text=_(
            "Every agent given in this line (hold Ctrl, or Cmd on a Mac, to choose several). "
            "An agent swapped for toxicity stays in the same line."
        ),
        error_messages={"required": _("Choose at least one agent.")},
    )
    reason = forms.CharField(
        label=_("Reason for change"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Needed when you correct a saved line."),
    )

    class Meta:
        model = SystemicLine
        # The agents are a declared field, their choices and initial values given by the page
        # (read with the line): the form itself runs no query.
        fields = ["line_number", "start", "end", "stop_reason", "stop_detail"]
        widgets = {"start": DATE, "end": DATE}
        help_texts = {
            "line_number": _(
                "Counted from the first line given for metastatic disease (adjuvant or "
                "neoadjuvant treatment of the primary is not a line)."
            ),
            "end": _("Leave empty while the line is ongoing."),
            "stop_reason": _("Only for a line that has ended."),
            "stop_detail": _("Optional: e.g. the toxicity, or what the patient chose."),
        }

    field_order = ["line_number", "agents", "start", "end", "stop_reason", "stop_detail"]

    def __init__(self, *args, editing: bool = False, agents=None, chosen=None, **kwargs) -> None:
        """``agents``: the controlled list, already read; ``chosen``: the ids of the line's."""
        super().__init__(*args, **kwargs)
        field = self.fields["agents"]
        if agents is not None:
            field.choices = [(agent.pk, field.label_from_instance(agent)) for agent in agents]
            field.loaded = {str(agent.pk): agent for agent in agents}
        if chosen is not None:
            self.initial["agents"] = list(chosen)
        if not editing:
            del self.fields["reason"]
        self.fields["line_number"].widget.attrs.update({"min": 1, "max": 20})
        self.helper = crf_helper(self)
