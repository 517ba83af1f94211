"""Pre-dose gate: may this session's dose be given now? (pure: no Django, no I/O)

``evaluate_gate`` returns every item with ``pass`` / ``fail`` / ``needs_decision`` / ``not_applicable``,
its reason and source. ``gate_open`` is True only when every item passes (or does not apply) or has a
prescriber override with a non-empty reason.

Design choice: REMS items (patient enrolled, setting certified) and consent are not overridable. REMS
requires enrolment before treatment (clinical.md §2.2, §2.4); a prescriber override cannot satisfy it,
and dosing without consent is not a clinical judgement call. Every other item is overridable.

Numbers: fasting (food ≥2 h, liquids ≥30 min), nasal corticosteroid/decongestant ≥1 h before and the
pre-dose BP guide >140/90 are esketamine label rules (clinical.md §2.2). The BP rule holds for every route
(clinical.md §11: above 140/90 a prescriber decides; ≥180/110 is a stop until a prescriber decides, a clinic
default). A suicidality flag from any scale taken since the day before always shows as its own item. How
old a screening may be is not in the reference, so ``screening_max_age_days`` is a required setting.

Consent shows its age ("signed 2026-12-01, 6 days ago"). A consent with its own expiry date is current until
then (the app only passes a current consent); one without an expiry date is renewed after
``consent_max_age`` days (clinic policy, no interval in the reference: a clinic default, unconfirmed).

Pregnancy test (clinical.md §2.5: embryo-fetal toxicity; §11: the interval is clinic policy, default "within
7 days before the first session of a course", unconfirmed):

* it does not apply only when the patient's intake, signed by a prescriber, records that the patient cannot
  become pregnant (``ChildbearingRecord``); a nurse's "not indicated" at the gate counts for nothing else;
* a positive test fails, whatever its date;
* ``pregnancy_test.value`` is the interval N in days and ``pregnancy_test_scope`` where it is counted from:
  ``COURSE`` — a test taken on or after N days before the first *dosed* session of this session's course
  (``course_started_on``; the app finds it from the plan the session carries out, or outside a plan from the
  latest dosed course session number 1 of the same protocol), so a test taken for session 1 serves the whole
  course; on the first session itself (``course_started_on`` None) the test is at most N days old. ``SESSION``
  — at most N days old before every session. An older test fails, naming its age and the limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Final

from ketaclinic.clinical.alerts import DEFAULT_ALERT_RULES, AlertCode, AlertRule, evaluate_reading
from ketaclinic.clinical.consent import ConsentStanding
from ketaclinic.clinical.screening_model import Answer
from ketaclinic.clinical.vitals import VitalReading


class GateStatus(StrEnum):
    PASS = "pass"  # noqa: S105 (a gate status, not a password)
    FAIL = "fail"
    NEEDS_DECISION = "needs_decision"
    NOT_APPLICABLE = "not_applicable"


#: What staff read for each status (pages, the session report; core/labels.py).
GATE_STATUS_LABELS: Final[Mapping[str, str]] = {
    GateStatus.PASS: "Passed",
    GateStatus.FAIL: "Not passed",
    GateStatus.NEEDS_DECISION: "Needs a prescriber's decision",
    GateStatus.NOT_APPLICABLE: "Not applicable",
}


class GateItemKey(StrEnum):
    CONSENT = "consent"
    SCREENING = "screening"
    REMS_PATIENT_ENROLLED = "rems_patient_enrolled"
    REMS_SETTING_CERTIFIED = "rems_setting_certified"
    FOOD = "food"
    LIQUIDS = "liquids"
    NASAL_PRETREATMENT = "nasal_pretreatment"
    ESCORT = "escort"
    PREGNANCY_TEST = "pregnancy_test"
    BASELINE_VITALS = "baseline_vitals"
    PRE_SESSION_SCALES = "pre_session_scales"
    SUICIDALITY = "suicidality"


class PregnancyTest(StrEnum):
    NEGATIVE = "negative"
    POSITIVE = "positive"
    NOT_INDICATED = "not_indicated"  # counts only where the signed intake records no childbearing potential


class PregnancyTestScope(StrEnum):
    """Where the pregnancy-test interval is counted from (see the module docstring)."""

    COURSE = "course"  # before the first session of the course (clinical.md §11 default)
    SESSION = "session"  # before each session


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildbearingRecord:
    """The childbearing potential the patient's latest intake records (the assessment app)."""

    answer: Answer
    reason: str = ""  # why not, in words ("Post-menopausal")
    recorded: str = ""  # where ("intake version 3")
    signed: bool = False  # signed by a prescriber


@dataclass(frozen=True, slots=True, kw_only=True)
class Requirement:
    """A protocol requirement with its source. ``value`` is the number where the rule has one."""

    value: float | None = None
    source: str
    confirmed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class BpLimit:
    """Pre-dose BP limit: above ``sbp_mmhg``/``dbp_mmhg`` gives ``status_above`` (a prescriber's decision);
    at or above ``stop_sbp_mmhg``/``stop_dbp_mmhg`` the item fails — a stop until a prescriber decides."""

    sbp_mmhg: int
    dbp_mmhg: int
    status_above: GateStatus
    source: str
    confirmed: bool
    stop_sbp_mmhg: int | None = None
    stop_dbp_mmhg: int | None = None
    stop_source: str = ""
    stop_confirmed: bool = False


LABEL_FOOD_FAST_H: Final = Requirement(value=2, source="clinical.md §2.2 (Spravato label)", confirmed=True)
LABEL_LIQUIDS_FAST_MIN: Final = Requirement(
    value=30, source="clinical.md §2.2 (Spravato label)", confirmed=True
)
LABEL_NASAL_LEAD_MIN: Final = Requirement(
    value=60, source="clinical.md §2.2 (spravato.com; label: ≥1 h before)", confirmed=True
)
_STOP_SOURCE: Final = (
    "clinical.md §11, §7.3: ≥180/110 is a stop until a prescriber decides (clinic default, unconfirmed; "
    "label Table 6 categories SBP ≥180, DBP ≥110, §2.6)"
)
LABEL_PREDOSE_BP: Final = BpLimit(
    sbp_mmhg=140,
    dbp_mmhg=90,
    status_above=GateStatus.NEEDS_DECISION,
    source="clinical.md §2.2, §7.3 (Spravato label §5.6: >140/90 general guide; weigh delay)",
    confirmed=True,
    stop_sbp_mmhg=180,
    stop_dbp_mmhg=110,
    stop_source=_STOP_SOURCE,
)
#: IV, IM and sublingual racemic ketamine: the label's rule applied to every route (clinical.md §11: the
#: BP surges of §7.2 are larger, so a clinic applies the same prescriber decision above 140/90).
CLINIC_PREDOSE_BP: Final = BpLimit(
    sbp_mmhg=140,
    dbp_mmhg=90,
    status_above=GateStatus.NEEDS_DECISION,
    source=(
        "clinical.md §11: the esketamine label's >140/90 rule (§2.2) applied to racemic ketamine by every "
        "route (clinic default, unconfirmed)"
    ),
    confirmed=False,
    stop_sbp_mmhg=180,
    stop_dbp_mmhg=110,
    stop_source=_STOP_SOURCE,
)
REMS_REQUIREMENT: Final = Requirement(
    source="clinical.md §2.2, §2.4 (REMS: certified setting; patient enrolled before treatment)",
    confirmed=True,
)
LABEL_ESCORT: Final = Requirement(
    source="clinical.md §2.3 (label §17, §5.8: arrange a ride home; no driving until next day)",
    confirmed=True,
)
PRACTICE_ESCORT: Final = Requirement(
    source="clinical.md §7.5: IV clinics apply the esketamine escort rule (clinic pages, low-grade)",
    confirmed=False,
)
PREGNANCY_SOURCE: Final = "clinical.md §2.5 (label: not recommended in pregnancy), §6.2 (exclusion item)"
CONSENT_SOURCE: Final = "informed consent before treatment (clinical.md §6.1: ASKP3, CPSBC; §11)"


@dataclass(frozen=True, slots=True, kw_only=True)
class GateRequirements:
    """What a protocol asks before dosing. Build esketamine ones with :func:`esketamine_gate_requirements`."""

    screening_max_age_days: int  # not in reference: each protocol must set it
    rems: Requirement | None = None
    food_fast_hours: Requirement | None = None
    liquids_fast_minutes: Requirement | None = None
    nasal_pretreatment_lead_minutes: Requirement | None = None
    escort: Requirement | None = PRACTICE_ESCORT
    pregnancy_test: Requirement | None = None  # value = the interval in days (None = any age)
    pregnancy_test_scope: PregnancyTestScope = PregnancyTestScope.COURSE
    consent_max_age: Requirement | None = None  # value = days a consent without an expiry date lasts
    predose_bp_limit: BpLimit | None = CLINIC_PREDOSE_BP
    required_scales: tuple[str, ...] = ()


def esketamine_gate_requirements(
    *,
    screening_max_age_days: int,
    required_scales: tuple[str, ...] = (),
    pregnancy_test: Requirement | None = None,
    pregnancy_test_scope: PregnancyTestScope = PregnancyTestScope.COURSE,
    consent_max_age: Requirement | None = None,
) -> GateRequirements:
    """The label/REMS pre-dose rules for esketamine nasal spray (clinical.md §2.2–§2.4)."""
    return GateRequirements(
        screening_max_age_days=screening_max_age_days,
        rems=REMS_REQUIREMENT,
        food_fast_hours=LABEL_FOOD_FAST_H,
        liquids_fast_minutes=LABEL_LIQUIDS_FAST_MIN,
        nasal_pretreatment_lead_minutes=LABEL_NASAL_LEAD_MIN,
        escort=LABEL_ESCORT,
        pregnancy_test=pregnancy_test,
        pregnancy_test_scope=pregnancy_test_scope,
        consent_max_age=consent_max_age,
        predose_bp_limit=LABEL_PREDOSE_BP,
        required_scales=required_scales,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleStatus:
    """A pre-session rating scale as the app found it (e.g. PHQ-9 with item 9 > 0 → flagged)."""

    code: str  # the scale's key in the protocol (e.g. "ymrs", "qids_sr16")
    name: str
    completed: bool
    flagged: bool = False
    flag_reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolCheck:
    """Any further yes/no requirement of the protocol (e.g. 'ECG on file'); becomes its own gate item."""

    key: str
    title: str
    met: bool
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GateContext:
    """Facts about this session, loaded by the app. ``None`` means not recorded."""

    today: date
    consent_current: bool
    consent_signed_on: date | None
    screening_signed_on: date | None
    consent_expires_on: date | None = None
    # The consent app's answer for the session's drug and route (clinical/consent.consent_standing): when
    # given, the consent item shows it — the form version, signing date and age, expiry or withdrawal.
    consent: ConsentStanding | None = None
    rems_patient_enrolled: bool | None = None
    rems_setting_certified: bool | None = None
    rems_setting_record: str = ""  # the site's recorded certification in words, shown with the item
    hours_since_food: float | None = None
    minutes_since_liquids: float | None = None
    nasal_steroid_or_decongestant_today: bool | None = None
    minutes_since_nasal_steroid_or_decongestant: float | None = None
    escort_confirmed: bool = False
    ride_home_confirmed: bool = False
    pregnancy_test: PregnancyTest | None = None
    pregnancy_test_on: date | None = None
    childbearing: ChildbearingRecord | None = None  # None: no intake
    course_started_on: date | None = None  # first dosed session of this session's course; None: this one
    baseline: VitalReading | None = None
    scales: Sequence[ScaleStatus] = ()
    suicidality_flags: Sequence[str] = ()  # any suicidality flag raised by a scale taken since the day before
    protocol_checks: Sequence[ProtocolCheck] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class GateItem:
    key: str
    title: str
    status: GateStatus
    reason: str
    source: str
    confirmed: bool
    overridable: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class GateOverride:
    """A prescriber's recorded decision to proceed despite ``item_key``."""

    item_key: str
    reason: str
    prescriber: str


def _item(
    key: GateItemKey | str,
    title: str,
    status: GateStatus,
    reason: str,
    source: str,
    confirmed: bool = True,
    overridable: bool = True,
) -> GateItem:
    return GateItem(
        key=str(key),
        title=title,
        status=status,
        reason=reason,
        source=source,
        confirmed=confirmed,
        overridable=overridable,
    )


_NA = GateStatus.NOT_APPLICABLE
_PASS = GateStatus.PASS
_FAIL = GateStatus.FAIL


def _ago(days: int) -> str:
    return {0: "today", 1: "1 day ago"}.get(days, f"{days} days ago")


def _consent(ctx: GateContext, req: GateRequirements) -> GateItem:
    """Consent is never overridable: dosing without it is not a clinical judgement call. The app passes
    the consent app's answer (``ctx.consent``: the signed form version for the drug and route, its age,
    expiry or withdrawal); the dates below serve callers that only know them."""
    key, title, src, confirmed = GateItemKey.CONSENT, "Consent", CONSENT_SOURCE, True
    if ctx.consent is not None:
        standing = ctx.consent
        status = _PASS if standing.current else _FAIL
        return _item(
            key, title, status, standing.reason, standing.source, standing.confirmed, overridable=False
        )
    signed = ctx.consent_signed_on
    if not ctx.consent_current:
        when = f" (last signed {signed.isoformat()}, {_ago((ctx.today - signed).days)})" if signed else ""
        return _item(key, title, _FAIL, f"Consent is not current{when}", src, overridable=False)
    if signed is None:
        return _item(key, title, _FAIL, "Consent date not recorded", src, overridable=False)
    age = (ctx.today - signed).days
    if age < 0:
        return _item(
            key, title, _FAIL, f"Consent date {signed.isoformat()} is in the future", src, overridable=False
        )
    reason = f"Consent signed {signed.isoformat()} ({_ago(age)})"
    expires, rule = ctx.consent_expires_on, req.consent_max_age
    if expires is not None:
        left = (expires - ctx.today).days
        reason += f"; expires {expires.isoformat()} ({'today' if left == 0 else f'in {left} days'})"
    elif rule is not None and rule.value is not None:
        src, confirmed = f"{src}; {rule.source}", rule.confirmed
        limit = int(rule.value)
        if age > limit:
            reason = (
                f"Consent signed {signed.isoformat()} is {age} days old: the clinic renews consent every {limit} "
                "days — the patient signs a new consent before this session"
            )
            return _item(key, title, _FAIL, reason, src, confirmed, overridable=False)
        reason += f"; renewed every {limit} days"
    return _item(key, title, _PASS, reason, src, confirmed, overridable=False)


def _screening(ctx: GateContext, req: GateRequirements) -> GateItem:
    src = "protocol (screening validity period is not in the reference; set per protocol)"
    key, title, limit = GateItemKey.SCREENING, "Screening", req.screening_max_age_days
    signed = ctx.screening_signed_on
    if signed is None:
        return _item(key, title, _FAIL, "Screening not signed", src)
    age = (ctx.today - signed).days
    if age < 0:
        return _item(key, title, _FAIL, f"Screening date {signed.isoformat()} is in the future", src)
    # The validity period is a clinic default, not a reference fact: shown as unconfirmed.
    if age > limit:
        return _item(
            key,
            title,
            _FAIL,
            f"Screening signed {age} days ago: older than {limit} days, redo it",
            src,
            confirmed=False,
        )
    return _item(
        key, title, _PASS, f"Screening signed {age} days ago (valid {limit} days)", src, confirmed=False
    )


def _rems(ctx: GateContext, req: GateRequirements) -> list[GateItem]:
    rems = req.rems
    keys = (
        (GateItemKey.REMS_PATIENT_ENROLLED, "REMS: patient enrolled", ctx.rems_patient_enrolled, "Patient"),
        (
            GateItemKey.REMS_SETTING_CERTIFIED,
            "REMS: setting certified",
            ctx.rems_setting_certified,
            "Setting",
        ),
    )
    items = []
    for key, title, value, who in keys:
        if rems is None:
            items.append(_item(key, title, _NA, "Not an esketamine session", "protocol", overridable=False))
            continue
        status = _PASS if value else _FAIL
        word = {True: "is", False: "is not", None: "not recorded as"}[value]
        reason = f"{who} {word} {'enrolled' if who == 'Patient' else 'certified'} in the SPRAVATO REMS"
        if key is GateItemKey.REMS_SETTING_CERTIFIED and ctx.rems_setting_record:
            reason += f" ({ctx.rems_setting_record})"
        items.append(_item(key, title, status, reason, rems.source, rems.confirmed, overridable=False))
    return items


def _waited(
    key: GateItemKey, title: str, what: str, elapsed: float | None, req: Requirement | None, unit: str
) -> GateItem:
    if req is None or req.value is None:
        return _item(key, title, _NA, "Not required by this protocol", "protocol")
    need = req.value
    if elapsed is None:
        return _item(key, title, _FAIL, f"Time since {what} not recorded", req.source, req.confirmed)
    if elapsed >= need:
        reason = f"Last {what} {elapsed:g} {unit} ago (needs ≥{need:g} {unit})"
        return _item(key, title, _PASS, reason, req.source, req.confirmed)
    wait_min = math.ceil((need - elapsed) * (60 if unit == "h" else 1))
    reason = f"Last {what} {elapsed:g} {unit} ago: needs ≥{need:g} {unit} (wait {wait_min} more min)"
    return _item(key, title, _FAIL, reason, req.source, req.confirmed)


def _nasal(ctx: GateContext, req: GateRequirements) -> GateItem:
    key, title, rule = (
        GateItemKey.NASAL_PRETREATMENT,
        "Nasal corticosteroid/decongestant",
        req.nasal_pretreatment_lead_minutes,
    )
    if rule is None:
        return _item(key, title, _NA, "Not required by this protocol", "protocol")
    if ctx.nasal_steroid_or_decongestant_today is None:
        reason = "Not asked whether a nasal corticosteroid or decongestant was used today"
        return _item(key, title, _FAIL, reason, rule.source, rule.confirmed)
    if not ctx.nasal_steroid_or_decongestant_today:
        return _item(key, title, _NA, "None used today", rule.source, rule.confirmed)
    return _waited(
        key,
        title,
        "nasal corticosteroid/decongestant",
        ctx.minutes_since_nasal_steroid_or_decongestant,
        rule,
        "min",
    )


def _escort(ctx: GateContext, req: GateRequirements) -> GateItem:
    key, title, rule = GateItemKey.ESCORT, "Escort and ride home", req.escort
    if rule is None:
        return _item(key, title, _NA, "Not required by this protocol", "protocol")
    missing = [
        name
        for name, ok in (("escort", ctx.escort_confirmed), ("ride home", ctx.ride_home_confirmed))
        if not ok
    ]
    if missing:
        return _item(key, title, _FAIL, f"Not confirmed: {', '.join(missing)}", rule.source, rule.confirmed)
    return _item(key, title, _PASS, "Escort and ride home confirmed", rule.source, rule.confirmed)


def childbearing_text(record: ChildbearingRecord | None) -> str:
    if record is None:
        return "no intake records whether the patient can become pregnant"
    where = record.recorded or "the intake"
    if not record.signed:
        where += " (not signed by a prescriber yet)"
    said = {
        Answer.YES: "can become pregnant",
        Answer.NO: f"cannot become pregnant ({record.reason or 'no reason given'})",
        Answer.UNKNOWN: "whether the patient can become pregnant is not recorded",
    }[record.answer]
    return f"{where}: {said}"


def pregnancy_policy_text(limit: int, scope: PregnancyTestScope) -> str:
    if scope is PregnancyTestScope.SESSION:
        return f"a test taken within {limit} days before each session"
    return f"a test taken within {limit} days before the first session of the course"


def _pregnancy(ctx: GateContext, req: GateRequirements) -> GateItem:
    key, title, rule = GateItemKey.PREGNANCY_TEST, "Pregnancy test", req.pregnancy_test
    if rule is None:
        return _item(key, title, _NA, "Not required by this protocol", "protocol")
    src, confirmed = f"{rule.source}; {PREGNANCY_SOURCE}", rule.confirmed
    result, tested, record = ctx.pregnancy_test, ctx.pregnancy_test_on, ctx.childbearing
    if result is PregnancyTest.POSITIVE:
        when = f" ({tested.isoformat()})" if tested else ""
        reason = f"Pregnancy test positive{when}: not recommended in pregnancy — a prescriber decides"
        return _item(key, title, _FAIL, reason, src, confirmed)
    if record is not None and record.answer is Answer.NO and record.signed:
        return _item(key, title, _NA, f"Not needed: {childbearing_text(record)}", src, confirmed)
    if result is PregnancyTest.NOT_INDICATED:
        reason = (
            "“Not indicated” needs the intake, signed by a prescriber, to record that the patient cannot become "
            f"pregnant — {childbearing_text(record)}; record a test result"
        )
        return _item(key, title, _FAIL, reason, src, confirmed)
    if result is None or tested is None:
        reason = f"No pregnancy test recorded ({childbearing_text(record)})"
        return _item(key, title, _FAIL, reason, src, confirmed)
    age = (ctx.today - tested).days
    if age < 0:
        return _item(
            key, title, _FAIL, f"Pregnancy test date {tested.isoformat()} is in the future", src, confirmed
        )
    if rule.value is None:
        reason = f"Pregnancy test negative, {tested.isoformat()} ({_ago(age)})"
        return _item(key, title, _PASS, reason, src, confirmed)
    limit, scope = int(rule.value), req.pregnancy_test_scope
    started = ctx.course_started_on
    by_course = scope is PregnancyTestScope.COURSE and started is not None and started < ctx.today
    anchor = started if by_course and started is not None else ctx.today
    earliest = anchor - timedelta(days=limit)
    policy = pregnancy_policy_text(limit, scope)
    if scope is PregnancyTestScope.COURSE:
        policy += f" (first session {anchor.isoformat()})" if by_course else " (this is the first session)"
    if tested < earliest:
        reason = (
            f"Pregnancy test {tested.isoformat()} is {age} days old: the clinic accepts {policy}, so taken on or "
            f"after {earliest.isoformat()}"
        )
        return _item(key, title, _FAIL, reason, src, confirmed)
    reason = f"Pregnancy test negative, {tested.isoformat()} ({_ago(age)}); accepted: {policy}"
    return _item(key, title, _PASS, reason, src, confirmed)


def _baseline(ctx: GateContext, req: GateRequirements, rules: Mapping[AlertCode, AlertRule]) -> GateItem:
    key, title = GateItemKey.BASELINE_VITALS, "Pre-dose vitals"
    limit = req.predose_bp_limit
    src = limit.source if limit else "clinical.md §2.3, §7.1 (pre-dose reading)"
    confirmed = limit.confirmed if limit else True
    base = ctx.baseline
    if base is None or base.sbp_mmhg is None or base.dbp_mmhg is None:
        return _item(key, title, _FAIL, "No pre-dose blood pressure recorded", src, confirmed)
    problems: list[str] = []
    status = _PASS
    stopped = (
        limit is not None
        and limit.stop_sbp_mmhg is not None
        and limit.stop_dbp_mmhg is not None
        and (base.sbp_mmhg >= limit.stop_sbp_mmhg or base.dbp_mmhg >= limit.stop_dbp_mmhg)
    )
    if limit is not None and stopped:
        status = _FAIL
        problems.append(
            f"BP {base.bp_text} is at or above {limit.stop_sbp_mmhg}/{limit.stop_dbp_mmhg}: do not dose; "
            "recheck, and a prescriber decides whether to treat today"
        )
        src = f"{src}; {limit.stop_source}"
        confirmed = confirmed and limit.stop_confirmed
    elif limit is not None and (base.sbp_mmhg > limit.sbp_mmhg or base.dbp_mmhg > limit.dbp_mmhg):
        status = limit.status_above
        problems.append(
            f"BP {base.bp_text} is above the pre-dose limit {limit.sbp_mmhg}/{limit.dbp_mmhg}: "
            "the prescriber must record a decision to treat or delay"
        )
    alerts = evaluate_reading(
        reading=base, baseline=None, dose_started_at=None, session_key="gate", rules=rules
    )
    if alerts:
        problems.extend(a.message for a in alerts)
        src = "; ".join([src, *(a.source for a in alerts)])
        confirmed = confirmed and all(a.confirmed for a in alerts)
        if status is _PASS:
            status = GateStatus.NEEDS_DECISION
    if problems:
        return _item(key, title, status, "; ".join(problems), src, confirmed)
    within = (
        f" (limit {limit.sbp_mmhg}/{limit.dbp_mmhg})" if limit else " (protocol sets no pre-dose BP limit)"
    )
    return _item(key, title, _PASS, f"BP {base.bp_text}{within}", src, confirmed)


def _scales(ctx: GateContext, req: GateRequirements) -> GateItem:
    key, title, src = GateItemKey.PRE_SESSION_SCALES, "Pre-session scales", "protocol; clinical.md §8"
    if not req.required_scales and not ctx.scales:
        return _item(key, title, _NA, "No pre-session scales in this protocol", src)
    done = {s.code for s in ctx.scales if s.completed}
    names = {s.code: s.name for s in ctx.scales}
    missing = [names.get(code, code) for code in req.required_scales if code not in done]
    if missing:
        return _item(key, title, _FAIL, f"Not completed: {', '.join(missing)}", src)
    flagged = [f"{s.name}: {s.flag_reason or 'flagged'}" for s in ctx.scales if s.flagged]
    if flagged:
        return _item(key, title, GateStatus.NEEDS_DECISION, "Flagged for review — " + "; ".join(flagged), src)
    return _item(key, title, _PASS, "Completed, nothing flagged", src)


SUICIDALITY_SOURCE: Final = (
    "clinical.md §8: PHQ-9 item 9 >0 needs immediate follow-up regardless of total; QIDS-SR16 item 12, "
    "MADRS item 10 and the C-SSRS screener ask about suicidal thoughts"
)


def _suicidality(ctx: GateContext) -> GateItem:
    """Any suicidality flag from a scale taken since the day before always shows, whatever the protocol
    requires: a prescriber reviews it and decides before dosing."""
    key, title = GateItemKey.SUICIDALITY, "Suicidality flags"
    if not ctx.suicidality_flags:
        return _item(key, title, _PASS, "No suicidality flag on a scale since yesterday", SUICIDALITY_SOURCE)
    return _item(
        key,
        title,
        GateStatus.NEEDS_DECISION,
        "Review before dosing — " + "; ".join(ctx.suicidality_flags),
        SUICIDALITY_SOURCE,
    )


def evaluate_gate(
    *,
    context: GateContext,
    requirements: GateRequirements,
    alert_rules: Mapping[AlertCode, AlertRule] = DEFAULT_ALERT_RULES,
) -> list[GateItem]:
    """Every gate item for this session, in checklist order."""
    ctx, req = context, requirements
    items = [_consent(ctx, req), _screening(ctx, req), *_rems(ctx, req)]
    items.append(_waited(GateItemKey.FOOD, "No food", "food", ctx.hours_since_food, req.food_fast_hours, "h"))
    items.append(
        _waited(
            GateItemKey.LIQUIDS,
            "No liquids",
            "liquids",
            ctx.minutes_since_liquids,
            req.liquids_fast_minutes,
            "min",
        )
    )
    items += [_nasal(ctx, req), _escort(ctx, req), _pregnancy(ctx, req), _baseline(ctx, req, alert_rules)]
    items.append(_scales(ctx, req))
    items.append(_suicidality(ctx))
    for check in ctx.protocol_checks:
        status = _PASS if check.met else _FAIL
        items.append(
            _item(
                f"protocol:{check.key}", check.title, status, "Met" if check.met else "Not met", check.source
            )
        )
    return items


def _covered(item: GateItem, overrides: Sequence[GateOverride]) -> bool:
    if item.status in (_PASS, _NA):
        return True
    return item.overridable and any(
        o.item_key == item.key and o.reason.strip() and o.prescriber.strip() for o in overrides
    )


def blocking_items(*, items: Sequence[GateItem], overrides: Sequence[GateOverride] = ()) -> list[GateItem]:
    """Items that keep the gate closed: not passed, not applicable, nor validly overridden."""
    return [item for item in items if not _covered(item, overrides)]


def gate_open(*, items: Sequence[GateItem], overrides: Sequence[GateOverride] = ()) -> bool:
    """True only when every item passes (or does not apply) or has a prescriber override with a reason."""
    return not blocking_items(items=items, overrides=overrides)
