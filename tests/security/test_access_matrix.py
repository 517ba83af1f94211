"""Role × route × object: every page and API operation, read from the URL conf and the API, asked for by
every identity — anonymous, each role at the patient's own site (owner), at another site of the same
organization (colleague) and in another organization (outsider) — about real records of one Harbor Street
patient.

The one hand-kept list is ``EXPECTED``: who may use each route. A route missing from it (a new page) or
declaring other roles than it says fails, so widening access is a reviewed change. Everything else is
derived: deny by default (anonymous → sign-in page or 401; a role not listed → 403), another site's or
organization's record → 403/404 with none of the patient's identifiers in the answer, and lists seen from
elsewhere never name the patient.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from tests.security.routes import Route, all_routes, url_for
from tests.security.world import ROLES, World, build_world, signed_in

from ketaclinic.core.access import ADMIN, FRONT_DESK, NURSE, PRESCRIBER

pytestmark = pytest.mark.django_db

STAFF = frozenset(ROLES)
CLINICIANS = frozenset({PRESCRIBER, NURSE})
REGISTRY = frozenset({PRESCRIBER, NURSE, FRONT_DESK})
ADMIN_CLIN = frozenset({ADMIN, PRESCRIBER, NURSE})
P = frozenset({PRESCRIBER})
A = frozenset({ADMIN})
PUBLIC = "public"  # no sign-in (sign-in pages, health check, a patient's self-report link)
BEARER = "bearer"  # FHIR: a bearer token, never a staff session
SIGNED_IN = "signed-in"  # any staff account before its second factor (MFA enrolment)

#: Who may use each route. Keys are URL names for pages and "api:METHOD /path" for API operations.
EXPECTED: dict[str, Any] = {
    "core:home": STAFF,
    "core:notification_read": STAFF,
    "core:healthz": PUBLIC,
    "accounts:login": PUBLIC,
    "accounts:mfa": SIGNED_IN,
    "accounts:mfa_setup": SIGNED_IN,
    "accounts:logout": PUBLIC,
    "accounts:users": A,
    "accounts:user_invite": A,
    "accounts:user_edit": A,
    "accounts:link_password": PUBLIC,
    "accounts:link_open": PUBLIC,
    "accounts:sites": A,
    "accounts:site_edit": A,
    "accounts:site_identifiers": A,
    "accounts:site_closures": A,
    "accounts:alerts": ADMIN_CLIN,
    "accounts:site_alerts": ADMIN_CLIN,
    "accounts:site_alerts_change": P,
    "patients:list": REGISTRY,
    "patients:create": REGISTRY,
    "patients:chart": REGISTRY,
    "patients:edit": REGISTRY,
    "patients:break_glass": REGISTRY,
    "audit:report": A,
    "audit:export": A,
    "measures:scales": CLINICIANS,
    "measures:enter": CLINICIANS,
    "measures:create_link": REGISTRY,
    "measures:acknowledge": CLINICIANS,
    "measures:on_duty": CLINICIANS,
    "measures:self_report": PUBLIC,
    "measures:outcomes": frozenset({ADMIN, PRESCRIBER}),
    "assessment:intake": CLINICIANS,
    "assessment:intake_edit": CLINICIANS,
    "assessment:screening_run": CLINICIANS,
    "assessment:intake_version": CLINICIANS,
    "assessment:intake_sign": P,
    "assessment:screening": CLINICIANS,
    "assessment:screening_sign": P,
    "assessment:screening_override": P,
    "treatment:protocols": ADMIN_CLIN,
    "treatment:protocol": ADMIN_CLIN,
    "treatment:protocol_copy": A,
    "treatment:protocol_edit": A,
    "treatment:protocol_session_settings": P,
    "treatment:plan_new": P,
    "treatment:plan": CLINICIANS,
    "treatment:plan_verify": CLINICIANS,
    "treatment:plan_stop": P,
    "treatment:plan_review": P,
    "treatment:calendar": REGISTRY,
    "treatment:book": REGISTRY,
    "treatment:mark_arrived": REGISTRY,
    "treatment:plan_session_missed": CLINICIANS,
    "treatment:plan_session_move": CLINICIANS,
    "treatment:plan_session_start": CLINICIANS,
    "treatment:plan_session_dose": P,
    "monitoring:unbound": CLINICIANS,
    "monitoring:devices": A,
    "monitoring:senders": A,
    "consent:sign": CLINICIANS,
    "consent:upload": CLINICIANS,
    "consent:consent": CLINICIANS,
    "consent:document": CLINICIANS,
    "consent:withdraw": CLINICIANS,
    "consent:forms": ADMIN_CLIN,
    "consent:form": ADMIN_CLIN,
    "consent:publish": P,
    "chairside:list": CLINICIANS,
    "chairside:schedule": CLINICIANS,
    "chairside:session": CLINICIANS,
    "chairside:transition": CLINICIANS,
    "chairside:gate": CLINICIANS,
    "chairside:gate_override": P,
    "chairside:administer": CLINICIANS,
    "chairside:observe": CLINICIANS,
    "chairside:acknowledge": CLINICIANS,
    "chairside:checklist": CLINICIANS,
    "chairside:adverse_event": CLINICIANS,
    "chairside:discharge": CLINICIANS,
    "chairside:board_index": CLINICIANS,
    "chairside:board": CLINICIANS,
    "chairside:board_stream": CLINICIANS,
    "chairside:rems_form": CLINICIANS,
    "chairside:rems_assemble": CLINICIANS,
    "chairside:rems_sign_off": CLINICIANS,
    "chairside:rems_pdf": REGISTRY,
    "chairside:rems_submitted": REGISTRY,
    "chairside:session_report_pdf": CLINICIANS,
    "chairside:rems_queue": REGISTRY,
    "ledger:stock": ADMIN_CLIN,
    "ledger:receive": CLINICIANS,
    "ledger:register": ADMIN_CLIN,
    "ledger:lot": ADMIN_CLIN,
    "ledger:count": CLINICIANS,
    "ledger:loss": CLINICIANS,
    "ledger:correct": CLINICIANS,
    "ledger:session_use": CLINICIANS,
    "ledger:inventories": ADMIN_CLIN,
    "ledger:take_inventory": CLINICIANS,
    "ledger:inventory": ADMIN_CLIN,
    "ledger:inventory_pdf": ADMIN_CLIN,
    "fhir:metadata": PUBLIC,
    "fhir:smart-configuration": PUBLIC,
    "fhir:token": PUBLIC,  # client credentials in the body; answers 400/401 without them
    "fhir:introspect": PUBLIC,  # the same client authentication as the token endpoint
    "fhir:export": BEARER,
    "fhir:export-status": BEARER,
    "fhir:export-file": BEARER,
    "fhir:patient-export": BEARER,
    "fhir:everything": BEARER,
    "fhir:search-post": BEARER,
    "fhir:read": BEARER,
    "fhir:search": BEARER,
    "fhir:not-found": BEARER,
    "api:openapi-json": STAFF,
    "api:openapi-view": STAFF,
    "api:POST /patients/search": REGISTRY,
    "api:POST /patients": REGISTRY,
    "api:GET /patients/{patient_id}": REGISTRY,
    "api:PATCH /patients/{patient_id}": REGISTRY,
    "api:POST /patients/{patient_id}/scales": CLINICIANS,
    "api:GET /patients/{patient_id}/scales": CLINICIANS,
    "api:POST /patients/{patient_id}/consents": CLINICIANS,
    "api:GET /patients/{patient_id}/consents": CLINICIANS,
    "api:POST /patients/{patient_id}/consents/{consent_id}/withdraw": CLINICIANS,
    "api:GET /consent-forms": ADMIN_CLIN,
    "api:GET /consent-forms/{template_id}": ADMIN_CLIN,
    "api:POST /assessment/patients/{patient_id}/intakes": CLINICIANS,
    "api:GET /assessment/patients/{patient_id}/intakes/latest": CLINICIANS,
    "api:GET /assessment/intakes/{intake_id}": CLINICIANS,
    "api:POST /assessment/intakes/{intake_id}/sign": P,
    "api:POST /assessment/patients/{patient_id}/screenings": CLINICIANS,
    "api:GET /assessment/screenings/{screening_id}": CLINICIANS,
    "api:GET /treatment/protocols": ADMIN_CLIN,
    "api:POST /treatment/patients/{patient_id}/plans": P,
    "api:GET /treatment/plans/{plan_id}": CLINICIANS,
    "api:POST /treatment/plans/{plan_id}/stop": P,
    "api:GET /treatment/plans/{plan_id}/review": CLINICIANS,
    "api:POST /treatment/plans/{plan_id}/review": P,
    "api:POST /treatment/plan-sessions/{session_id}/dose": P,
    "api:POST /treatment/plan-sessions/{session_id}/open": CLINICIANS,
    "api:POST /sessions": CLINICIANS,
    "api:GET /sessions/{session_id}": CLINICIANS,
    "api:POST /sessions/{session_id}/transition": CLINICIANS,
    "api:POST /sessions/{session_id}/gate": CLINICIANS,
    "api:POST /sessions/{session_id}/gate/overrides": P,
    "api:POST /sessions/{session_id}/administrations": CLINICIANS,
    "api:GET /sessions/{session_id}/stock-lots": CLINICIANS,
    "api:POST /sessions/{session_id}/observations": CLINICIANS,
    "api:POST /sessions/{session_id}/alerts/{alert_id}/acknowledge": CLINICIANS,
    "api:GET /sessions/{session_id}/discharge": CLINICIANS,
    "api:POST /sessions/{session_id}/discharge": CLINICIANS,
}

#: URL parameters naming a record of the target patient (or of the patient's site): another site or
#: organization must not reach it.
SITE_PARAMS = {
    "patient_id",
    "session_id",
    "alert_id",
    "plan_id",
    "intake_id",
    "screening_id",
    "consent_id",
    "lot_id",
    "entry_id",
    "inventory_id",
    "booking_id",
}
#: Parameters naming an organization-wide record (a site, a staff account, a consent form, a protocol):
#: any site of the organization may reach it; another organization may not.
ORG_PARAMS = {"site_id", "user_id", "template_id"}
#: (Protocol keys name the built-in protocol library, the same in every organization.)

#: The answers that refuse: not found, forbidden, method not allowed (refused before the record is read)
#: and, for a JSON API write sent without a valid body, a body refused before the record is read (writes
#: nothing); the writes in BODIES send a valid body, so their refusal must come from the scope check.
REFUSED_PAGE = {403, 404, 405}
REFUSED_API = {403, 404, 405, 422}

#: A colleague at another site is offered break-glass access to a chart (a reason, audited): the chart
#: redirects there, showing nothing.
BREAK_GLASS = {"patients:chart", "patients:edit"}

#: Refusals that answer with a redirect and a message ("No such alert."); the state checks at the end of
#: the test prove nothing changed.
REDIRECT_REFUSAL = {"measures:acknowledge"}

#: Records a route may legitimately not have for the owner (the REMS PDF exists once the form is assembled).
OWNER_MAY_404 = {"chairside:rems_pdf"}

#: Known open findings (issue 15) this matrix reports; remove an entry when its fix is merged.
KNOWN_OPEN: dict[tuple[str, str, str], str] = {}
KNOWN_OPEN_STATE: dict[str, str] = {}

#: Bodies for writes whose input is validated before the record is read: with a valid body the refusal
#: must come from the scope check ("{name}" is a record of the world; "{now}" the time of the request).
PHQ9_ZERO = {str(i): 0 for i in range(1, 10)}
BODIES: dict[str, Any] = {
    "measures:acknowledge": {"note": "Called the patient; safe at home."},
    "chairside:acknowledge": {"note": "Repeated the reading; settled."},
    "measures:on_duty": {"site": "{site_id}"},
    "api:POST /sessions/{session_id}/alerts/{alert_id}/acknowledge": {"note": "Repeated the reading."},
    "api:PATCH /patients/{patient_id}": {"version": 1, "phone": "555-0199"},
    "api:POST /patients/{patient_id}/scales": {"instrument": "phq9", "answers": PHQ9_ZERO},
    "api:POST /patients/{patient_id}/consents/{consent_id}/withdraw": {
        "withdrawn_on": "{today}",
        "reason": "Matrix test: must be refused",
    },
    "api:POST /treatment/plans/{plan_id}/stop": {"reason": "Matrix test: must be refused"},
    "api:POST /treatment/plans/{plan_id}/review": {"decision": "continue"},
    "api:POST /treatment/plan-sessions/{session_id}/dose": {"dose_mg": 30, "reason": "Matrix test"},
    "api:POST /sessions": {
        "patient_id": "{patient_id}",
        "protocol_id": "esk-trd-label",
        "planned_dose_mg": 56,
        "scheduled_at": "{now}",
    },
    "api:POST /sessions/{session_id}/transition": {"to": "stopped", "version": 1, "reason": "Matrix test"},
    "api:POST /sessions/{session_id}/gate/overrides": {"item_key": "screening", "reason": "Matrix test"},
    "api:POST /sessions/{session_id}/administrations": {"kind": "nasal_device"},
    "api:POST /sessions/{session_id}/observations": {
        "readings": [{"observed_at": "{now}", "sbp_mmhg": 120, "dbp_mmhg": 80}]
    },
    "api:POST /sessions/{session_id}/discharge": {
        "clinically_stable": True,
        "escort_present": True,
        "driving_advice_given": True,
    },
}
#: Writes whose body (not their URL) names the target patient.
BODY_SCOPED = {"api:POST /sessions"}


def _filled(value: Any, names: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {k: _filled(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, names) for v in value]
    return value


def _values(route: Route, world: World) -> dict[str, Any]:
    """The world's records for the route's parameters (a few parameter names mean different records)."""
    values = dict(world.objects)
    if "plan-sessions/" in route.pattern:
        values["session_id"] = values["plan_session_id"]
    if "alerts/" in route.pattern and "session_id" in route.params:
        values["session_id"] = values["chair_session_id"]
        values["alert_id"] = values["chair_alert_id"]
    if "consent_id" in route.params:
        values["patient_id"] = values["consent_patient_id"]
    return values


def _scope(route: Route) -> str:
    params = set(route.params)
    if params & SITE_PARAMS or "site_code" in params or route.key in BODY_SCOPED:
        return "site"
    if "site_id" in params and EXPECTED[route.key] != A:
        return "site"  # a clinician's view of a site's settings: their own sites only
    if params & ORG_PARAMS:
        return "org"
    return "none"


def test_every_route_is_in_the_expected_table_and_declares_those_roles() -> None:
    routes = all_routes()
    keys = {r.key for r in routes}
    assert len(routes) > 150, "the walk found the application's routes"
    undeclared = [r.key for r in routes if r.kind != "api" and r.access is None]
    undeclared += [r.key for r in routes if r.kind == "api" and not r.roles]
    assert undeclared == [], f"routes that declare no access: {undeclared}"
    assert sorted(keys - EXPECTED.keys()) == [], "routes missing from EXPECTED (decide who may use them)"
    assert sorted(EXPECTED.keys() - keys) == [], "EXPECTED names routes that no longer exist"
    differ = []
    for r in routes:
        want = EXPECTED[r.key]
        if r.kind == "api":
            got: Any = r.roles
        elif r.access is not None and r.access.public:
            got = PUBLIC
        elif r.access is not None and r.access.api:
            got = BEARER
        elif r.access is not None and not r.access.mfa:
            got = SIGNED_IN
        else:
            got = r.access.roles if r.access else None
        if want == PUBLIC and r.kind == "fhir":
            want = BEARER  # FHIR's public endpoints are reached through the FHIR view's own checks
        if got != want:
            differ.append((r.key, sorted(got) if isinstance(got, frozenset) else got, want))
    assert differ == [], f"declared access differs from EXPECTED: {differ}"


def _csrf(client: Any, signed: bool) -> str:
    client.get("/" if signed else "/accounts/login/")
    cookie = client.cookies.get(settings.CSRF_COOKIE_NAME)
    assert cookie is not None, "the first page sets the CSRF cookie"
    return str(cookie.value)


def _send(client: Any, route: Route, method: str, url: str, token: str, world: World) -> Any:
    from django.utils import timezone

    now = timezone.now()
    names = {**world.objects, "now": now.isoformat(), "today": now.date().isoformat()}
    body = _filled(BODIES.get(route.key, {}), names)
    if method == "GET":
        return client.get(url)
    if route.kind == "api":
        return client.generic(
            method,
            url,
            __import__("json").dumps(body),
            content_type="application/json",
            HTTP_X_CSRFTOKEN=token,
        )
    return client.post(url, {**body, "csrfmiddlewaretoken": token})


def _text(response: Any) -> str:
    if getattr(response, "streaming", False):
        return ""
    return str(response.content.decode(errors="replace"))


def _login_redirect(response: Any) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def _judge(
    route: Route, method: str, place: str, role: str | None, response: Any, world: World
) -> str | None:
    """What is wrong with ``response`` (None: as expected)."""
    status = response.status_code
    if status >= 500:
        return f"server error {status}"
    want = EXPECTED[route.key]
    text = _text(response)
    if want in (PUBLIC, BEARER):
        if want == BEARER and status not in (401, 405, 415):
            return f"FHIR without a bearer token answered {status}"
        if place != "owner" and any(word in text for word in world.phi):
            return "patient identifiers in a public answer"
        return None
    if role is None:  # anonymous
        if route.kind == "api":
            return None if status == 401 else f"anonymous API answered {status}, not 401"
        return None if _login_redirect(response) else f"anonymous answered {status}, not the sign-in page"
    if want != SIGNED_IN and role not in want:
        return None if status == 403 else f"role {role} (not permitted) answered {status}, not 403"
    scope = _scope(route)
    leaked = [w for w in world.phi if w in text]
    refused = REFUSED_API if route.kind == "api" else REFUSED_PAGE
    if route.key in BODIES and method != "GET":
        refused = refused - {422}  # a valid body: the refusal must come from the scope check
    if place == "owner" or (place == "colleague" and scope == "org"):
        if status in (401, 403) or _login_redirect(response):
            if route.key == "chairside:board_stream" and status == 403:
                return None  # the stream needs its board page opened in the same session first
            return f"{place} {role} refused ({status})"
        if scope != "none" and status == 404 and method == "GET" and route.key not in OWNER_MAY_404:
            return f"{place} {role} got 404 for a record they may see"
        return None
    if place == "colleague" and role == ADMIN:
        return None  # administrators act for the whole organization (audit, register)
    if scope == "none":
        return f"{place} {role} sees the patient: {leaked}" if leaked else None
    if leaked:
        return f"{place} {role} sees the patient ({status}): {leaked}"
    if place == "outsider" and "site_code" in route.params:
        return None  # organization B has a site with the same code: its own board, checked for PHI above
    if route.key in REDIRECT_REFUSAL and status == 302:
        return None
    if place == "colleague" and route.key in BREAK_GLASS and status == 302:
        return None if "break-glass" in response["Location"] else f"redirect to {response['Location']}"
    return None if status in refused else f"{place} {role} reached another site's record ({status})"


def _first_role(want: Any) -> str | None:
    if not isinstance(want, frozenset):
        return NURSE
    return next(r for r in (NURSE, PRESCRIBER, FRONT_DESK, ADMIN) if r in want)


def test_every_identity_on_every_route(db: Any) -> None:
    world = build_world()
    routes = all_routes()
    identities: list[tuple[str, str | None]] = [("anonymous", None)]
    identities += [(place, role) for place in ("colleague", "outsider", "owner") for role in ROLES]
    failures: list[str] = []
    for place, role in identities:
        user = world.user(place, role) if role else None
        client = signed_in(user)
        token = _csrf(client, user is not None)
        for route in routes:
            url = url_for(route, _values(route, world))
            want = EXPECTED[route.key]
            permitted = role is not None and (isinstance(want, str) or role in want)
            if route.kind == "fhir" and role not in (None, NURSE):
                continue  # FHIR ignores staff sessions: anonymous and one signed-in nurse suffice
            if role is not None and not permitted and place != "owner":
                continue  # the role check comes before any record is read: asked once, from the owner site
            for method in route.methods:
                allowed_here = place == "owner" or (place == "colleague" and _scope(route) == "org")
                if method != "GET" and permitted and allowed_here:
                    continue  # permitted writes are the feature suites' business, not this matrix's
                if method != "GET" and permitted and role != _first_role(want):
                    continue  # a refused write is asked of one permitted role per route
                if route.key == "accounts:logout" and method == "POST":
                    continue  # would end this identity's session (the sign-in tests cover it)
                response = _send(client, route, method, url, token, world)
                problem = _judge(route, method, place, role, response, world)
                known = KNOWN_OPEN.get((route.key, method, place))
                if problem and not known:
                    failures.append(f"{place} {role or ''} {method} {url} [{route.key}]: {problem}")
    # Writes refused from elsewhere changed nothing.
    from ketaclinic.chairside.models import SessionAlert
    from ketaclinic.core.models import Notification
    from ketaclinic.measures.models import SafetyAlert

    if SafetyAlert.objects.get(pk=world.objects["alert_id"]).acknowledged_at is not None:
        failures.append("a Harbor Street suicidality alert was acknowledged from elsewhere (issue 15 H1)")
    chair_alert = world.objects["chair_alert_id"]
    if chair_alert is not None and SessionAlert.objects.get(pk=chair_alert).acknowledged_at is not None:
        failures.append("a Harbor Street session alert was acknowledged from elsewhere")
    if Notification.objects.get(pk=world.objects["notification_id"]).read_at is not None:
        failures.append("another account marked the owner nurse's notification read")
    colleague = world.user("colleague", NURSE)
    colleague.refresh_from_db()
    if colleague.on_duty_site_id == world.harbor.pk and "on-duty" not in KNOWN_OPEN_STATE:
        failures.append("a Juniper Hill nurse set herself on duty at Harbor Street (issue 15 M1)")
    assert failures == [], "\n".join(failures)
