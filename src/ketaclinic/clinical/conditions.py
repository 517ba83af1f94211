"""Coded clinical concepts shared by screening, protocols, dosing and scheduling.

Pure: no Django, no I/O.

* Indications with their SNOMED CT codes (interop.md §1.2). Two indications have no single
  pre-coordinated concept in the reference: treatment-resistant depression (coded as MDD 370143000 plus a
  local note) and MDD with acute suicidal ideation (coded as two Conditions, 370143000 + 6471006). Those
  codings carry ``confirmed=False`` and a note, so an export never pretends a concept exists.
* Drugs (racemic ketamine, esketamine) and routes with SNOMED CT route codes (interop.md §1.4). The route
  codes live here, next to the indication codes, so that every code table sits in one module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

SNOMED_CT: Final = "http://snomed.info/sct"


@dataclass(frozen=True)
class Coding:
    """One code in one code system, with where it came from."""

    system: str
    code: str
    display: str
    source: str
    confirmed: bool = True
    note: str = ""


class IndicationGroup(StrEnum):
    """Families of indications that share screening rules and baseline scales."""

    DEPRESSION = "depression"
    BIPOLAR_DEPRESSION = "bipolar_depression"
    PTSD = "ptsd"
    CHRONIC_PAIN = "chronic_pain"


class Indication(StrEnum):
    MAJOR_DEPRESSIVE_DISORDER = "mdd"
    TREATMENT_RESISTANT_DEPRESSION = "trd"
    MDD_WITH_SUICIDAL_IDEATION = "mdd_suicidal_ideation"
    BIPOLAR_DEPRESSION = "bipolar_depression"
    PTSD = "ptsd"
    CRPS = "crps"
    FIBROMYALGIA = "fibromyalgia"
    NEUROPATHIC_PAIN = "neuropathic_pain"


@dataclass(frozen=True)
class IndicationInfo:
    indication: Indication
    label: str
    group: IndicationGroup
    codings: tuple[Coding, ...]


_MDD = Coding(SNOMED_CT, "370143000", "Major depressive disorder (disorder)", "interop.md §1.2")

INDICATIONS: Final[Mapping[Indication, IndicationInfo]] = {
    Indication.MAJOR_DEPRESSIVE_DISORDER: IndicationInfo(
        Indication.MAJOR_DEPRESSIVE_DISORDER, "Major depressive disorder", IndicationGroup.DEPRESSION, (_MDD,)
    ),
    Indication.TREATMENT_RESISTANT_DEPRESSION: IndicationInfo(
        Indication.TREATMENT_RESISTANT_DEPRESSION,
        "Treatment-resistant depression",
        IndicationGroup.DEPRESSION,
        (
            Coding(
                SNOMED_CT,
                "370143000",
                "Major depressive disorder (disorder)",
                "interop.md §1.2",
                confirmed=False,
                note="No pre-coordinated SNOMED CT concept for TRD was found; record MDD plus a local "
                "extension or Condition.note 'treatment-resistant'.",
            ),
        ),
    ),
    Indication.MDD_WITH_SUICIDAL_IDEATION: IndicationInfo(
        Indication.MDD_WITH_SUICIDAL_IDEATION,
        "Major depressive disorder with acute suicidal ideation or behaviour",
        IndicationGroup.DEPRESSION,
        (
            _MDD,
            Coding(
                SNOMED_CT,
                "6471006",
                "Suicidal thoughts / Suicidal ideation (finding)",
                "interop.md §1.2",
                note="No single 'MDD with SI' concept: record two Conditions (370143000 + 6471006).",
            ),
        ),
    ),
    Indication.BIPOLAR_DEPRESSION: IndicationInfo(
        Indication.BIPOLAR_DEPRESSION,
        "Bipolar depression",
        IndicationGroup.BIPOLAR_DEPRESSION,
        (
            Coding(
                SNOMED_CT,
                "767631007",
                "Bipolar disorder, most recent episode depression (disorder)",
                "interop.md §1.2 (BHFDSC/CCU037_02 code list)",
                note="Alternatives: 767636002 (bipolar I), 16295005 (bipolar II), 191627008; parent 13746004.",
            ),
        ),
    ),
    Indication.PTSD: IndicationInfo(
        Indication.PTSD,
        "Post-traumatic stress disorder",
        IndicationGroup.PTSD,
        (Coding(SNOMED_CT, "47505003", "Posttraumatic stress disorder (disorder)", "interop.md §1.2"),),
    ),
    Indication.CRPS: IndicationInfo(
        Indication.CRPS,
        "Complex regional pain syndrome",
        IndicationGroup.CHRONIC_PAIN,
        (Coding(SNOMED_CT, "128200000", "Complex regional pain syndrome (disorder)", "interop.md §1.2"),),
    ),
    Indication.FIBROMYALGIA: IndicationInfo(
        Indication.FIBROMYALGIA,
        "Fibromyalgia",
        IndicationGroup.CHRONIC_PAIN,
        (Coding(SNOMED_CT, "203082005", "Fibromyalgia (disorder)", "interop.md §1.2"),),
    ),
    Indication.NEUROPATHIC_PAIN: IndicationInfo(
        Indication.NEUROPATHIC_PAIN,
        "Neuropathic pain",
        IndicationGroup.CHRONIC_PAIN,
        (Coding(SNOMED_CT, "247398009", "Neuropathic pain (finding)", "interop.md §1.2"),),
    ),
}


def indication_group(indication: Indication) -> IndicationGroup:
    return INDICATIONS[indication].group


class Drug(StrEnum):
    KETAMINE = "ketamine"  # racemic ketamine (off-label for psychiatric use, clinical.md §3)
    ESKETAMINE = "esketamine"  # SPRAVATO nasal spray (clinical.md §2)


DRUG_LABELS: Final[Mapping[Drug, str]] = {
    Drug.KETAMINE: "Ketamine (racemic)",
    Drug.ESKETAMINE: "Esketamine (SPRAVATO)",
}


class Route(StrEnum):
    IV = "iv"
    IM = "im"
    INTRANASAL = "intranasal"
    SUBLINGUAL = "sublingual"
    ORAL = "oral"
    SUBCUTANEOUS = "subcutaneous"


ROUTE_CODES: Final[Mapping[Route, Coding]] = {
    Route.IV: Coding(SNOMED_CT, "47625008", "Intravenous route", "interop.md §1.4"),
    Route.IM: Coding(SNOMED_CT, "78421000", "Intramuscular route", "interop.md §1.4"),
    Route.INTRANASAL: Coding(SNOMED_CT, "46713006", "Nasal route", "interop.md §1.4"),
    Route.SUBLINGUAL: Coding(SNOMED_CT, "37839007", "Sublingual route", "interop.md §1.4"),
    Route.ORAL: Coding(SNOMED_CT, "26643006", "Oral route", "interop.md §1.4"),
    Route.SUBCUTANEOUS: Coding(SNOMED_CT, "34206005", "Subcutaneous route", "interop.md §1.4"),
}

ROUTE_LABELS: Final[Mapping[Route, str]] = {
    Route.IV: "IV",
    Route.IM: "IM",
    Route.INTRANASAL: "intranasal",
    Route.SUBLINGUAL: "sublingual",
    Route.ORAL: "oral",
    Route.SUBCUTANEOUS: "subcutaneous",
}

#: Routes each drug is given by (clinical.md §2: esketamine is a nasal spray; §3: racemic ketamine routes).
DRUG_ROUTES: Final[Mapping[Drug, frozenset[Route]]] = {
    Drug.ESKETAMINE: frozenset({Route.INTRANASAL}),
    Drug.KETAMINE: frozenset({Route.IV, Route.IM, Route.SUBLINGUAL, Route.ORAL, Route.SUBCUTANEOUS}),
}
