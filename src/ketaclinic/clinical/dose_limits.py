"""What a dose may be, whatever a protocol says: the reference's limits per drug, route and indication, and
the clinic-policy ceilings that apply when a protocol sets none.

Pure: no Django, no I/O. clinical.md §11: "the limits of §1.1, §2.1, §4 are properties of the drug, route
and indication; a dose given at the chair (planned, ad hoc, a pump rate, a device count) is a dose like any
other". So a clinic may *narrow* these limits in its protocol copy, never widen them: ``protocols.py``
refuses a protocol whose hard limits lie outside ``reference_limit(...)``, and ``dose_check.py`` applies the
stricter of the two at every dose.

Two kinds of numbers live here:

* ``REFERENCE_LIMITS`` — confirmed limits from the reference only. Where the reference is unconfirmed
  (IM and sublingual doses, clinical.md §3.2 [U]) the protocol's own limits are the clinic's decision.
* ``DEFAULT_POLICY`` — clinic policy (absolute mg ceiling per session, final IV concentration): not in the
  reference, so configurable defaults marked ``confirmed=False`` and shown to staff as such. A protocol's
  own ``DoseLimits.soft_max_mg`` / ``hard_max_mg`` / ``max_concentration_mg_ml`` replace them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ketaclinic.clinical.conditions import Drug, Indication, IndicationGroup, Route, indication_group
from ketaclinic.clinical.dose_types import ESKETAMINE_LABEL_DOSES_MG, DoseKind, DoseLimits

#: 100 mg/mL ketamine must never be infused undiluted (clinical.md §1.1, "[U verify against label]").
UNDILUTED_MG_ML: Final = 100.0
UNDILUTED_SOURCE: Final = (
    "clinical.md §1.1: 100 mg/mL must not be given IV undiluted (Ketalar label per droracle.ai, low-grade) "
    "[U verify against label]"
)

#: Devine's formula is built for heights ≥ 60 in (152.4 cm); below that the IBW basis is refused
#: (clinical.md §11, clinic default).
IBW_MIN_HEIGHT_SOURCE: Final = (
    "clinical.md §11: Devine's IBW formula is built for heights ≥152 cm; below that it extrapolates to "
    "implausible values, so the ideal/adjusted basis is refused there (clinic default)"
)
ACTUAL_WEIGHT_SOURCE: Final = (
    "clinical.md §11: with ideal or adjusted weight, the dose in mg/kg of actual weight must still lie "
    "within the hard limits"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferenceLimit:
    """The widest a dose of ``drug`` by ``route`` in ``kind`` units may be for the listed indications."""

    drug: Drug
    route: Route
    kind: DoseKind
    groups: frozenset[IndicationGroup] = frozenset()  # empty: any group
    indications: frozenset[Indication] = frozenset()  # empty: any indication of the groups
    hard_min: float | None = None
    hard_max: float | None = None
    allowed: tuple[float, ...] = ()  # fixed doses: only these (esketamine 28/56/84 mg)
    max_mg_per_h: float | None = None
    source: str
    confirmed: bool

    def covers(self, drug: Drug, route: Route, kind: DoseKind, indication: Indication) -> bool:
        if (drug, route, kind) != (self.drug, self.route, self.kind):
            return False
        if self.indications and indication not in self.indications:
            return False
        return not self.groups or indication_group(indication) in self.groups


_PSYCH: Final = frozenset(
    {IndicationGroup.DEPRESSION, IndicationGroup.BIPOLAR_DEPRESSION, IndicationGroup.PTSD}
)

REFERENCE_LIMITS: Final[tuple[ReferenceLimit, ...]] = (
    ReferenceLimit(
        drug=Drug.KETAMINE,
        route=Route.IV,
        kind=DoseKind.MG_PER_KG,
        groups=_PSYCH,
        hard_min=0.1,
        hard_max=1.0,
        source=(
            "clinical.md §1.1: doses studied 0.1 mg/kg (Andrade 2017) to 1.0 mg/kg (dose-ranging RCT, Fava 2020); "
            "§5.1, §5.2 use the same 0.5 mg/kg"
        ),
        confirmed=True,
    ),
    ReferenceLimit(
        drug=Drug.KETAMINE,
        route=Route.IV,
        kind=DoseKind.MG_PER_KG_PER_HOUR,
        indications=frozenset({Indication.CRPS}),
        hard_max=0.35,
        max_mg_per_h=25.0,
        source=(
            "clinical.md §4 (Cohen 2018: 0.35 mg/kg/h over 4 h) and §11 (Schwartzman, Pain 2009: maximum rate "
            "0.35 mg/kg/h, not to exceed 25 mg/h)"
        ),
        confirmed=True,
    ),
    ReferenceLimit(
        drug=Drug.ESKETAMINE,
        route=Route.INTRANASAL,
        kind=DoseKind.FIXED_MG,
        allowed=ESKETAMINE_LABEL_DOSES_MG,
        source="clinical.md §2.1, §11: 28 mg per device; a session's dose is 28, 56 or 84 mg (SPRAVATO US PI)",
        confirmed=True,
    ),
)


def reference_limits(
    *, drug: Drug, route: Route, kind: DoseKind, indications: Iterable[Indication]
) -> list[ReferenceLimit]:
    """Every reference limit that applies to a protocol for ``indications`` (each one binds)."""
    wanted = tuple(indications)
    return [
        limit
        for limit in REFERENCE_LIMITS
        if any(limit.covers(drug, route, kind, indication) for indication in wanted)
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class Bounds:
    """The limits that bind one dose: the protocol's, narrowed by the reference's. Units are the rule's."""

    hard_min: float | None
    hard_max: float | None
    soft_min: float | None
    soft_max: float | None
    hard_allowed: tuple[float, ...]
    soft_allowed: tuple[float, ...]
    max_mg_per_h: float | None
    hard_source: str
    hard_confirmed: bool
    soft_source: str
    soft_confirmed: bool
    rate_source: str


def _tighter_max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _tighter_min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def binding_bounds(limits: DoseLimits, reference: Iterable[ReferenceLimit]) -> Bounds:
    """The protocol's limits with every applicable reference limit laid over them (the stricter wins)."""
    hard_min, hard_max = limits.hard_min, limits.hard_max
    hard_allowed = limits.hard_allowed
    cap = limits.max_mg_per_h
    hard_sources = [limits.source]
    confirmed = limits.confirmed
    rate_sources = [limits.policy_source] if limits.max_mg_per_h is not None and limits.policy_source else []
    for ref in reference:
        narrower = False
        if ref.hard_max is not None and (hard_max is None or ref.hard_max < hard_max):
            hard_max, narrower = ref.hard_max, True
        if ref.hard_min is not None and (hard_min is None or ref.hard_min > hard_min):
            hard_min, narrower = ref.hard_min, True
        if ref.allowed:
            kept = tuple(a for a in (hard_allowed or ref.allowed) if a in ref.allowed)
            narrower = narrower or kept != hard_allowed
            hard_allowed = kept
        if ref.max_mg_per_h is not None and (cap is None or ref.max_mg_per_h < cap):
            cap = ref.max_mg_per_h
            rate_sources = [ref.source]
        if narrower:
            hard_sources.append(ref.source)
            confirmed = confirmed and ref.confirmed
    return Bounds(
        hard_min=hard_min,
        hard_max=hard_max,
        soft_min=_tighter_min(limits.soft_min, hard_min),
        soft_max=_tighter_max(limits.soft_max, hard_max),
        hard_allowed=hard_allowed,
        soft_allowed=tuple(a for a in limits.soft_allowed if not hard_allowed or a in hard_allowed),
        max_mg_per_h=cap,
        hard_source="; ".join(dict.fromkeys(s for s in hard_sources if s)),
        hard_confirmed=confirmed,
        soft_source=limits.source,
        soft_confirmed=limits.confirmed,
        rate_source="; ".join(rate_sources),
    )


def widened_beyond_reference(
    limits: DoseLimits, reference: Iterable[ReferenceLimit], unit: str
) -> dict[str, str]:
    """Protocol validation: field -> reason for every hard limit wider than the reference allows."""
    errors: dict[str, str] = {}
    for ref in reference:
        if ref.hard_max is not None and (limits.hard_max is None or limits.hard_max > ref.hard_max):
            errors["limits.hard_max"] = (
                f"may not exceed {ref.hard_max:g} {unit} for this drug, route and indication ({ref.source})"
            )
        if ref.hard_min is not None and (limits.hard_min is None or limits.hard_min < ref.hard_min):
            errors["limits.hard_min"] = (
                f"may not be below {ref.hard_min:g} {unit} for this drug, route and indication ({ref.source})"
            )
        if ref.allowed:
            extra = [a for a in limits.hard_allowed if a not in ref.allowed]
            if extra:
                errors["limits.hard_allowed"] = (
                    f"{', '.join(f'{a:g}' for a in extra)} {unit} is not an allowed dose ({ref.source})"
                )
        if ref.max_mg_per_h is not None and (
            limits.max_mg_per_h is not None and limits.max_mg_per_h > ref.max_mg_per_h
        ):
            errors["limits.max_mg_per_h"] = f"may not exceed {ref.max_mg_per_h:g} mg/h ({ref.source})"
    return errors


# --- clinic policy ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DosePolicy:
    """Clinic policy for one session's dose: absolute mg ceilings and the strongest IV concentration."""

    soft_max_mg: float | None
    hard_max_mg: float | None
    max_concentration_mg_ml: float | None
    source: str
    confirmed: bool


_IV_POLICY_SOURCE: Final = (
    "clinic policy, default unconfirmed (not in the reference): above 100 mg a prescriber gives the reason, "
    "above 150 mg the dose is refused (the 1.0 mg/kg hard limit of clinical.md §1.1 at 150 kg); infusions "
    "no stronger than 10 mg/mL, the weakest stocked vial (interop.md §1.3), since 100 mg/mL must never be "
    "given undiluted (§1.1)"
)
_IM_POLICY_SOURCE: Final = (
    "clinic policy, default unconfirmed (not in the reference): above 50 mg a prescriber gives the reason, "
    "above 75 mg the dose is refused (the 0.5 mg/kg limit of clinical.md §3.2 at 100 and 150 kg)"
)

DEFAULT_POLICY: Final = {
    (Drug.KETAMINE, Route.IV): DosePolicy(
        soft_max_mg=100.0,
        hard_max_mg=150.0,
        max_concentration_mg_ml=10.0,
        source=_IV_POLICY_SOURCE,
        confirmed=False,
    ),
    (Drug.KETAMINE, Route.IM): DosePolicy(
        soft_max_mg=50.0,
        hard_max_mg=75.0,
        max_concentration_mg_ml=None,
        source=_IM_POLICY_SOURCE,
        confirmed=False,
    ),
}
NO_POLICY: Final = DosePolicy(
    soft_max_mg=None, hard_max_mg=None, max_concentration_mg_ml=None, source="", confirmed=True
)


def dose_policy(*, drug: Drug, route: Route, limits: DoseLimits) -> DosePolicy:
    """The protocol's own policy values where it sets them, else the route default."""
    default = DEFAULT_POLICY.get((drug, route), NO_POLICY)
    own = (limits.soft_max_mg, limits.hard_max_mg, limits.max_concentration_mg_ml)
    if all(v is None for v in own):
        return default
    return DosePolicy(
        soft_max_mg=limits.soft_max_mg if limits.soft_max_mg is not None else default.soft_max_mg,
        hard_max_mg=limits.hard_max_mg if limits.hard_max_mg is not None else default.hard_max_mg,
        max_concentration_mg_ml=(
            limits.max_concentration_mg_ml
            if limits.max_concentration_mg_ml is not None
            else default.max_concentration_mg_ml
        ),
        source=limits.policy_source or default.source,
        confirmed=limits.policy_confirmed,
    )
