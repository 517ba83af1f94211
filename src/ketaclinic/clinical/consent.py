"""Informed consent: what a consent form must say, the built-in forms, and whether a signed consent covers a
session (pure: no Django, no I/O).

clinical.md §11 sets the content: consent is documented, **specific to drug and route**, states that racemic
ketamine is not FDA-approved for psychiatric use, gives the expected benefit with *controlled* figures
(§9.3: ~45–55 % short-term response, relapse common within weeks), the common and serious risks (§2.6, §7.2:
dissociation, BP rise, nausea, sedation, cystitis with frequent use, abuse potential), the alternatives, the
monitoring and escort/driving rules (§2.3) and the right to stop; the text is versioned and the version the
patient signed is what the record shows.

Design choice: the built-in forms (:func:`builtin_form`) are written here from those facts, each section
with its sources, and :func:`form_problems` checks any form — built-in or a clinic's own edited version —
for the required sections. A clinic can reword a form; it cannot publish one that leaves out a required
section, quotes a short-term response above the controlled figures (the "60–70 %" of §9.3), or drops the
off-label statement for racemic ketamine. The check reads words a nurse would write ("blood pressure",
"driv…", "any time"), so it stops an omission, not a bad sentence: a prescriber still reads what they
publish.

How long a signed consent stays valid is not in the reference: :data:`DEFAULT_VALIDITY` is a clinic default,
marked unconfirmed, that the clinic sets (``KETACLINIC_CONSENT_VALID_DAYS``).
:func:`consent_standing` is the pre-dose gate's rule: the latest signed consent for the session's drug
**and** route decides; withdrawn or expired fails; an IV consent does not cover IM.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from ketaclinic.clinical.conditions import Drug, Route


class SectionKey(StrEnum):
    TREATMENT = "treatment"
    OFF_LABEL = "off_label"
    BENEFIT = "benefit"
    RELAPSE = "relapse"
    RISKS = "risks"
    ALTERNATIVES = "alternatives"
    MONITORING = "monitoring"
    STOPPING = "stopping"
    QUESTIONS = "questions"  # optional: who to ask, how to reach the clinic


#: The order sections appear in on a form, and their default headings.
SECTION_HEADINGS: Final[Mapping[SectionKey, str]] = {
    SectionKey.TREATMENT: "The treatment",
    SectionKey.OFF_LABEL: "Not FDA-approved for this use (off-label)",
    SectionKey.BENEFIT: "What it may do for you",
    SectionKey.RELAPSE: "How long the benefit lasts",
    SectionKey.RISKS: "Risks and side effects",
    SectionKey.ALTERNATIVES: "Other treatments",
    SectionKey.MONITORING: "Safety at each session: monitoring, escort and driving",
    SectionKey.STOPPING: "Your right to stop",
    SectionKey.QUESTIONS: "Questions",
}

#: The forms a clinic keeps: one per drug and route it gives (clinical.md §11: specific to drug and route).
FORM_ROUTES: Final[tuple[tuple[Drug, Route], ...]] = (
    (Drug.ESKETAMINE, Route.INTRANASAL),
    (Drug.KETAMINE, Route.IV),
    (Drug.KETAMINE, Route.IM),
    (Drug.KETAMINE, Route.SUBLINGUAL),
)

ROUTE_WORDS: Final[Mapping[str, str]] = {
    Route.IV: "by intravenous infusion",
    Route.IM: "by intramuscular injection",
    Route.SUBLINGUAL: "under the tongue (sublingual)",
    Route.INTRANASAL: "as a nasal spray",
}
DRUG_WORDS: Final[Mapping[str, str]] = {
    Drug.KETAMINE: "Ketamine (racemic)",
    Drug.ESKETAMINE: "Esketamine (SPRAVATO)",
}

MAX_TITLE_CHARS: Final = 200
MAX_SECTION_CHARS: Final = 5000  # a section a patient reads on a tablet; longer text belongs in a leaflet
MIN_SECTION_CHARS: Final = 40  # a required section says something: "See leaflet" is not consent
MIN_SOURCE_CHARS: Final = 10
MAX_SOURCE_CHARS: Final = 500

#: The short-term response a form may present (clinical.md §9.3: "present expected response as ~45–55 %
#: ... not 60–70 %, unless citing a specific open-label source").
RESPONSE_RANGE_PCT: Final = (45.0, 55.0)
RESPONSE_SOURCE: Final = (
    "clinical.md §9.3, §11: present the expected short-term response with controlled figures, ~45–55 %, "
    "not the 60–70 % of small open-label studies"
)


def form_label(drug: str, route: str) -> str:
    """ "Ketamine (racemic) by intravenous infusion"."""
    return f"{DRUG_WORDS.get(drug, drug)} {ROUTE_WORDS.get(route, f'by {route}')}"


def is_form_route(drug: str, route: str) -> bool:
    return (drug, route) in {(str(d), str(r)) for d, r in FORM_ROUTES}


# --- the form's text ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    key: str
    heading: str
    text: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FormText:
    """One consent form's words: what the patient reads and signs."""

    drug: str
    route: str
    title: str
    sections: tuple[Section, ...]

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)


def fingerprint(form: FormText) -> str:
    """SHA-256 of the form's words: a signed consent keeps it, so the text it points to can be shown to be
    the text that was signed."""
    canonical = json.dumps(
        {
            "drug": form.drug,
            "route": form.route,
            "title": form.title,
            "sections": [[s.key, s.heading, s.text, s.source] for s in form.sections],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- what a form must say (clinical.md §11) -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FormProblem:
    """Why a form cannot be published: the section, what is missing or wrong, and the rule's source."""

    section: str
    message: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Needs:
    """One thing a section must mention: any of ``words`` (lower-case regular expressions, matched from the
    start of a word, so stems such as "dissociat" count) counts."""

    what: str
    words: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SectionRule:
    key: SectionKey
    what: str  # what the section must say, for the staff guide and the publish page
    source: str
    needs: tuple[_Needs, ...] = ()
    only_for: Drug | None = None  # None: every form

    def applies(self, drug: str) -> bool:
        return self.only_for is None or str(self.only_for) == drug


_DRUG_NAME: Final[Mapping[str, _Needs]] = {
    Drug.KETAMINE: _Needs(what="the drug (ketamine)", words=("ketamine",)),
    Drug.ESKETAMINE: _Needs(what="the drug (esketamine)", words=("esketamine", "spravato")),
}
_ROUTE_NAME: Final[Mapping[str, _Needs]] = {
    Route.IV: _Needs(
        what="the route (intravenous infusion)", words=("intravenous", "infusion", "into a vein")
    ),
    Route.IM: _Needs(what="the route (intramuscular injection)", words=("intramuscular", "into a muscle")),
    Route.SUBLINGUAL: _Needs(what="the route (under the tongue)", words=("sublingual", "under the tongue")),
    Route.INTRANASAL: _Needs(what="the route (nasal spray)", words=("nasal spray", "intranasal", "nose")),
}

SECTION_RULES: Final[tuple[SectionRule, ...]] = (
    SectionRule(
        key=SectionKey.TREATMENT,
        what="names the drug and the route, and how it is given",
        source="clinical.md §11: consent specific to drug and route",
    ),
    SectionRule(
        key=SectionKey.OFF_LABEL,
        what="states that racemic ketamine is not FDA-approved for psychiatric use (off-label)",
        source="clinical.md §11; header and §3.3 (FDA: not approved for any psychiatric indication)",
        needs=(_Needs(what="that it is not FDA-approved (off-label)", words=("off-label", "off label")),),
        only_for=Drug.KETAMINE,
    ),
    SectionRule(
        key=SectionKey.BENEFIT,
        what="the expected benefit with controlled figures: a short-term response of about 45–55 %",
        source=RESPONSE_SOURCE,
        needs=(_Needs(what="the response", words=("respon",)),),
    ),
    SectionRule(
        key=SectionKey.RELAPSE,
        what="that relapse is common (for racemic ketamine: within weeks)",
        source="clinical.md §11, §9.3, §1.4 (median relapse 18 days; ~80 %/60 % still responding at 4/8 weeks)",
        needs=(_Needs(what="relapse", words=("relaps",)),),
    ),
    SectionRule(
        key=SectionKey.RISKS,
        what=(
            "the common and serious risks: dissociation, blood pressure rise, nausea, sedation, bladder problems "
            "(cystitis) with frequent use, abuse potential"
        ),
        source="clinical.md §11, §2.5, §2.6, §7.2",
        needs=(
            _Needs(what="dissociation", words=("dissociat",)),
            _Needs(what="the blood pressure rise", words=("blood pressure",)),
            _Needs(what="nausea", words=("nause",)),
            _Needs(what="sedation", words=("sedat", "drows", "sleepiness")),
            _Needs(what="bladder problems (cystitis)", words=("cystitis", "bladder")),
            _Needs(what="abuse potential", words=("abuse", "misuse", "dependence", "addict")),
        ),
    ),
    SectionRule(
        key=SectionKey.ALTERNATIVES,
        what="the other treatments (antidepressants, psychotherapy, ECT …) and that the patient may decline",
        source="clinical.md §11; §6.1 (CPSBC, APNA: after standard treatment), §9.1 (ECT)",
        needs=(
            _Needs(
                what="another treatment",
                words=("antidepressant", "psychotherapy", "electroconvulsive", r"ect\b"),
            ),
        ),
    ),
    SectionRule(
        key=SectionKey.MONITORING,
        what="the monitoring at each session, the escort home and no driving until the next day",
        source="clinical.md §11, §2.3 (monitoring; ride home; no driving until the next day), §7.1, §7.5",
        needs=(
            _Needs(what="the monitoring", words=("monitor", "check", "observ", "watch")),
            _Needs(what="the escort home", words=("escort", "take you home", "ride home", "accompan")),
            _Needs(what="driving", words=("driv",)),
        ),
    ),
    SectionRule(
        key=SectionKey.STOPPING,
        what="the right to stop or withdraw consent at any time",
        source="clinical.md §11: the right to stop",
        needs=(
            _Needs(what="stopping or withdrawing", words=("stop", "withdraw")),
            _Needs(what="at any time", words=("any time", "anytime")),
        ),
    ),
)
OPTIONAL_SECTIONS: Final = frozenset({SectionKey.QUESTIONS, SectionKey.OFF_LABEL})

_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:(?:–|-|to)\s*(\d+(?:\.\d+)?)\s*)?(?:%|per ?cent)")
_OFF_LABEL = re.compile(r"\bnot\s+(?:been\s+)?(?:fda[- ])?approved\b")


def _source_problem(source: str) -> str | None:
    """Every section says where its facts come from, so a colleague can check them (not "x")."""
    text = " ".join(source.split())
    letters = {c.lower() for c in text if c.isalpha()}
    if len(text) < MIN_SOURCE_CHARS or len(letters) < 4:
        return (
            f"needs its source: where the facts in it come from, at least {MIN_SOURCE_CHARS} characters "
            "(e.g. 'clinical.md §9.3' or 'Clinic consent policy 2027, section 2')"
        )
    if len(text) > MAX_SOURCE_CHARS:
        return f"source is {len(text)} characters, more than {MAX_SOURCE_CHARS}: cite it rather than paste it"
    return None


def required_sections(drug: str) -> tuple[SectionRule, ...]:
    return tuple(rule for rule in SECTION_RULES if rule.applies(drug))


def _mentions(text: str, needs: _Needs) -> bool:
    lowered = text.lower()
    return any(re.search(rf"\b{word}", lowered) for word in needs.words)


def percentages(text: str) -> list[float]:
    """Every percentage figure in ``text``, both ends of a range ("45–55 %" → 45, 55)."""
    found: list[float] = []
    for match in _PERCENT.finditer(text):
        found.extend(float(g) for g in match.groups() if g is not None)
    return found


def _content_problems(form: FormText, rule: SectionRule, section: Section) -> list[str]:
    text = section.text
    needs = list(rule.needs)
    if rule.key is SectionKey.TREATMENT:
        needs += [n for n in (_DRUG_NAME.get(form.drug), _ROUTE_NAME.get(form.route)) if n is not None]
    missing = [n.what for n in needs if not _mentions(text, n)]
    if rule.key is SectionKey.OFF_LABEL and missing and _OFF_LABEL.search(text.lower()):
        missing = []  # "not FDA-approved" says it as well as "off-label" does
    problems = [f"does not mention {', '.join(missing)}"] if missing else []
    if rule.key is SectionKey.BENEFIT:
        low, high = RESPONSE_RANGE_PCT
        figures = percentages(text)
        above = sorted({f for f in figures if f > high})
        if above:
            quoted = ", ".join(f"{f:g} %" for f in above)
            problems.append(
                f"quotes {quoted}: present the expected short-term response with controlled figures, about "
                f"{low:g}–{high:g} %; higher figures come from small open-label studies"
            )
        if not any(low <= f <= high for f in figures):
            problems.append(f"gives no short-term response figure between {low:g} and {high:g} %")
    if (
        rule.key is SectionKey.RELAPSE
        and form.drug == Drug.KETAMINE
        and not re.search(r"\bweeks?\b", text.lower())
    ):
        problems.append("does not say that relapse is common within weeks")
    return problems


def form_problems(form: FormText) -> tuple[FormProblem, ...]:
    """Everything that keeps ``form`` from being published; empty when it says what clinical.md §11 asks."""
    problems: list[FormProblem] = []
    general = "clinical.md §11 (consent content)"
    if not is_form_route(form.drug, form.route):
        problems.append(
            FormProblem(
                section="form", message=f"no consent form for {form.drug} by {form.route}", source=general
            )
        )
        return tuple(problems)
    title = form.title.strip()
    if not title:
        problems.append(FormProblem(section="title", message="the form needs a title", source=general))
    elif len(title) > MAX_TITLE_CHARS:
        problems.append(
            FormProblem(
                section="title",
                message=f"is {len(title)} characters, more than {MAX_TITLE_CHARS}",
                source=general,
            )
        )
    known = {str(k) for k in SectionKey}
    seen: set[str] = set()
    for section in form.sections:
        if section.key not in known:
            problems.append(
                FormProblem(section=section.key, message="is not a section of a consent form", source=general)
            )
        elif section.key in seen:
            problems.append(FormProblem(section=section.key, message="appears twice", source=general))
        seen.add(section.key)
    rules = {str(rule.key): rule for rule in required_sections(form.drug)}
    for key, required in rules.items():
        if form.section(key) is None:
            problems.append(
                FormProblem(
                    section=key,
                    message=f"is missing: the form must say {required.what}",
                    source=required.source,
                )
            )
    for section in form.sections:
        rule = rules.get(section.key)
        source = rule.source if rule else general
        text = section.text.strip()
        if not section.heading.strip():
            problems.append(FormProblem(section=section.key, message="needs a heading", source=source))
        if len(text) > MAX_SECTION_CHARS:
            problems.append(
                FormProblem(
                    section=section.key,
                    message=f"is {len(text)} characters, more than {MAX_SECTION_CHARS}: put the detail in a leaflet",
                    source=source,
                )
            )
        if rule is not None and len(text) < MIN_SECTION_CHARS:
            problems.append(
                FormProblem(
                    section=section.key,
                    message=f"says too little ({len(text)} characters, at least {MIN_SECTION_CHARS}): it must say {rule.what}",
                    source=source,
                )
            )
            continue
        if rule is not None:
            problems += [
                FormProblem(section=section.key, message=m, source=source)
                for m in _content_problems(form, rule, section)
            ]
        cited = _source_problem(section.source)
        if cited is not None:
            problems.append(FormProblem(section=section.key, message=cited, source=general))
    return tuple(problems)


# --- how long a consent lasts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidityPolicy:
    days: int
    source: str
    confirmed: bool


MIN_VALIDITY_DAYS: Final = 30
MAX_VALIDITY_DAYS: Final = 730
DEFAULT_VALIDITY: Final = ValidityPolicy(
    days=365,
    source=(
        "clinic default, unconfirmed: clinical.md gives no validity period for a consent (§11 asks for a "
        "documented, versioned consent); re-consent after a year, or sooner when the form changes"
    ),
    confirmed=False,
)


# --- does a signed consent cover this session? ----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedConsent:
    """The latest signed consent on file for a drug and route, as the record holds it."""

    route: str
    form_title: str
    version: int
    signed_on: date
    expires_on: date | None
    withdrawn_on: date | None = None
    withdrawal_reason: str = ""
    how: str = ""  # "signed on the clinic tablet", "signed paper form (scan)"
    witness: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SignAgain:
    """A newer version of the form that every patient must sign before their next dose."""

    version: int
    published_on: date
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentStanding:
    current: bool
    reason: str
    source: str
    confirmed: bool


CONSENT_SOURCE: Final = (
    "clinical.md §11: informed consent documented, specific to drug and route, versioned; §6.1 (ASKP3, CPSBC)"
)


def _ago(days: int) -> str:
    return "today" if days == 0 else ("1 day ago" if days == 1 else f"{days} days ago")


def consent_standing(
    *,
    drug: str,
    route: str,
    on_file: SignedConsent | None,
    today: date,
    validity: ValidityPolicy = DEFAULT_VALIDITY,
    sign_again: SignAgain | None = None,
    other_routes: Iterable[str] = (),
    unsigned_record_on: date | None = None,
) -> ConsentStanding:
    """Whether the patient's consent covers a dose of ``drug`` by ``route`` today.

    ``on_file`` is the latest signed consent for exactly this drug and route (the latest decides: a withdrawn
    consent is not revived by an older one). ``other_routes`` are routes of the same drug with a consent on
    file (named, since an IV consent does not cover IM); ``unsigned_record_on`` is a consent recorded before
    signed forms were kept, which does not count."""
    label = form_label(drug, route)
    source = f"{CONSENT_SOURCE}; validity: {validity.source}"
    confirmed = validity.confirmed

    def fail(reason: str) -> ConsentStanding:
        return ConsentStanding(current=False, reason=reason, source=source, confirmed=confirmed)

    if on_file is None:
        reason = f"No signed consent for {label} on file"
        others = sorted({ROUTE_WORDS.get(r, r) for r in other_routes if r != route})
        if others:
            reason += f" (on file: {drug} {', '.join(others)} — each route needs its own consent)"
        if unsigned_record_on is not None:
            reason += f"; the consent recorded on {unsigned_record_on.isoformat()} has no signed form and does not count"
        return fail(reason + ": the patient signs the current form before any dose")
    form = f"{on_file.form_title}, version {on_file.version}"
    age = (today - on_file.signed_on).days
    if on_file.route != route:
        return fail(f"The consent on file ({form}) covers {on_file.route}, not {route}")
    if age < 0:
        return fail(f"Consent dated {on_file.signed_on.isoformat()} is in the future")
    if on_file.withdrawn_on is not None and on_file.withdrawn_on <= today:
        why = f": {on_file.withdrawal_reason}" if on_file.withdrawal_reason else ""
        return fail(
            f"Consent withdrawn on {on_file.withdrawn_on.isoformat()}{why}. No dose unless the patient signs a "
            "new consent"
        )
    if on_file.expires_on is not None and on_file.expires_on < today:
        return fail(
            f"Consent expired on {on_file.expires_on.isoformat()} ({form}, signed {on_file.signed_on.isoformat()}, "
            f"{_ago(age)}): the patient signs the current form again"
        )
    if sign_again is not None and on_file.version < sign_again.version:
        return fail(
            f"Signed {form} on {on_file.signed_on.isoformat()}; version {sign_again.version} (published "
            f"{sign_again.published_on.isoformat()}) must be signed before the next dose: {sign_again.note}"
        )
    parts = [f"{form}, signed {on_file.signed_on.isoformat()} ({_ago(age)})"]
    if on_file.how:
        parts.append(on_file.how)
    if on_file.witness:
        parts.append(f"witnessed by {on_file.witness}")
    until = f"valid until {on_file.expires_on.isoformat()}" if on_file.expires_on else "no expiry recorded"
    policy = f"clinic policy {validity.days} days" + ("" if validity.confirmed else ", unconfirmed")
    return ConsentStanding(
        current=True,
        reason=f"Consent current: {'; '.join(parts)}; {until} ({policy})",
        source=source,
        confirmed=confirmed,
    )


def builtin_forms() -> tuple[FormText, ...]:
    from ketaclinic.clinical.consent_forms import BUILTIN_FORMS

    return tuple(BUILTIN_FORMS[(str(d), str(r))] for d, r in FORM_ROUTES)


def builtin_form(drug: str, route: str) -> FormText:
    from ketaclinic.clinical.consent_forms import BUILTIN_FORMS

    try:
        return BUILTIN_FORMS[(drug, route)]
    except KeyError:
        raise KeyError(f"no built-in consent form for {drug} by {route}") from None


def sections_in_order(sections: Sequence[Section]) -> tuple[Section, ...]:
    order = {str(k): i for i, k in enumerate(SECTION_HEADINGS)}
    return tuple(sorted(sections, key=lambda s: order.get(s.key, len(order))))
