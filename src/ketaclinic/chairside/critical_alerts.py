"""Critical alerts nobody has acknowledged, for the banners that cannot be missed (issue 13, point 8).

One scoped read, ``critical_alerts_for(user=…)``, gives a nurse or prescriber every open critical alert of
the sites they cover (organization, then sites: ``accounts.services.covered_sites``):

- critical ``SessionAlert`` rows of the active sessions at those sites (vital-sign alerts at a chair);
- suicidality ``SafetyAlert`` rows of those sites' patients, whoever the alert was first sent to — PHQ-9
  item 9 > 0 "needs immediate follow-up regardless of total" (clinical.md §8), so it is not left to the
  patient's prescriber and the clinicians on duty alone.

The home page shows them all, the session page (``templatetags/chairside_alerts``) shows its own and
points to the others, and the live board shows its site's (``board_banner``, pushed by the board's stream
like its cards). Reading them is a PHI read: each page view records one audit entry with the count; the
board's stream re-reads without new entries, as for its cards (its page open is audited).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import Site, User
from ketaclinic.accounts.services import covered_sites
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.chairside.models import ACTIVE_STATUSES, SessionAlert
from ketaclinic.clinical import alerts as alert_rules
from ketaclinic.core.access import CLINICIANS
from ketaclinic.measures.models import SafetyAlert
from ketaclinic.measures.services import open_suicidality_alerts

CRITICAL = str(alert_rules.Severity.CRITICAL)
AUDIT_CATEGORY = "critical-alerts"


def open_critical_session_alerts(*, organization_id: Any, site_ids: Sequence[Any]) -> QuerySet[SessionAlert]:
    """Unacknowledged critical alerts of the active sessions at these sites of one organization, oldest
    first. Not audited here: the caller records one read per page."""
    return (
        SessionAlert.objects.filter(
            organization_id=organization_id,
            session__organization_id=organization_id,
            session__site_id__in=list(site_ids),
            session__status__in=ACTIVE_STATUSES,
            severity=CRITICAL,
            acknowledged_at__isnull=True,
        )
        .select_related("session__site", "session__chair")
        .order_by("raised_at", "pk")
    )


@dataclass(frozen=True)
class CriticalAlerts:
    """The open critical alerts one clinician must see (``critical_alerts_for``)."""

    session_alerts: tuple[SessionAlert, ...] = ()
    safety_alerts: tuple[SafetyAlert, ...] = ()

    @property
    def count(self) -> int:
        return len(self.session_alerts) + len(self.safety_alerts)

    def __bool__(self) -> bool:
        return self.count > 0

    def of_session(self, session_id: Any) -> tuple[SessionAlert, ...]:
        return tuple(a for a in self.session_alerts if str(a.session_id) == str(session_id))

    def other_sessions(self, session_id: Any) -> tuple[SessionAlert, ...]:
        return tuple(a for a in self.session_alerts if str(a.session_id) != str(session_id))

    def of_patient(self, patient_id: Any) -> tuple[SafetyAlert, ...]:
        return tuple(a for a in self.safety_alerts if str(a.patient_id) == str(patient_id))

    def other_patients(self, patient_id: Any) -> tuple[SafetyAlert, ...]:
        return tuple(a for a in self.safety_alerts if str(a.patient_id) != str(patient_id))


def critical_alerts_for(*, user: User, request: HttpRequest | None = None, purpose: str) -> CriticalAlerts:
    """Every open critical alert at the sites ``user`` covers (nurses and prescribers; other roles get
    none and nothing is read). One audit entry names the page (``purpose``) and the count."""
    if user.role not in CLINICIANS or user.organization_id is None:
        return CriticalAlerts()
    site_ids = [s.pk for s in covered_sites(user)]
    found = CriticalAlerts(
        session_alerts=tuple(
            open_critical_session_alerts(organization_id=user.organization_id, site_ids=site_ids)
        ),
        safety_alerts=tuple(open_suicidality_alerts(organization_id=user.organization_id, site_ids=site_ids)),
    )
    audit.record(
        user=user,
        action=Action.QUERY,
        category=AUDIT_CATEGORY,
        object_type="SessionAlert,SafetyAlert",
        request=request,
        detail=f"{purpose}: {found.count} open critical alert(s) "
        f"({len(found.session_alerts)} at a chair, {len(found.safety_alerts)} suicidality)",
    )
    return found


# --------------------------------------------------------------------------- the live board's banner


@dataclass(frozen=True)
class BoardBanner:
    """A site's open critical chair alerts and how many suicidality alerts of its patients are open (a
    count only: the board names no patient beyond its cards)."""

    alerts: tuple[SessionAlert, ...]
    suicidality_open: int
    now: datetime

    @property
    def count(self) -> int:
        return len(self.alerts) + self.suicidality_open


def board_banner(site: Site, now: datetime | None = None) -> BoardBanner:
    alerts = open_critical_session_alerts(organization_id=site.organization_id, site_ids=[site.pk])
    suicidality = open_suicidality_alerts(organization_id=site.organization_id, site_ids=[site.pk])
    return BoardBanner(tuple(alerts), suicidality.count(), now or timezone.now())


def board_banner_signature(site: Site) -> tuple[Any, ...]:
    """Changes whenever the banner's content could (the stream re-renders it then; its clocks tick in
    board.js)."""
    alerts = open_critical_session_alerts(organization_id=site.organization_id, site_ids=[site.pk])
    suicidality = open_suicidality_alerts(organization_id=site.organization_id, site_ids=[site.pk])
    return (
        tuple(alerts.values_list("pk", "escalated_at", "session__chair_id")),
        tuple(suicidality.values_list("pk", flat=True)),
    )
