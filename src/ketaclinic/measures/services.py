"""Rating-scale use cases: record an administration, self-report links, safety routing, trajectories.

Scoring is done by the pure engine in ``ketaclinic.clinical.instruments`` (clinical.md §0, §8); this module
stores what it computed, audits every read and write, and routes safety flags to clinicians.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import User
from ketaclinic.accounts.services import system_user
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.clinical.instruments import INSTRUMENTS, InstrumentInputError, compare, score
from ketaclinic.core.access import CLINICIANS
from ketaclinic.core.errors import DomainError
from ketaclinic.core.models import Notification
from ketaclinic.core.plausible import time_problem
from ketaclinic.measures.models import (
    EnteredBy,
    LinkAttempt,
    SafetyAlert,
    ScaleAdministration,
    SelfReportLink,
)
from ketaclinic.patients.models import Patient

CATEGORY = "rating-scales"
# Only instruments whose published wording and answer labels are stored can be sent to patients.
SELF_REPORT_INSTRUMENTS = tuple(
    code
    for code, instrument in INSTRUMENTS.items()
    if instrument.items and all(item.text and item.options for item in instrument.items)
)
ALERT_KINDS = ("suicidality", "mania")


class MeasuresError(DomainError):
    status = 409


class ScaleInputError(MeasuresError):
    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


class LinkUnavailable(MeasuresError):
    """Expired, used, unknown or locked: the patient sees one neutral message (no hint which)."""

    status = 410


class RateLimited(MeasuresError):
    status = 429


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def record_administration(
    *,
    user: User,
    patient: Patient,
    instrument: str,
    answers: dict[str, Any],
    entered_by_kind: str = EnteredBy.CLINICIAN,
    administered_at: datetime | None = None,
    session_id: Any = None,
    link: SelfReportLink | None = None,
    request: HttpRequest | None = None,
    client: str = "",
) -> ScaleAdministration:
    """Score and store one administration; raise safety alerts for its flags. Nothing is stored on bad input."""
    if instrument not in INSTRUMENTS:
        raise ScaleInputError({"instrument": f"{instrument!r} is not one of {', '.join(INSTRUMENTS)}"})
    try:
        result = score(instrument, answers)
    except InstrumentInputError as exc:
        raise ScaleInputError(dict(exc.errors)) from None
    when = administered_at or timezone.now()
    if why := time_problem(when, born=patient.date_of_birth):
        raise ScaleInputError({"administered_at": why})
    if session_id is not None:
        from ketaclinic.chairside.models import TreatmentSession

        if not TreatmentSession.objects.filter(pk=session_id, patient=patient).exists():
            raise ScaleInputError({"session_id": "is not a treatment session of this patient"})
    data = result.to_dict()
    band = data.get("band")
    administration = ScaleAdministration.objects.create(
        organization_id=patient.organization_id,
        patient=patient,
        instrument=instrument,
        instrument_version=result.version,
        answers={k: int(v) for k, v in answers.items()},
        total=float(result.total) if result.total is not None else None,
        band=band.get("label", "") if isinstance(band, dict) else "",
        subscores=data.get("subscores") or {},
        flags=data.get("flags") or [],
        entered_by_kind=entered_by_kind,
        entered_by=user,
        administered_at=when,
        session_id=session_id,
        self_report_link=link,
    )
    audit.record(
        user=user,
        action=Action.ADD,
        category=CATEGORY,
        patient=patient,
        object_type="ScaleAdministration",
        object_id=administration.pk,
        after={
            "instrument": instrument,
            "answers": administration.answers,
            "total": administration.total,
            "flags": [f["code"] for f in administration.flags],
        },
        request=request,
        client=client,
    )
    _raise_alerts(administration)
    return administration


def alert_recipients(patient: Patient) -> list[User]:
    """The patient's prescriber and the clinicians on duty at the patient's site.

    Nobody on duty and no prescriber: every active clinician who works at the site, so a flag never
    goes unseen.
    """
    people: dict[int, User] = {}
    if patient.prescriber_id and patient.prescriber and patient.prescriber.is_active:
        people[patient.prescriber.pk] = patient.prescriber
    # Only clinicians who work at the site count as on duty there (a stale or forged on-duty site elsewhere
    # brings no alerts; issue 15 M1).
    on_duty = User.objects.filter(
        Q(sites=patient.site) | Q(all_sites=True) | Q(role="admin"),
        on_duty_site=patient.site,
        role__in=CLINICIANS,
        is_active=True,
        organization_id=patient.organization_id,
    ).distinct()
    for user in on_duty:
        people[user.pk] = user
    if not people:
        fallback = User.objects.filter(
            Q(sites=patient.site) | Q(all_sites=True),
            role__in=CLINICIANS,
            is_active=True,
            organization_id=patient.organization_id,
        ).distinct()
        for user in fallback:
            people[user.pk] = user
    return list(people.values())


def _raise_alerts(administration: ScaleAdministration) -> None:
    patient = administration.patient
    for flag in administration.flags:
        if flag.get("kind") not in ALERT_KINDS:
            continue
        if flag.get("kind") == "mania" and not _may_be_bipolar(patient):
            continue  # the flag stays on the record; the alert is for bipolar patients (issue: rating scales)
        alert = SafetyAlert.objects.create(
            organization_id=administration.organization_id,
            patient=patient,
            administration=administration,
            kind=flag["kind"],
            rule_code=flag["code"],
            message=flag.get("text") or flag.get("rule", "")[:500],
            source=flag.get("source", "")[:300],
            raised_at=administration.administered_at,
        )
        recipients = alert_recipients(patient)
        alert.recipients.set(recipients)
        label = INSTRUMENTS[administration.instrument].name
        for person in recipients:
            Notification.objects.create(
                organization_id=administration.organization_id,
                recipient=person,
                kind=flag["kind"],
                message=f"{label} safety flag for a patient at {patient.site.name}: {flag.get('rule', '')}"[
                    :400
                ],
                link=f"/patients/{patient.pk}/",
            )


def _may_be_bipolar(patient: Patient) -> bool:
    """True unless the latest intake says the patient has no bipolar disorder (unknown counts as possible)."""
    from ketaclinic.assessment.services import latest_intake

    intake = latest_intake(patient)
    if intake is None:
        return True
    data = intake.data or {}
    bipolar = data.get("bipolar_disorder")
    diagnoses = data.get("diagnoses") or []
    indication = data.get("indication") or ""
    return bipolar != "no" or "bipolar" in str(indication) or any("bipolar" in str(d) for d in diagnoses)


def open_alerts_for(user: User) -> QuerySet[SafetyAlert]:
    return (
        SafetyAlert.objects.filter(organization_id=user.org_id, recipients=user, acknowledged_at__isnull=True)
        .select_related("patient", "administration")
        .order_by("-raised_at")
    )


def open_suicidality_alerts(*, organization_id: Any, site_ids: list[Any]) -> QuerySet[SafetyAlert]:
    """Unacknowledged suicidality alerts of the patients of these sites of one organization, whoever they
    were sent to: PHQ-9 item 9 > 0 "needs immediate follow-up regardless of total" (clinical.md §8), so
    every clinician of the site sees it (chairside.critical_alerts builds the banners on it). Not audited
    here: the caller records one read per page."""
    return (
        SafetyAlert.objects.filter(
            organization_id=organization_id,
            patient__organization_id=organization_id,
            patient__site_id__in=site_ids,
            kind="suicidality",
            acknowledged_at__isnull=True,
        )
        .select_related("patient__site", "administration")
        .order_by("raised_at", "pk")
    )


def escalate_safety_alerts(now: datetime | None = None) -> int:
    """Suicidality and mania alerts still unacknowledged ``KETACLINIC_SAFETY_ALERT_ESCALATE_HOURS`` after
    they were raised (a clinic default, unconfirmed: the reference asks for the same day but gives no
    interval) go to every active clinician who works at the patient's site as well: they become
    recipients (the alert shows on their home page until someone acknowledges it) and everyone on it is
    notified again. Once per alert; audited under the escalation service account. Run by the worker."""
    now = now or timezone.now()
    limit = now - timedelta(hours=settings.KETACLINIC_SAFETY_ALERT_ESCALATE_HOURS)
    count = 0
    pending = SafetyAlert.objects.filter(
        acknowledged_at__isnull=True, escalated_at__isnull=True, raised_at__lte=limit
    ).select_related("patient__site", "organization")
    for alert in pending:
        patient = alert.patient
        site_staff = User.objects.filter(
            Q(sites=patient.site) | Q(all_sites=True),
            role__in=CLINICIANS,
            is_active=True,
            organization_id=alert.organization_id,
        ).distinct()
        already = set(alert.recipients.values_list("pk", flat=True))
        added = [u for u in site_staff if u.pk not in already]
        alert.recipients.add(*added)
        hours = (now - alert.raised_at).total_seconds() / 3600
        for person in alert.recipients.all():
            Notification.objects.create(
                organization_id=alert.organization_id,
                recipient=person,
                kind=alert.kind,
                message=f"Still unacknowledged after {hours:.0f} h: {alert.kind} alert for a patient at "
                f"{patient.site.name}. Acknowledge it on your home page once someone has acted."[:400],
                link=f"/patients/{patient.pk}/",
            )
        alert.escalated_at = now
        alert.save(update_fields=["escalated_at"])
        audit.record(
            user=system_user("safety-escalation", alert.organization),
            action=Action.CHANGE,
            category=CATEGORY,
            patient=patient,
            object_type="SafetyAlert",
            object_id=alert.pk,
            after={"escalated_to": sorted(u.get_username() for u in added)},
            detail=f"unacknowledged {alert.kind} alert escalated after {hours:.1f} h",
        )
        count += 1
    return count


def acknowledge_alert(
    *, user: User, alert_id: int, note: str, request: HttpRequest | None = None
) -> SafetyAlert:
    note = note.strip()
    if len(note) < 5:
        raise ScaleInputError({"note": "write what you did (at least 5 characters)"})
    alert = (
        SafetyAlert.objects.filter(pk=alert_id, organization_id=user.org_id).select_related("patient").first()
    )
    # Whoever it was sent to, or a clinician who may see the patient (the home page and session banners
    # show a site's suicidality alerts to every clinician of the site); another site's alert is not found.
    from ketaclinic.patients.services import visible_patients

    if alert is None or not (
        alert.recipients.filter(pk=user.pk).exists()
        or visible_patients(user).filter(pk=alert.patient_id).exists()
    ):
        raise MeasuresError("No such alert.")
    if alert.acknowledged_at is not None:
        raise MeasuresError(
            f"Already acknowledged by {alert.acknowledged_by.display_name if alert.acknowledged_by else 'a colleague'}."
        )
    alert.acknowledged_by = user
    alert.acknowledged_at = timezone.now()
    alert.acknowledgement_note = note
    alert.save(update_fields=["acknowledged_by", "acknowledged_at", "acknowledgement_note"])
    Notification.objects.filter(
        recipient__in=alert.recipients.all(),
        kind=alert.kind,
        link=f"/patients/{alert.patient_id}/",
        read_at__isnull=True,
    ).update(read_at=timezone.now())
    audit.record(
        user=user,
        action=Action.CHANGE,
        category="safety-alert",
        patient=alert.patient,
        object_type="SafetyAlert",
        object_id=alert.pk,
        before={"acknowledged": False},
        after={"acknowledged": True, "note": note},
        request=request,
    )
    return alert


def administrations(
    *, user: User, patient: Patient, request: HttpRequest | None = None, instrument: str | None = None
) -> list[ScaleAdministration]:
    qs = ScaleAdministration.objects.filter(patient=patient, organization_id=user.org_id)
    if instrument:
        qs = qs.filter(instrument=instrument)
    found = list(qs.order_by("administered_at"))
    audit.record(
        user=user,
        action=Action.QUERY,
        category=CATEGORY,
        patient=patient,
        request=request,
        detail=f"{len(found)} administration(s)",
    )
    return found


# --- self-report links -----------------------------------------------------------------------------------


def create_link(
    *,
    user: User,
    patient: Patient,
    instruments: list[str],
    purpose: str = "",
    request: HttpRequest | None = None,
) -> tuple[SelfReportLink, str]:
    """A one-time link; the raw token is returned once (for the message to the patient) and never stored."""
    bad = [code for code in instruments if code not in SELF_REPORT_INSTRUMENTS]
    if not instruments or bad:
        allowed = ", ".join(SELF_REPORT_INSTRUMENTS)
        raise ScaleInputError(
            {"instruments": f"choose from {allowed}" + (f" (not {', '.join(bad)})" if bad else "")}
        )
    token = secrets.token_urlsafe(32)
    link = SelfReportLink.objects.create(
        organization_id=patient.organization_id,
        patient=patient,
        instruments=list(dict.fromkeys(instruments)),
        token_hash=_hash(token),
        created_by=user,
        purpose=purpose[:100],
        expires_at=timezone.now() + timedelta(hours=settings.KETACLINIC_SELF_REPORT_HOURS),
    )
    audit.record(
        user=user,
        action=Action.ADD,
        category="self-report-link",
        patient=patient,
        object_type="SelfReportLink",
        object_id=link.pk,
        after={"instruments": link.instruments},
        request=request,
    )
    return link, token


def email_link(*, link: SelfReportLink, token: str, base_url: str) -> bool:
    """Send the link to the patient's email on file. The message holds no clinical content."""
    from django.core.mail import send_mail
    from django.urls import reverse

    patient = link.patient
    if not patient.email:
        return False
    url = base_url.rstrip("/") + reverse("measures:self_report", args=[token])
    send_mail(
        subject=f"{patient.site.name}: a short questionnaire",
        message=(
            f"Hello {patient.given_name},\n\nYour care team at {patient.site.name} asks you to answer a short "
            f"questionnaire before your next visit:\n\n{url}\n\nThe link works once and expires "
            f"{link.expires_at:%Y-%m-%d %H:%M} UTC.\n"
        ),
        from_email=None,
        recipient_list=[patient.email],
    )
    return True


def send_pre_session_link(*, patient_id: Any, instruments: list[str], purpose: str) -> SelfReportLink | None:
    """What a plan schedules (e.g. PHQ-9 + GAD-7 the day before each session): create and email a link.

    Runs in the worker (job kind ``measures.pre_session_link``) as the patient's prescriber or, without one,
    the clinic's automation account. Returns None when the patient has no email address (audited).
    """
    patient = Patient.objects.select_related("site", "organization", "prescriber").get(pk=patient_id)
    sender = patient.prescriber or system_user("automation", patient.organization)
    link, token = create_link(user=sender, patient=patient, instruments=instruments, purpose=purpose)
    if not email_link(link=link, token=token, base_url=settings.KETACLINIC_PUBLIC_URL):
        audit.record(
            user=sender,
            action=Action.CHANGE,
            category="self-report-link",
            patient=patient,
            object_type="SelfReportLink",
            object_id=link.pk,
            detail="not sent: no email address on file",
        )
        return None
    return link


def _address_hash(address: str) -> str:
    return hashlib.sha256(f"{settings.SECRET_KEY}:{address}".encode()).hexdigest()


def _check_rate(address: str) -> None:
    since = timezone.now() - timedelta(hours=1)
    failures = LinkAttempt.objects.filter(address_hash=_address_hash(address), at__gte=since).count()
    if failures >= settings.KETACLINIC_SELF_REPORT_MAX_FAILURES:
        raise RateLimited("Too many attempts from this device. Please try again later or call the clinic.")


def _fail(address: str) -> LinkUnavailable:
    LinkAttempt.objects.create(address_hash=_address_hash(address), at=timezone.now())
    return LinkUnavailable("This link has expired or has already been used. Please contact the clinic.")


def open_link(token: str, *, address: str) -> SelfReportLink:
    """The usable link of ``token``. The limits are per link, not per shared address (issue 15, Low): a
    waiting room's patients share one address, so a valid, unused link always opens whatever that address
    has failed before; a link is locked after 10 invalid submissions. Failed opens are still counted per
    address and, past ``KETACLINIC_SELF_REPORT_MAX_FAILURES`` an hour, answered "too many attempts" — which
    slows a scan; finding a link by guessing is out of reach anyway (256-bit tokens)."""
    link = (
        SelfReportLink.objects.filter(token_hash=_hash(token))
        .select_related("patient", "patient__site")
        .first()
        if token
        else None
    )
    if (
        link is None
        or link.used_at is not None
        or link.expires_at <= timezone.now()
        or link.invalid_submissions >= 10
    ):
        _check_rate(address)
        raise _fail(address)
    return link


@dataclass(frozen=True)
class Submission:
    administrations: list[ScaleAdministration]
    flagged: bool
    crisis_resources: str


def submit_link(
    token: str, answers: dict[str, dict[str, Any]], *, address: str, request: HttpRequest | None = None
) -> Submission:
    """Score every instrument of the link; store all of them or none. The link is then used up."""
    link = open_link(token, address=address)
    errors: dict[str, str] = {}
    for code in link.instruments:
        try:
            score(code, answers.get(code, {}))
        except InstrumentInputError as exc:
            for key, reason in exc.errors.items():
                errors[f"{code}.{key}"] = reason
    if errors:
        SelfReportLink.objects.filter(pk=link.pk).update(invalid_submissions=link.invalid_submissions + 1)
        raise ScaleInputError(errors)
    claimed = SelfReportLink.objects.filter(pk=link.pk, used_at__isnull=True).update(used_at=timezone.now())
    if claimed != 1:
        raise _fail(address)
    patient = link.patient
    portal = system_user("patient-self-report", patient.organization)
    saved = [
        record_administration(
            user=portal,
            patient=patient,
            instrument=code,
            answers=answers[code],
            entered_by_kind=EnteredBy.PATIENT,
            link=link,
            request=request,
            client="self-report",
        )
        for code in link.instruments
    ]
    flagged = any(a.suicidality for a in saved)
    return Submission(administrations=saved, flagged=flagged, crisis_resources=patient.site.crisis_resources)


# --- trajectories --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrajectoryRow:
    administration: ScaleAdministration
    change_pct: float | None
    response: bool | None
    remission: bool | None


@dataclass(frozen=True)
class Trajectory:
    instrument: str
    name: str
    baseline: float | None
    response_threshold_pct: float | None
    response_line: float | None
    remission_threshold: float | None
    remission_label: str
    rows: list[TrajectoryRow]


def trajectory(instrument: str, items: list[ScaleAdministration]) -> Trajectory:
    """Baseline = the first administration; response and remission per the instrument's change rules."""
    definition = INSTRUMENTS[instrument]
    scored = [a for a in items if a.total is not None]
    baseline = scored[0].total if scored else None
    response_rule = next((r for r in definition.change_rules if r.code == "response" and r.threshold), None)
    remission_rule = next(
        (r for r in definition.change_rules if r.code == "remission" and r.threshold is not None), None
    )
    rows: list[TrajectoryRow] = []
    for a in scored:
        change_pct = response = remission = None
        if baseline is not None and a is not scored[0] and a.total is not None:
            result = compare(instrument, _num(baseline), _num(a.total))
            change_pct = result.percent_change
            response, remission = result.response, result.remission
        rows.append(TrajectoryRow(a, change_pct, response, remission))
    response_pct = float(response_rule.threshold) if response_rule and response_rule.threshold else None
    return Trajectory(
        instrument=instrument,
        name=definition.name,
        baseline=baseline,
        response_threshold_pct=response_pct,
        response_line=baseline * (1 - response_pct / 100) if baseline is not None and response_pct else None,
        remission_threshold=float(remission_rule.threshold)
        if remission_rule and remission_rule.threshold is not None
        else None,
        remission_label=remission_rule.label if remission_rule else "",
        rows=rows,
    )


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


# --- clinic outcomes (the Outcomes page) ---------------------------------------------------------------

# Depression and anxiety scales with response and remission rules (clinical.md §0); GAD-7's are the clinic's
# defaults, unconfirmed in the reference, and shown as such.
OUTCOME_INSTRUMENTS = ("phq9", "madrs", "qids-sr16", "gad7")
# PTSD and pain scales have no response/remission rule in the reference; their improvement rule is counted
# instead (clinical.md §8: PCL-5 change of 10–20 points clinically meaningful, the clinic's setting
# pcl5_meaningful_change_points, default 10; IMMPACT: ≥30 % NRS reduction moderately important).
IMPROVEMENT_INSTRUMENTS = {"pcl5": "pcl5_clinically_meaningful_improvement", "pain-nrs": "immpact_moderate"}
LONGEST_PERIOD_DAYS = 3 * 366


class OutcomesInputError(MeasuresError):
    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class OutcomesReport:
    """A period's treatment activity, outcomes and safety events for the patients the user may see (at one
    site or all of theirs): counts only, no patient named."""

    since: date
    until: date
    site: Any  # accounts.Site, or None for every site the user covers
    outcomes: list[Any]  # clinical.outcomes.OutcomeSummary per instrument in OUTCOME_INSTRUMENTS
    # per instrument code: [(protocol key, or "" for no course recorded), OutcomeSummary] with patients
    outcomes_by_protocol: dict[str, list[tuple[str, Any]]]
    sessions_carried_out: int
    sessions_stopped: int
    patients_treated: int
    by_protocol: list[tuple[str, int]]
    monitoring_alerts: dict[str, int]  # severity -> count
    adverse_events: int
    serious_adverse_events: int
    suicidality_alerts: int
    suicidality_acknowledged: int
    median_minutes_to_acknowledge: float | None

    @property
    def rows(self) -> list[tuple[Any, list[tuple[str, Any]]]]:
        """(summary, its per-protocol groups) per instrument, for the page."""
        return [(o, self.outcomes_by_protocol.get(o.instrument, [])) for o in self.outcomes]


def _treated_with(scope: Any, end: datetime) -> dict[Any, str]:
    """Each patient's course protocol as of ``end``: the protocol of their latest plan made before then,
    else of their latest session carried out at the chair before then (no entry: no course recorded)."""
    from ketaclinic.chairside.models import Status, TreatmentSession
    from ketaclinic.treatment.models import Plan

    out: dict[Any, str] = {}
    for patient_id, key in (
        TreatmentSession.objects.filter(patient__in=scope, status=Status.DISCHARGED, discharged_at__lt=end)
        .order_by("discharged_at")
        .values_list("patient_id", "protocol_id")
    ):
        out[patient_id] = key
    for patient_id, key in (
        Plan.objects.filter(patient__in=scope, created_at__lt=end)
        .order_by("created_at")
        .values_list("patient_id", "protocol_key")
    ):
        out[patient_id] = key  # a plan outranks sessions outside one
    return out


def outcomes_report(
    *, user: User, site: Any, since: date, until: date, request: HttpRequest | None = None
) -> OutcomesReport:
    """Counts for [since, until] (whole days in the site's time zone, or the server's for all sites):
    sessions discharged and stopped, patients treated, sessions per protocol; response and remission per
    instrument (clinical/outcomes.py: first score → latest score in the period), also per course protocol
    (``_treated_with``); monitoring alerts by
    severity, adverse events, suicidality alerts and how fast they were acknowledged. Audited as one read
    (no patient named in it)."""
    from statistics import median

    from ketaclinic.chairside.models import AdverseEvent, SessionAlert, Status, TreatmentSession
    from ketaclinic.clinical.outcomes import Score, summarize
    from ketaclinic.patients.services import visible_patients

    errors: dict[str, str] = {}
    if until < since:
        errors["until"] = "is before the start of the period"
    elif (until - since).days > LONGEST_PERIOD_DAYS:
        errors["since"] = f"the period is longer than {LONGEST_PERIOD_DAYS} days"
    if until > timezone.localdate() + timedelta(days=1):
        errors["until"] = "is in the future"
    if errors:
        raise OutcomesInputError(errors)
    zone = site.zone if site is not None else timezone.get_current_timezone()
    begin = datetime.combine(since, datetime.min.time(), tzinfo=zone)
    end = datetime.combine(until + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    scope = visible_patients(user)
    if site is not None:
        scope = scope.filter(site=site)
    sessions = TreatmentSession.objects.filter(patient__in=scope)
    carried_out = sessions.filter(status=Status.DISCHARGED, discharged_at__gte=begin, discharged_at__lt=end)
    stopped = sessions.filter(status=Status.STOPPED, status_changed_at__gte=begin, status_changed_at__lt=end)
    by_protocol: dict[str, int] = {}
    for protocol_id in carried_out.values_list("protocol_id", flat=True):
        by_protocol[protocol_id] = by_protocol.get(protocol_id, 0) + 1
    alerts: dict[str, int] = {}
    for severity in SessionAlert.objects.filter(
        session__patient__in=scope, raised_at__gte=begin, raised_at__lt=end
    ).values_list("severity", flat=True):
        alerts[severity] = alerts.get(severity, 0) + 1
    events = AdverseEvent.objects.filter(session__patient__in=scope, onset_at__gte=begin, onset_at__lt=end)
    safety = list(
        SafetyAlert.objects.filter(
            patient__in=scope, kind="suicidality", raised_at__gte=begin, raised_at__lt=end
        ).values_list("raised_at", "acknowledged_at")
    )
    waits = [(ack - raised).total_seconds() / 60 for raised, ack in safety if ack is not None]
    protocol_of = _treated_with(scope, end)
    last = end - timedelta(microseconds=1)
    outcomes = []
    grouped: dict[str, list[tuple[str, Any]]] = {}
    for code in (*OUTCOME_INSTRUMENTS, *IMPROVEMENT_INSTRUMENTS):
        rule = IMPROVEMENT_INSTRUMENTS.get(code)
        per_patient: dict[Any, list[Score]] = {}
        for patient_id, at, total in ScaleAdministration.objects.filter(
            patient__in=scope, instrument=code, total__isnull=False, administered_at__lt=end
        ).values_list("patient_id", "administered_at", "total"):
            assert total is not None  # total__isnull=False above
            per_patient.setdefault(patient_id, []).append(Score(at, total))
        outcomes.append(summarize(code, per_patient.values(), begin, last, rule))
        groups: dict[str, list[list[Score]]] = {}
        for patient_id, scores in per_patient.items():
            groups.setdefault(protocol_of.get(patient_id, ""), []).append(scores)
        rows = [(key, summarize(code, members, begin, last, rule)) for key, members in groups.items()]
        grouped[code] = sorted(((k, o) for k, o in rows if o.patients), key=lambda r: (r[0] == "", r[0]))
    report = OutcomesReport(
        since=since,
        until=until,
        site=site,
        outcomes=outcomes,
        outcomes_by_protocol=grouped,
        sessions_carried_out=carried_out.count(),
        sessions_stopped=stopped.count(),
        patients_treated=carried_out.values("patient_id").distinct().count(),
        by_protocol=sorted(by_protocol.items(), key=lambda kv: (-kv[1], kv[0])),
        monitoring_alerts=alerts,
        adverse_events=events.count(),
        serious_adverse_events=events.filter(serious=True).count(),
        suicidality_alerts=len(safety),
        suicidality_acknowledged=len(waits),
        median_minutes_to_acknowledge=median(waits) if waits else None,
    )
    audit.record(
        user=user,
        action=Action.QUERY,
        category="outcomes",
        object_type="Site" if site is not None else "",
        object_id=site.pk if site is not None else "",
        request=request,
        detail=f"outcomes {since.isoformat()} to {until.isoformat()}"
        + (f" at {site.code}" if site is not None else " at every covered site"),
    )
    return report


def outcomes_as_dict(report: OutcomesReport) -> dict[str, Any]:
    """The report as plain JSON-ready data (``ketaclinic outcomes --json``)."""

    def summary(o: Any) -> dict[str, Any]:
        return {
            "patients": o.patients,
            "responders": o.responders,
            "response_evaluable": o.response_evaluable,
            "remitters": o.remitters,
            "remission_evaluable": o.remission_evaluable,
            "median_percent_change": o.median_percent_change,
            "improved": o.improved,
            "improvement_evaluable": o.improvement_evaluable,
        }

    return {
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "site": report.site.code if report.site is not None else None,
        "sessions_carried_out": report.sessions_carried_out,
        "sessions_stopped": report.sessions_stopped,
        "patients_treated": report.patients_treated,
        "sessions_by_protocol": dict(report.by_protocol),
        "scales": {
            o.instrument: summary(o)
            | {
                "response_rule": o.response_rule.label if o.response_rule else None,
                "remission_rule": o.remission_rule.label if o.remission_rule else None,
                "improvement_rule": o.improvement_rule.label if o.improvement_rule else None,
                "by_protocol": {key or "none": summary(g) for key, g in groups},
            }
            for o, groups in report.rows
        },
        "monitoring_alerts": report.monitoring_alerts,
        "adverse_events": report.adverse_events,
        "serious_adverse_events": report.serious_adverse_events,
        "suicidality_alerts": report.suicidality_alerts,
        "suicidality_acknowledged": report.suicidality_acknowledged,
        "median_minutes_to_acknowledge": report.median_minutes_to_acknowledge,
    }
