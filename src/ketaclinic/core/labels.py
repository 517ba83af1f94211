"""One mapping from the codes the software stores to the words staff read (issue 14: "raw codes shown to
clinicians (`needs_decision`, `eligible_with_cautions`, `min_monitoring`, `supplier_dea`)").

Each vocabulary's dictionary lives next to its enum — the pure ones in ``clinical/`` (gate statuses,
screening decisions, discharge criteria, alert codes, trial outcomes), the apps' in their ``TextChoices`` —
and this module only names them, so a template asks ``{{ item.status|label:"gate_status" }}`` (the filter
is a template builtin: ``core/templatetags/labels.py``) and the PDFs call :func:`label`. A code missing from
its vocabulary is shown with spaces for underscores rather than as a code; an unknown vocabulary is a
programming error and raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from ketaclinic.clinical.alerts import ALERT_LABELS
from ketaclinic.clinical.conditions import DRUG_LABELS, ROUTE_LABELS
from ketaclinic.clinical.discharge import CRITERION_LABELS
from ketaclinic.clinical.dose_types import DOSE_UNITS
from ketaclinic.clinical.gate import GATE_STATUS_LABELS
from ketaclinic.clinical.instruments import INSTRUMENTS
from ketaclinic.clinical.screening_model import DECISION_LABELS, TRIAL_OUTCOME_LABELS

#: The controlled-substance forms' fields, as the receipt, use and count forms label them (errors name them).
LEDGER_FIELD_LABELS: Mapping[str, str] = {
    "drug": "Drug",
    "product": "Product",
    "ndc": "NDC",
    "lot": "Lot",
    "expiry": "Expiry",
    "unit": "Counted in",
    "mg_per_unit": "Strength (mg per unit)",
    "quantity": "Quantity",
    "containers": "Containers",
    "received_on": "Received on",
    "supplier_name": "Supplier",
    "supplier_address": "Supplier address",
    "supplier_dea": "Supplier DEA number",
    "drawn": "Drawn",
    "administered": "Given",
    "wasted": "Wasted",
    "witness": "Witness",
    "counted": "Counted",
    "count_time": "Count time",
    "reason": "Reason",
    "session": "Session",
    "at": "Time",
    "since": "From",
    "until": "To",
    "site": "Site",
}

#: Where a reading came from.
READING_SOURCE_LABELS: Mapping[str, str] = {"manual": "typed", "api": "API", "hl7": "monitor"}


@cache
def vocabularies() -> Mapping[str, Mapping[str, str]]:
    """Every vocabulary by name (built on first use: the apps' models are loaded by then)."""
    from ketaclinic.chairside.models import AdministrationKind, Status
    from ketaclinic.treatment.models import PlanStatus, SessionStatus

    return {
        "gate_status": GATE_STATUS_LABELS,
        "screening_decision": DECISION_LABELS,
        "discharge_criterion": CRITERION_LABELS,
        "alert": {str(code): text for code, text in ALERT_LABELS.items()},
        "trial_outcome": TRIAL_OUTCOME_LABELS,
        "drug": {str(drug): text for drug, text in DRUG_LABELS.items()},
        "route": {str(route): text for route, text in ROUTE_LABELS.items()},
        "dose_kind": {str(kind): unit for kind, unit in DOSE_UNITS.items()},
        "instrument": {code: instrument.name for code, instrument in INSTRUMENTS.items()},
        "session_status": dict(Status.choices),
        "administration": dict(AdministrationKind.choices),
        "plan_status": dict(PlanStatus.choices),
        "plan_session_status": dict(SessionStatus.choices),
        "ledger_field": LEDGER_FIELD_LABELS,
        "reading_source": READING_SOURCE_LABELS,
    }


def label(code: object, vocabulary: str) -> str:
    """The words for ``code`` in ``vocabulary`` ("needs_decision", "gate_status" → "Needs a prescriber's
    decision"); a code the vocabulary lacks is shown with spaces, never as the raw code."""
    words = vocabularies()[vocabulary]
    text = "" if code is None else str(code)
    return words.get(text) or text.replace("_", " ")
