"""The text rule (core/text.py) at the two edges: a pydantic annotation for the API's schemas and a Django
form field for pages. One rule, one wording.

API: ``name: Annotated[str, Bounded(100)]`` (one line, at most 100 characters) or
``note: Annotated[str, Bounded(4000, multiline=True)]``; the OpenAPI document states ``maxLength`` and a
``pattern`` without control characters, and a value past either is refused with 422 naming the field and
the limit. Forms: ``BoundedCharField(max_length=..., multiline=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final

from django import forms
from django.core.exceptions import ValidationError
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from ketaclinic.core.text import LINE_PATTERN, TEXT_PATTERN, control_problem, text_problem

#: Stated maxima of free text that has no column length (a TextField): a reason, a note, a description.
REASON_MAX: Final = 2000
NOTE_MAX: Final = 20000


@dataclass(frozen=True)
class Bounded:
    """A text field's limit and whether it may hold line breaks and tabs."""

    limit: int
    multiline: bool = False

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.with_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        value = handler(schema)
        value.update(maxLength=self.limit, pattern=TEXT_PATTERN if self.multiline else LINE_PATTERN)
        return value

    def _check(self, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        label = (info.field_name or "the text").replace("_", " ").capitalize()
        why = text_problem(value, label=label, limit=self.limit, multiline=self.multiline)
        if why is not None:
            raise PydanticCustomError("text_bounds", why)
        return value


# The common shapes, so that a schema reads as what the field is.
Line = Annotated[str, Bounded(200)]
Code = Annotated[str, Bounded(64)]
Reason = Annotated[str, Bounded(REASON_MAX, multiline=True)]
Note = Annotated[str, Bounded(NOTE_MAX, multiline=True)]


def no_control_characters(multiline: bool) -> Any:
    """A Django validator refusing control characters (tab and line breaks too, unless ``multiline``)."""

    def validate(value: Any) -> None:
        if isinstance(value, str) and (why := control_problem(value, multiline=multiline)):
            raise ValidationError(why[0].upper() + why[1:], code="control_characters")

    return validate


class BoundedCharField(forms.CharField):
    """A form's text field with a stated maximum (refused, never cut) and no control characters."""

    def __init__(self, *, max_length: int, multiline: bool = False, **kwargs: Any) -> None:
        super().__init__(max_length=max_length, **kwargs)
        self.validators.append(no_control_characters(multiline))
