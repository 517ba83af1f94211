"""The pre-dose gate (clinical/gate.py): evaluate, store, override.

The gate reads from the record: the consent app's answer for the session's drug and route
(``consent.services.standing``: the signed form version, its age, expiry or withdrawal), the signed
screening and the intake's childbearing potential (assessment app), and the date of the first dosed session
of the session's course (``course_started_on``) for the pregnancy-test interval, which is the clinic's
setting (``KETACLINIC_PREGNANCY_TEST_DAYS``/``_BEFORE``, default within 7 days before the first session of a
course: clinical.md §11, unconfirmed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import User
from ketaclinic.accounts.site_identifiers import gate_certification
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.chairside.models import GateCheck, Status, TreatmentSession
from ketaclinic.chairside.services import (
    SessionError,
    SessionInputError,
    _bump,
    baseline_reading,
    protocol_of,
    transition,
)
from ketaclinic.clinical import gate as gate_rules
from ketaclinic.clinical.screening_model import Answer
from ketaclinic.consent import services as consents
from ketaclinic.core.access import PRESCRIBER

# --- the pre-dose gate ----------------------------------------------------------------------------------


# How long a signed screening stays valid is not in the reference: a configurable default, shown as such.
SCREENING_VALID_DAYS_DEFAULT = 180


def screening_signed_on(session: TreatmentSession) -> date | None:
    """The date of the patient's signed, current screening for this drug (assessment app), if any."""
    try:
        from ketaclinic.assessment import services as assessment
    except ImportError:  # pragma: no cover - the assessment app is always installed
        return None
    finder = getattr(assessment, "valid_screening_signed_on", None)
    if finder is None:
        return None
    result = finder(patient=session.patient, drug=session.drug)
    return result if isinstance(result, date) else None


def instrument_code(scale_key: str) -> str:
    """A protocol's scale key ("qids_sr16") as the rating-scale code ("qids-sr16")."""
    return scale_key.replace("_", "-")


def pregnancy_test_policy() -> tuple[gate_rules.Requirement, gate_rules.PregnancyTestScope]:
    """The clinic's pregnancy-test interval (settings), with its source for the gate item."""
    days = settings.KETACLINIC_PREGNANCY_TEST_DAYS
    scope = gate_rules.PregnancyTestScope(settings.KETACLINIC_PREGNANCY_TEST_BEFORE)
    when = (
        "before each session"
        if scope is gate_rules.PregnancyTestScope.SESSION
        else "before the first session of a course"
    )
    source = (
        f"clinic policy: a test within {days} days {when} (clinical.md §11 sets no interval; default within 7 "
        "days before the first session of a course, clinic default, unconfirmed)"
    )
    return gate_rules.Requirement(value=days, source=source, confirmed=False), scope


def consent_renewal() -> gate_rules.Requirement:
    """How long a consent lasts (``KETACLINIC_CONSENT_VALID_DAYS``, the consent app's setting)."""
    days = settings.KETACLINIC_CONSENT_VALID_DAYS
    return gate_rules.Requirement(
        value=days,
        source=f"clinic policy: a consent lasts {days} days (no period in the reference; clinic default, "
        "unconfirmed)",
        confirmed=False,
    )


def gate_requirements(session: TreatmentSession) -> gate_rules.GateRequirements:
    protocol = protocol_of(session)
    required_scales = tuple(s.scale for s in protocol.scales if _every_session(s.timing))
    policy, scope = pregnancy_test_policy()
    pregnancy = policy if protocol.pregnancy_test_required else None
    if session.drug == "esketamine":
        return gate_rules.esketamine_gate_requirements(
            screening_max_age_days=SCREENING_VALID_DAYS_DEFAULT,
            required_scales=required_scales,
            pregnancy_test=pregnancy,
            pregnancy_test_scope=scope,
            consent_max_age=consent_renewal(),
        )
    return gate_rules.GateRequirements(
        screening_max_age_days=SCREENING_VALID_DAYS_DEFAULT,
        pregnancy_test=pregnancy,
        pregnancy_test_scope=scope,
        consent_max_age=consent_renewal(),
        required_scales=required_scales,
    )


def course_started_on(session: TreatmentSession) -> date | None:
    """The local date of the first dosed session of this session's course, or None when this session is
    the course's first (or starts it: the pregnancy-test interval then counts back from today).

    A session carrying out a planned course session belongs to that plan's course: the earliest dosed
    treatment session of the plan. Outside a plan, sessions are numbered per patient and protocol
    (``session_number``): a session numbered 1 starts a course, so the latest dosed session number 1 of
    the same patient and protocol (outside a plan) before this one starts this session's course."""
    peers = TreatmentSession.objects.filter(patient=session.patient, dose_started_at__isnull=False).exclude(
        pk=session.pk
    )
    planned = session.planned_session  # a one-to-one key: set, the course session exists
    if planned is not None:
        first = peers.filter(planned_session__plan_id=planned.plan_id).order_by("dose_started_at").first()
    elif (session.session_number or 1) > 1:
        first = (
            peers.filter(protocol_id=session.protocol_id, session_number=1, planned_session_id__isnull=True)
            .order_by("-dose_started_at")
            .first()
        )
    else:
        return None
    if first is None or first.dose_started_at is None:
        return None
    return timezone.localdate(first.dose_started_at, session.site.zone)


def pregnancy_for_form(session: TreatmentSession) -> dict[str, Any]:
    """What the gate form says about the pregnancy test before it is checked: whether the protocol asks for
    one, the clinic's interval, what the intake records, and the last test recorded at a gate."""
    from ketaclinic.assessment.services import childbearing_record

    policy, scope = pregnancy_test_policy()
    record = childbearing_record(session.patient)
    last = last_pregnancy_test(session)
    today = timezone.localdate(timezone.now(), session.site.zone)
    if last is not None:
        last["age_days"] = (today - date.fromisoformat(last["on"])).days
    return {
        "required": protocol_of(session).pregnancy_test_required,
        "policy": gate_rules.pregnancy_policy_text(int(policy.value or 0), scope),
        "source": policy.source,
        "not_needed": record is not None and record.answer is Answer.NO and record.signed,
        "childbearing": gate_rules.childbearing_text(record),
        "last": last,
    }


def last_pregnancy_test(session: TreatmentSession) -> dict[str, Any] | None:
    """The patient's latest pregnancy test recorded at a gate (any session), to offer it again: the gate
    still judges its age against the clinic's interval."""
    checks = GateCheck.objects.filter(session__patient=session.patient).order_by("-evaluated_at", "-pk")
    for check in checks.only("answers", "evaluated_at")[:50]:
        result, on = check.answers.get("pregnancy_test"), check.answers.get("pregnancy_test_on")
        if result in ("negative", "positive") and on:
            return {"result": result, "on": on}
    return None


def _every_session(timing: Sequence[Any]) -> bool:
    return any(str(t) == "every_session" for t in timing)


GATE_ANSWER_FIELDS = (
    "rems_patient_enrolled",
    "rems_setting_certified",
    "hours_since_food",
    "minutes_since_liquids",
    "nasal_steroid_or_decongestant_today",
    "minutes_since_nasal_steroid_or_decongestant",
    "escort_confirmed",
    "ride_home_confirmed",
    "pregnancy_test",
    "pregnancy_test_on",
)


#: Scales count for "before this session" when taken since the day before (the pre-session link is sent the
#: day before the session; clinic default, unconfirmed).
SCALE_WINDOW = timedelta(hours=36)
#: Flags on a required pre-session scale that need a prescriber before dosing (not screening cut-offs).
SAFETY_FLAG_KINDS = frozenset({"suicidality", "mania", "sedation", "dissociation"})


def _session_scales(
    session: TreatmentSession, required: Sequence[str], now: datetime
) -> list[gate_rules.ScaleStatus]:
    from ketaclinic.clinical.instruments import INSTRUMENTS
    from ketaclinic.measures.models import ScaleAdministration

    statuses = []
    for key in required:
        code = instrument_code(key)
        instrument = INSTRUMENTS.get(code)
        latest = (
            ScaleAdministration.objects.filter(
                patient=session.patient, instrument=code, administered_at__gte=now - SCALE_WINDOW
            )
            .order_by("-administered_at")
            .first()
        )
        safety = [f for f in (latest.flags if latest else []) if f.get("kind") in SAFETY_FLAG_KINDS]
        flagged = bool(safety)
        statuses.append(
            gate_rules.ScaleStatus(
                code=key,
                name=instrument.name if instrument else key,
                completed=latest is not None,
                flagged=flagged,
                flag_reason="; ".join(str(f.get("rule", "")) for f in latest.flags)
                if latest and flagged
                else "",
            )
        )
    return statuses


def _suicidality_flags(session: TreatmentSession, now: datetime) -> list[str]:
    """Every suicidality flag on any scale the patient took since the day before (clinical.md §8), whatever
    the protocol requires: PHQ-9 item 9, QIDS-SR16 item 12, MADRS item 10, the C-SSRS screener. Stored
    answers are re-scored too, so a result saved under an older scale definition still shows its flag."""
    from ketaclinic.clinical.instruments import SUICIDALITY_INSTRUMENTS, suicidality_flags
    from ketaclinic.measures.models import ScaleAdministration

    found: list[str] = []
    recent = ScaleAdministration.objects.filter(
        patient=session.patient,
        instrument__in=SUICIDALITY_INSTRUMENTS,
        administered_at__gte=now - SCALE_WINDOW,
        administered_at__lte=now,
    ).order_by("-administered_at")
    for row in recent:
        when = timezone.localtime(row.administered_at, session.site.zone)
        for flag in suicidality_flags(row.instrument, row.flags, answers=row.answers):
            found.append(f"{flag.reason} ({when:%a %H:%M})")
    return found


def evaluate_gate(
    *,
    user: User,
    session: TreatmentSession,
    answers: dict[str, Any],
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> GateCheck:
    """Evaluate every gate item from the answers given now plus what the record holds; store the verdict.
    ``now`` is for the demo loader replaying a morning; everyone else evaluates at the current time."""
    now = now or timezone.now()
    if session.status not in (Status.CHECKED_IN, Status.PRE_DOSE):
        raise SessionError("The pre-dose gate is checked after check-in and before dosing.")
    clean = {k: v for k, v in answers.items() if k in GATE_ANSWER_FIELDS}
    if clean.get("pregnancy_test") and clean["pregnancy_test"] not in {
        p.value for p in gate_rules.PregnancyTest
    }:
        choices = ", ".join(p.value for p in gate_rules.PregnancyTest)
        raise SessionInputError({"pregnancy_test": f"{clean['pregnancy_test']!r} is not one of {choices}"})
    today = timezone.localdate(now, session.site.zone)
    consent, _ = consents.standing(session.patient, session.drug, session.route, today)
    requirements = gate_requirements(session)
    pregnancy = clean.get("pregnancy_test")
    from ketaclinic.assessment.services import childbearing_record

    # The site's recorded REMS certification answers "setting certified" unless the chair says no.
    certification = gate_certification(session.site, clean.get("rems_setting_certified"))
    context = gate_rules.GateContext(
        today=today,
        consent_current=consent.current,
        consent_signed_on=None,
        consent=consent,
        screening_signed_on=screening_signed_on(session),
        childbearing=childbearing_record(session.patient),
        course_started_on=course_started_on(session),
        rems_patient_enrolled=clean.get("rems_patient_enrolled"),
        rems_setting_certified=certification.certified,
        rems_setting_record=certification.note,
        hours_since_food=clean.get("hours_since_food"),
        minutes_since_liquids=clean.get("minutes_since_liquids"),
        nasal_steroid_or_decongestant_today=clean.get("nasal_steroid_or_decongestant_today"),
        minutes_since_nasal_steroid_or_decongestant=clean.get("minutes_since_nasal_steroid_or_decongestant"),
        escort_confirmed=bool(clean.get("escort_confirmed")),
        ride_home_confirmed=bool(clean.get("ride_home_confirmed")),
        pregnancy_test=gate_rules.PregnancyTest(pregnancy) if pregnancy else None,
        pregnancy_test_on=clean.get("pregnancy_test_on"),
        baseline=baseline_reading(session),
        scales=_session_scales(session, requirements.required_scales, now),
        suicidality_flags=_suicidality_flags(session, now),
    )
    items = gate_rules.evaluate_gate(context=context, requirements=requirements)
    previous = session.gate_checks.first()
    overrides = list(previous.overrides) if previous else []
    passed = gate_rules.gate_open(items=items, overrides=_overrides(overrides))
    check = GateCheck.objects.create(
        organization_id=session.organization_id,
        session=session,
        answers={k: (v.isoformat() if isinstance(v, date) else v) for k, v in clean.items()},
        items=[_item_dict(i) for i in items],
        overrides=overrides,
        passed=passed,
        evaluated_at=now,
        by=user,
    )
    if session.status == Status.CHECKED_IN:
        transition(user=user, session=session, to=Status.PRE_DOSE, request=request, at=now)
    _mark_gate(session, passed, now)
    audit.record(
        user=user,
        action=Action.ADD,
        category="pre-dose-gate",
        patient=session.patient,
        object_type="GateCheck",
        object_id=check.pk,
        after={"passed": passed, "blocking": [i["key"] for i in check.items if i["status"] != "pass"]},
        request=request,
    )
    return check


def _item_dict(item: gate_rules.GateItem) -> dict[str, Any]:
    return {
        "key": str(item.key),
        "title": item.title,
        "status": str(item.status),
        "reason": item.reason,
        "source": item.source,
        "confirmed": item.confirmed,
        "overridable": item.overridable,
    }


def _overrides(rows: Sequence[dict[str, Any]]) -> list[gate_rules.GateOverride]:
    return [
        gate_rules.GateOverride(item_key=o["item_key"], reason=o["reason"], prescriber=o["prescriber"])
        for o in rows
    ]


def _mark_gate(session: TreatmentSession, passed: bool, now: datetime) -> None:
    """Remember when the gate opened (no dose may be dated earlier); a closed gate forgets it."""
    if passed and session.gate_opened_at is None:
        _bump(session, None, gate_opened_at=now)
    elif not passed and session.gate_opened_at is not None:
        _bump(session, None, gate_opened_at=None)


def latest_gate_open(session: TreatmentSession) -> bool:
    check = session.gate_checks.first()
    return bool(check and check.passed)


def override_gate_item(
    *,
    user: User,
    session: TreatmentSession,
    item_key: str,
    reason: str,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> GateCheck:
    """A prescriber's recorded decision to proceed despite one gate item (audited with the reason).
    ``now`` is for the demo loader replaying a morning."""
    if user.role != PRESCRIBER:
        raise SessionError("Only a prescriber can override a pre-dose gate item.")
    check = session.gate_checks.first()
    if check is None:
        raise SessionError("Check the gate first.")
    item = next((i for i in check.items if i["key"] == item_key), None)
    if item is None:
        raise SessionInputError({"item_key": f"{item_key!r} is not a gate item of this session"})
    if not item["overridable"]:
        raise SessionError(f"{item['title']} cannot be overridden: {item['reason']}")
    if len(reason.strip()) < 10:
        raise SessionInputError(
            {"reason": "write the clinical reason for proceeding (at least 10 characters)"}
        )
    overrides = [o for o in check.overrides if o["item_key"] != item_key]
    overrides.append(
        {
            "item_key": item_key,
            "reason": reason.strip(),
            "prescriber": user.display_name,
            "prescriber_id": user.pk,
            "at": (now or timezone.now()).isoformat(),
        }
    )
    items = [
        gate_rules.GateItem(
            key=i["key"],
            title=i["title"],
            status=gate_rules.GateStatus(i["status"]),
            reason=i["reason"],
            source=i["source"],
            confirmed=i["confirmed"],
            overridable=i["overridable"],
        )
        for i in check.items
    ]
    passed = gate_rules.gate_open(items=items, overrides=_overrides(overrides))
    now = now or timezone.now()
    new = GateCheck.objects.create(
        organization_id=session.organization_id,
        session=session,
        answers=check.answers,
        items=check.items,
        overrides=overrides,
        passed=passed,
        evaluated_at=now,
        by=user,
    )
    _mark_gate(session, passed, now)
    audit.record(
        user=user,
        action=Action.CHANGE,
        category="pre-dose-gate-override",
        patient=session.patient,
        object_type="GateCheck",
        object_id=new.pk,
        before={"item": item_key, "status": item["status"]},
        after={"item": item_key, "override_reason": reason.strip(), "gate_open": passed},
        request=request,
    )
    return new
