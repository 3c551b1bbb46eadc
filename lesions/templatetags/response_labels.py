"""Readable, translated labels for the engine's response codes (PR -> Partial response)."""

from __future__ import annotations

from django import template

from lesions.models import ImagingAssessment, Response

register = template.Library()

_LABELS = {
    **dict(Response.choices),
    **dict(ImagingAssessment.NewLesions.choices),
}


@register.filter
def response_label(code: str) -> str:
    """The label of a RECIST code, or the code itself when it has none (or is empty)."""
    return str(_LABELS.get(code, code)) if code else ""
