"""Condition from the diagnoses of each patient's latest intake version (``assessment.Intake``).

The intake's ``indication`` (the reason for ketamine treatment) and its ``diagnoses`` list are both
diagnoses of the patient; each distinct concept among them is one Condition. The codes come from
``clinical.conditions.INDICATIONS`` (interop.md §1.2, SNOMED CT):

* An indication whose codings are all confirmed yields one Condition per coding: MDD 370143000, bipolar
  depression 767631007, PTSD 47505003, CRPS 128200000, fibromyalgia 203082005, neuropathic pain 247398009.
  "MDD with acute suicidal ideation" has no single concept, so it yields two Conditions, MDD 370143000 and
  suicidal ideation 6471006 (as conditions.py and interop.md §1.2 advise); the MDD one is shared with a
  plain MDD diagnosis on the same intake, so a patient never gets two MDD Conditions.
* An indication with an unconfirmed coding (treatment-resistant depression: interop.md §1.2 ⚠ found no
  SNOMED CT concept) yields one Condition of its own whose ``code`` carries SNOMED CT 370143000 (so that a
  receiver looking for major depressive disorder finds it) *and* the local code
  ``codes.CONDITION_SYSTEM|trd`` (the finer meaning, as a second coding of the same CodeableConcept), with
  ``code.text`` "Treatment-resistant depression" and a ``note`` saying why. It stays separate from a plain
  MDD Condition: the local code is what distinguishes it.

Ids are ``<intake uuid>-<code>`` (``…-370143000``, ``…-trd``): stable for an intake version. Only the
patient's latest intake version is served, so saving a new version replaces the patient's Conditions by
new ids (the old ones then answer 404): the intake is versioned as a whole, and its latest version is the
clinic's current view of the diagnoses.

``category`` is ``problem-list-item`` (US Core 5.0.0 split, interop.md §1.1): intake diagnoses are the
patient's standing conditions recorded at assessment, not diagnoses of one visit, and an intake is not an
Encounter (US Core's Encounter Diagnosis profile expects ``encounter``). ``clinicalStatus`` is ``active``
(an intake records current diagnoses); ``verificationStatus`` is ``confirmed`` once a prescriber signed the
intake version, ``provisional`` before. ``recordedDate`` is when the version was entered; ``recorder`` and
``asserter`` (the signer) are by display. ``meta.lastUpdated`` is the later of entry and signing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce, Greatest

from ketaclinic.assessment.models import Intake
from ketaclinic.clinical.conditions import INDICATIONS, Indication
from ketaclinic.interop.fhir import codes, profiles
from ketaclinic.interop.fhir.params import Filter, ParamType, Token
from ketaclinic.interop.fhir.resources.base import (
    COMMON_PARAMS,
    PATIENT_PARAMS,
    ParamDef,
    ResourceType,
    Source,
    instant,
    token_matches,
)

CATEGORY = "problem-list-item"
VERIFICATION_DISPLAY = {"confirmed": "Confirmed", "provisional": "Provisional"}


@dataclass(frozen=True)
class ConditionKind:
    """One Condition an intake can yield: its id suffix, codings, and the intake keys that yield it."""

    suffix: str
    codings: tuple[dict[str, str], ...]
    text: str
    keys: tuple[str, ...]  # Indication values (intake ``indication`` / ``diagnoses`` entries)
    note: str = ""


def _kinds() -> tuple[ConditionKind, ...]:
    by_code: dict[str, ConditionKind] = {}
    own: list[ConditionKind] = []
    for indication, info in INDICATIONS.items():
        codings = tuple({"system": c.system, "code": c.code, "display": c.display} for c in info.codings)
        if not all(c.confirmed for c in info.codings):
            local = indication.value.replace("_", "-")
            own.append(
                ConditionKind(
                    suffix=local,
                    codings=(
                        *codings,
                        {"system": codes.CONDITION_SYSTEM, "code": local, "display": info.label},
                    ),
                    text=info.label,
                    keys=(indication.value,),
                    note=f"{info.label}: no pre-coordinated SNOMED CT concept exists (interop.md §1.2); coded "
                    f"as {', '.join(c['code'] for c in codings)} with the local code {local}.",
                )
            )
            continue
        for coding in codings:
            known = by_code.get(coding["code"])
            text = info.label if len(codings) == 1 else coding["display"]
            if known is None:
                by_code[coding["code"]] = ConditionKind(coding["code"], (coding,), text, (indication.value,))
            else:  # the same concept from another indication (MDD inside "MDD with suicidal ideation")
                keep_text = text if len(codings) == 1 else known.text
                by_code[coding["code"]] = ConditionKind(
                    known.suffix, known.codings, keep_text, (*known.keys, indication.value)
                )
    return (*by_code.values(), *own)


KINDS: tuple[ConditionKind, ...] = _kinds()


def intake_keys(data: Any) -> list[str]:
    """The intake's indication and diagnoses, indication first, without repeats."""
    keys = [data.get("indication")] if data.get("indication") else []
    return list(dict.fromkeys([*keys, *(data.get("diagnoses") or [])]))


def condition_ids(intake: Any, keys: Iterable[str] | None = None) -> list[str]:
    """Ids of the Conditions ``intake`` yields (from ``keys`` only, when given), in ``KINDS`` order."""
    wanted = set(intake_keys(intake.data) if keys is None else keys)
    return [f"{intake.pk}-{k.suffix}" for k in KINDS if wanted & set(k.keys)]


def latest_intakes(organization_id: int) -> QuerySet[Intake]:
    """Each patient's latest intake version in the organization."""
    newer = Intake.objects.filter(patient_id=OuterRef("patient_id"), version__gt=OuterRef("version"))
    return Intake.objects.filter(~Exists(newer), organization_id=organization_id)


def _yields(key: str) -> Q:
    # ``diagnoses`` is a de-duplicated list of Indication values, so it has at most len(Indication) items;
    # array-index lookups work the same on SQLite and PostgreSQL (JSON ``contains`` does not on SQLite).
    positions = [Q(**{f"data__diagnoses__{i}": key}) for i in range(len(Indication))]
    return reduce(or_, [Q(data__indication=key), *positions])


class IntakeConditionSource(Source):
    """One kind of Condition over the latest intake versions that yield it (ids ``<uuid>-<suffix>``)."""

    model = Intake
    updated_field = "last_updated"
    date_fields = {"recorded-date": "created_at"}
    created_field = "created_at"
    sort_fields = {"_id": "pk", "_lastUpdated": "last_updated", "recorded-date": "created_at"}

    def __init__(self, kind: ConditionKind) -> None:
        self.kind = kind
        self._suffix = f"-{kind.suffix}"

    def queryset(self, organization_id: int) -> QuerySet[Any]:
        return (
            latest_intakes(organization_id)
            .filter(reduce(or_, (_yields(k) for k in self.kind.keys)))
            .select_related("created_by", "signed_by")
            .annotate(last_updated=Greatest(F("created_at"), Coalesce(F("signed_at"), F("created_at"))))
        )

    def fhir_id(self, obj: Any) -> str:
        return f"{obj.pk}{self._suffix}"

    def parse_id(self, fhir_id: str) -> Any | None:
        if not fhir_id.endswith(self._suffix):
            return None
        return super().parse_id(fhir_id.removesuffix(self._suffix))

    def filter_param(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        tokens = [v for v in flt.values if isinstance(v, Token)]
        if flt.name == "code":
            pairs = [(c["system"], c["code"]) for c in self.kind.codings]
        elif flt.name == "category":
            pairs = [(codes.CONDITION_CATEGORY, CATEGORY)]
        elif flt.name == "clinical-status":
            pairs = [(codes.CONDITION_CLINICAL, "active")]
        elif flt.name == "verification-status":
            parts = []
            if any(token_matches(t, codes.CONDITION_VER_STATUS, "confirmed") for t in tokens):
                parts.append(Q(signed_at__isnull=False))
            if any(token_matches(t, codes.CONDITION_VER_STATUS, "provisional") for t in tokens):
                parts.append(Q(signed_at__isnull=True))
            return qs.filter(reduce(or_, parts)) if parts else qs.none()
        else:
            return qs.none()
        if any(token_matches(t, system, code) for t in tokens for system, code in pairs):
            return qs
        return qs.none()

    def to_fhir(self, obj: Any, base_url: str) -> dict[str, Any]:
        intake: Any = obj  # assessment.Intake annotated by queryset()
        verification = "confirmed" if intake.signed_at is not None else "provisional"
        resource: dict[str, Any] = {
            "resourceType": "Condition",
            "id": self.fhir_id(intake),
            "meta": {
                "lastUpdated": instant(intake.last_updated),
                "profile": [profiles.CONDITION_PROBLEMS],
            },
            "clinicalStatus": {
                "coding": [{"system": codes.CONDITION_CLINICAL, "code": "active", "display": "Active"}]
            },
            "verificationStatus": {
                "coding": [
                    {
                        "system": codes.CONDITION_VER_STATUS,
                        "code": verification,
                        "display": VERIFICATION_DISPLAY[verification],
                    }
                ]
            },
            "category": [
                {
                    "coding": [
                        {"system": codes.CONDITION_CATEGORY, "code": CATEGORY, "display": "Problem List Item"}
                    ]
                }
            ],
            "code": {"coding": [dict(c) for c in self.kind.codings], "text": self.kind.text},
            "subject": {"reference": f"Patient/{intake.patient_id}"},
            "recordedDate": instant(intake.created_at),
            "recorder": {"display": intake.created_by.display_name},
        }
        if intake.signed_by is not None:
            resource["asserter"] = {"display": intake.signed_by.display_name}
        if self.kind.note:
            resource["note"] = [{"text": self.kind.note}]
        return resource


CONDITION = ResourceType(
    name="Condition",
    sources=tuple(IntakeConditionSource(k) for k in KINDS),
    params={
        **COMMON_PARAMS,
        **PATIENT_PARAMS,
        "code": ParamDef(
            ParamType.TOKEN,
            f"The diagnosis: {codes.SNOMED}|<code> (e.g. 370143000), or {codes.CONDITION_SYSTEM}|trd.",
        ),
        "category": ParamDef(ParamType.TOKEN, f"Always {codes.CONDITION_CATEGORY}|{CATEGORY}."),
        "clinical-status": ParamDef(ParamType.TOKEN, "Always active."),
        "verification-status": ParamDef(
            ParamType.TOKEN, "confirmed (the intake is signed by a prescriber) or provisional."
        ),
        "recorded-date": ParamDef(ParamType.DATE, "When the intake version was entered."),
    },
    sort_keys=("_id", "_lastUpdated", "recorded-date"),
    documentation=(
        "Diagnoses and the treatment indication from each patient's latest intake (SNOMED CT; "
        "treatment-resistant depression also carries a local code)."
    ),
)
