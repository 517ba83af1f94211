"""The ``label`` filter, a template builtin (settings.TEMPLATES): ``{{ code|label:"gate_status" }}``."""

from __future__ import annotations

from django import template

from ketaclinic.core.labels import label as _label

register = template.Library()


@register.filter
def label(code: object, vocabulary: str) -> str:
    """The words staff read for a stored code (core/labels.py): never the code itself."""
    return _label(code, vocabulary)
