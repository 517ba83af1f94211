"""How the registry matches what staff type against the patients it holds. Pure: no Django, no I/O.

- Names and MRNs are compared in a normal form (:func:`normalize`, :func:`mrn_key`): lower-case ASCII letters
  and digits, accents and case aside.
- A search term matches the *start* of a stored key: the database answers with an index range scan
  ``key >= term AND key < prefix_upper_bound(term)`` on SQLite and PostgreSQL alike. The bound never ends in
  punctuation (which a locale collation such as en_US ignores, and which would then cut the range short): it
  steps through ``0-9a-z``, the only characters a key holds.
- The end of an MRN is matched the same way on the reversed key (staff often read the last digits off a
  letter or a wristband).
- Possible duplicates (:func:`duplicate_reason`): the same birth date or the day and month swapped (both
  12 or less, so either reading is a date), and the same family name or one typing slip apart
  (:func:`one_edit_apart`), with the given names matching as before (an initial or a shortened name), or the
  two names entered in each other's field.
"""

from __future__ import annotations

import unicodedata
from datetime import date

_LETTERS = str.maketrans(
    {
        "ø": "o",
        "Ø": "o",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "ß": "ss",
        "đ": "d",
        "Đ": "d",
        "ł": "l",
        "Ł": "l",
        "þ": "th",
        "Þ": "th",
        "ı": "i",
    }
)

KEY_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"  # in the order both databases sort them


def normalize(text: str) -> str:
    """Lower-case ASCII letters, digits and single spaces: the form names are matched in.

    A search token matches the start of the given or the family name (an index range scan on both)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTERS))
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    kept = "".join(c if c.isascii() and c.isalnum() else " " for c in ascii_text)
    return " ".join(kept.split())


def mrn_key(text: str) -> str:
    """An MRN as it is searched: its letters and digits in lower case ("K-000 123" → "k000123")."""
    return normalize(text).replace(" ", "")


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest key greater than every key that starts with ``prefix`` (a normalized, non-empty term),
    or None when there is none ("zz"): the range ``[prefix, bound)`` holds exactly the keys starting with it."""
    for i in range(len(prefix) - 1, -1, -1):
        char = prefix[i]
        position = KEY_ALPHABET.find(char)
        if position == -1:  # not a key character (a space inside a name): the next code point
            return prefix[:i] + chr(ord(char) + 1)
        if position + 1 < len(KEY_ALPHABET):
            return prefix[:i] + KEY_ALPHABET[position + 1]
    return None


def one_edit_apart(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with one letter added, left out, changed, or two neighbours swapped
    ("Quartermain" / "Quartermaine", "Smith" / "Smyth", "Jonhson" / "Johnson")."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    return short[i:] == long[i + 1 :]


def swapped_day_month(day: date) -> date | None:
    """The birth date read the other way round (03/09 for 09/03), when both readings are dates and differ."""
    if day.day > 12 or day.day == day.month:
        return None
    return date(day.year, day.day, day.month)


def _given_match(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def duplicate_reason(
    *,
    given: str,
    family: str,
    born: date,
    other_given: str,
    other_family: str,
    other_born: date,
) -> str | None:
    """Why a stored patient (``other_*``) may be the person being registered, in words for the desk, or None.
    Names are normalized (:func:`normalize`)."""
    reasons: list[str] = []
    if other_born != born:
        if swapped_day_month(born) != other_born:
            return None
        reasons.append("birth date with day and month swapped")
    if other_family == family and _given_match(other_given, given):
        pass
    elif other_family == given and other_given == family:
        reasons.append("given and family names swapped")
    elif one_edit_apart(other_family, family) and _given_match(other_given, given):
        reasons.append("family name one letter apart")
    else:
        return None
    return "; ".join(reasons) or "same name and birth date"
