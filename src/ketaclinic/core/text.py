"""What typed text may contain (issue 15, "bounds everywhere"). Pure: no Django, no pydantic.

A NUL byte in a patient's name was stored (and PostgreSQL refuses NUL in text, so the same request failed
there with a server error); other control characters (a bell, an escape sequence, a backspace) are never
typed by a person and hide or change what the next reader sees, on a page, in a PDF or in a CSV export. So
every text input refuses them with the field's name: a one-line field (a name, a code, a reason on one
line) refuses every control character including tab and line breaks; a multi-line field (a note, a
description) keeps tab and line breaks and refuses the rest. Length has its own refusal, shared with the
rest of the code base (core/limits.py ``too_long``): a value past its stated maximum is refused, never cut.

:func:`text_problem` is the one judgement; core/fields.py makes it a pydantic annotation for the API's
schemas (with ``maxLength`` and ``pattern`` in the OpenAPI document) and a Django validator for forms,
and core/middleware.py applies the character rule to every field of every submitted form.
"""

from __future__ import annotations

import re
from typing import Final

from ketaclinic.core.limits import too_long

# C0 controls, DEL and C1 controls; a multi-line text keeps tab (U+0009), line feed and carriage return.
_LINE_CONTROLS: Final = "\\x00-\\x1f\\x7f-\\x9f"
_TEXT_CONTROLS: Final = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f"
LINE_CONTROL: Final = re.compile(f"[{_LINE_CONTROLS}]")
TEXT_CONTROL: Final = re.compile(f"[{_TEXT_CONTROLS}]")
#: The same rules as JSON Schema patterns (ECMA-262 syntax), for the OpenAPI document.
LINE_PATTERN: Final = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
TEXT_PATTERN: Final = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"

# Digits of a whole number read from a form or a URL: a 64-bit database integer holds 19 digits, 18 always fit.
MAX_WHOLE_DIGITS: Final = 18


def whole_number(raw: str, *, max_digits: int = MAX_WHOLE_DIGITS) -> int | None:
    """``raw`` (spaces around it ignored) as a whole number when it is written in ASCII digits and a database
    integer holds it; otherwise None, for the caller to refuse. ``str.isdigit`` alone is also true of "²"
    (which ``int`` refuses: a server error) and of 40 digits (which overflow the column: another)."""
    text = raw.strip()
    if not text or not text.isascii() or not text.isdigit() or len(text) > max_digits:
        return None
    return int(text)


_NAMES: Final = {0: "NUL", 9: "tab", 10: "line break", 13: "line break", 27: "escape", 127: "DEL"}


def control_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be stored as typed (a control character), or ``None``.

    >>> control_problem("Ann\\x00")
    'contains a control character (NUL, U+0000) at position 4: nothing was saved'
    >>> control_problem("line one\\nline two", multiline=True) is None
    True
    >>> control_problem("Ann\\nMarie")
    'contains a control character (line break, U+000A) at position 4: this field is one line'
    """
    found = (TEXT_CONTROL if multiline else LINE_CONTROL).search(value)
    if found is None:
        return None
    code = ord(found.group())
    name = _NAMES.get(code, "control")
    tail = "this field is one line" if code in (9, 10, 13) else "nothing was saved"
    return f"contains a control character ({name}, U+{code:04X}) at position {found.start() + 1}: {tail}"


def text_problem(value: str, *, label: str, limit: int, multiline: bool = False) -> str | None:
    """The refusal for ``value`` in a field with ``limit`` characters at most, or ``None``."""
    return too_long(value, label=label, limit=limit) or (
        None if (why := control_problem(value, multiline=multiline)) is None else f"{label} {why}"
    )
