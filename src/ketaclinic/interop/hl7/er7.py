"""A tolerant splitter for HL7 v2 "ER7" text (pipes and hats), plus DTM time handling.

Why our own splitter rather than ``hl7.parse``: python-hl7 needs CR-only segment terminators and
returns nested lists whose depth depends on whether a separator occurred (interop.md §4.1 pitfall).
Device feeds vary (interop.md §3.5), so we normalise CR/CRLF/LF ourselves and give every field as a
string with helpers for repetitions/components/sub-components. python-hl7 is still used in the tests
to show that what we write (ACKs, simulator messages) parses there too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Final


@dataclass(frozen=True)
class Encoding:
    """Delimiters declared in MSH-1 and MSH-2 (defaults ``|^~\\&``)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def msh2(self) -> str:
        return self.component + self.repetition + self.escape + self.subcomponent

    @classmethod
    def from_msh(cls, field_sep: str, msh2: str) -> Encoding:
        """Read MSH-2 tolerantly: missing characters fall back to the defaults."""
        default = cls()
        chars = list(msh2[:4])
        fallback = [default.component, default.repetition, default.escape, default.subcomponent]
        while len(chars) < 4:
            chars.append(fallback[len(chars)])
        return cls(field_sep, chars[0], chars[1], chars[2], chars[3])


DEFAULT_ENCODING: Final = Encoding()


def normalise_terminators(text: str) -> str:
    """CR LF and LF become CR, the HL7 segment terminator (hl7/README.md; interop.md §3.5)."""
    return text.replace("\r\n", "\r").replace("\n", "\r")


@dataclass(frozen=True)
class Segment:
    """One segment. ``field(n)`` is HL7 field n (MSH-1 is the field separator itself).

    Components are split once per (field, repetition) and kept in ``_split`` (the parser reads the
    same OBX fields several times; splitting again each time was most of its cost, bench/README.md
    "## mllp"). The cache is invisible: not compared, hashed or shown.
    """

    name: str
    fields: tuple[str, ...]
    encoding: Encoding
    _split: dict[tuple[int, int], list[str]] = dc_field(
        default_factory=dict, init=False, compare=False, hash=False, repr=False
    )

    def field(self, n: int) -> str:
        return self.fields[n] if 0 <= n < len(self.fields) else ""

    def repetitions(self, n: int) -> list[str]:
        text = self.field(n)
        return text.split(self.encoding.repetition) if text else []

    def components(self, n: int, repetition: int = 0) -> list[str]:
        """Components of field n (of one repetition), still escaped."""
        return list(self._components(n, repetition))

    def _components(self, n: int, repetition: int) -> list[str]:
        key = (n, repetition)
        found = self._split.get(key)
        if found is None:
            reps = self.repetitions(n)
            found = reps[repetition].split(self.encoding.component) if repetition < len(reps) else []
            self._split[key] = found
        return found

    def component(self, n: int, c: int, repetition: int = 0) -> str:
        """Component c (1-based) of field n, unescaped and stripped; "" when absent."""
        comps = self._split.get((n, repetition))
        if comps is None:
            comps = self._components(n, repetition)
        if c - 1 >= len(comps):
            return ""
        value = comps[c - 1]
        if self.encoding.escape in value:
            value = unescape(value, self.encoding)
        return value.strip()

    def text(self, n: int) -> str:
        """Field n as one unescaped, stripped string (first repetition, separators kept)."""
        reps = self.repetitions(n)
        return unescape(reps[0], self.encoding).strip() if reps else ""


def split_segments(text: str) -> list[str]:
    """Segments of a message after terminator normalisation; blank lines dropped."""
    return [s for s in normalise_terminators(text).split("\r") if s.strip()]


def parse_segment(raw: str, encoding: Encoding) -> Segment:
    parts = raw.split(encoding.field)
    name = parts[0].strip().upper()
    if name == "MSH":
        # MSH-1 is the separator itself and MSH-2 the encoding characters: keep numbering aligned.
        fields = ("MSH", encoding.field, *parts[1:])
    else:
        fields = (name, *parts[1:])
    return Segment(name, tuple(fields), encoding)


_HEX_ESCAPE: Final = re.compile(r"^X([0-9A-Fa-f]{2})+$")


def unescape(text: str, encoding: Encoding = DEFAULT_ENCODING) -> str:
    """Resolve \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ and \\Xhh..\\; formatting escapes are dropped."""
    esc = encoding.escape
    if esc not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        end = text.find(esc, i + 1) if ch == esc else -1
        if end == -1:
            out.append(ch)
            i += 1
            continue
        seq = text[i + 1 : end]
        mapping = {
            "F": encoding.field,
            "S": encoding.component,
            "T": encoding.subcomponent,
            "R": encoding.repetition,
            "E": encoding.escape,
        }
        if seq in mapping:
            out.append(mapping[seq])
        elif _HEX_ESCAPE.match(seq):
            out.append(bytes.fromhex(seq[1:]).decode("latin-1"))
        elif seq == ".br":
            out.append("\n")
        # Other escapes (\H\, \N\, \.sp\, \Zxx\ ...) are formatting or local: dropped.
        i = end + 1
    return "".join(out)


_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def escape(text: str, encoding: Encoding = DEFAULT_ENCODING) -> str:
    """Escape delimiters so ``text`` can sit inside one component; CR/LF become spaces, and other control
    characters hex escapes (``\\X0B\\``): an echoed value holding the MLLP block characters 0x0B/0x1C
    would otherwise break the frame of the ACK (found by tests/interop/test_hl7_properties.py)."""
    e = encoding
    out = text.replace(e.escape, f"{e.escape}E{e.escape}")
    for char, code in ((e.field, "F"), (e.component, "S"), (e.subcomponent, "T"), (e.repetition, "R")):
        out = out.replace(char, f"{e.escape}{code}{e.escape}")
    out = out.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    if _CONTROL.search(out):
        out = _CONTROL.sub(lambda m: f"{e.escape}X{ord(m.group()):02X}{e.escape}", out)
    return out


# ---------------------------------------------------------------- time (DTM / TS)

_DTM: Final = re.compile(
    r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?\s*([+-]\d{4})?$",
)


@lru_cache(maxsize=4096)
def parse_dtm(text: str) -> datetime | None:
    """Parse an HL7 DTM ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``.

    With an offset the result is aware; without one it is naive (the sender's local time: the caller
    applies the site's zone; interop.md §3.2 MSH-7 "handle both"). Returns None if not a valid time.
    Only the first component is read (TS in v2.4 carries a precision after ``^``). Cached: a message
    repeats its times in every OBX, and a feed repeats them across messages (datetimes are immutable).
    """
    value = text.split("^", 1)[0].strip()
    m = _DTM.match(value)
    if not m:
        return None
    year, month, day, hour, minute, second, frac, offset = m.groups()
    micro = int((frac or "0").ljust(6, "0")[:6])
    try:
        tz: timezone | None = None
        if offset:
            sign = -1 if offset[0] == "-" else 1
            delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
            tz = timezone(sign * delta)
        return datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
            tzinfo=tz,
        )
    except ValueError:
        return None


def format_dtm(moment: datetime) -> str:
    """Seconds precision; ``+hhmm`` appended when ``moment`` is aware."""
    out = moment.strftime("%Y%m%d%H%M%S")
    offset = moment.utcoffset()
    if offset is None:
        return out
    total = int(offset.total_seconds() // 60)
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total), 60)
    return f"{out}{sign}{hours:02d}{minutes:02d}"
