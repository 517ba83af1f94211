"""Shared set-up for treatment tests: a complete intake (eligible for both drugs), screening, an open site."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ketaclinic.accounts.models import Chair
from ketaclinic.assessment import services as assessment
from ketaclinic.assessment.intake_data import ANSWER_FIELDS

WEEKDAYS_OPEN = {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}

TRIAL = {
    "dose_adequate": "yes",
    "weeks": 8,
    "adherence_adequate": "yes",
    "outcome": "no_response",
    "current_episode": "yes",
}


def complete_intake(**overrides: Any) -> dict[str, Any]:
    """Every item answered: the screening engine finds nothing (checked: eligible for both drugs)."""
    data: dict[str, Any] = {k: "no" for k in ANSWER_FIELDS}
    data.update(
        assessed_on="2026-11-20",
        indication="trd",
        diagnoses=["trd"],
        hepatic_impairment="none",
        rems_enrolled="yes",
        ecg_done="yes",
        ecg_date="2026-11-01",
        liver_function_tested="yes",
        renal_function_tested="yes",
        labs_tested_on="2026-11-01",
        systolic_bp=120,
        diastolic_bp=80,
        heart_rate=70,
        stop_bang_score=1,
        moca_score=28,
        medications=[],
        prior_trials=[dict(TRIAL, drug="sertraline"), dict(TRIAL, drug="venlafaxine")],
        baseline_scales={"phq9": 18},
        childbearing_potential="no",
        childbearing_potential_reason="post_menopausal",
    )
    data.update(overrides)
    return data


def screened(nurse: Any, prescriber: Any, patient: Any, *, sign: bool = True, **overrides: Any) -> Any:
    intake = assessment.save_intake(
        user=nurse, patient=patient, data=complete_intake(**overrides), base_version=None
    )
    assessment.sign_intake(user=prescriber, intake=intake)
    screening = assessment.run_screening(user=nurse, patient=patient)
    if sign:
        assessment.sign_screening(user=prescriber, screening=screening)
    return screening


def continue_into_maintenance(prescriber: Any, plan: Any, **extra: Any) -> Any:
    """The end-of-induction review on demand: continue into maintenance (no scores yet, so with a reason)."""
    from ketaclinic.treatment.review import record_review

    return record_review(
        user=prescriber,
        plan=plan,
        decision="continue",
        reason="Clear benefit reported by patient and family",
        **extra,
    )


def open_site(site: Any, chairs: int = 2) -> list[Any]:
    site.opening_hours = WEEKDAYS_OPEN
    site.save()
    return [
        Chair.objects.create(organization=site.organization, site=site, label=f"C{i + 1}")
        for i in range(chairs)
    ]


def elektd_from_21_december(nurse: Any, prescriber: Any, patient: Any, site: Any) -> Any:
    """An open site with two chairs and ELEKT-D twice weekly from Monday 21 December 2026 09:00 (sessions on
    Mon 21, Thu 24, Mon 28, Thu 31 …), planned with the clock where the caller froze it (before the 21st)."""
    from ketaclinic.treatment import services

    open_site(site)
    screened(nurse, prescriber, patient)
    return services.create_plan(
        user=prescriber,
        patient=patient,
        data={"protocol": "iv-trd-elektd", "start": "2026-12-21", "preferred_time": "09:00"},
    )


@pytest.fixture
def setup() -> Any:
    """``setup.complete_intake``, ``setup.screened`` and ``setup.open_site`` (functions, not fixtures)."""

    class Helpers:
        pass

    helpers = Helpers()
    helpers.complete_intake = complete_intake  # type: ignore[attr-defined]
    helpers.screened = screened  # type: ignore[attr-defined]
    helpers.open_site = open_site  # type: ignore[attr-defined]
    helpers.continue_into_maintenance = continue_into_maintenance  # type: ignore[attr-defined]
    return helpers


class FormClient:
    """A browser-like client: CSRF enforced with the real token from the cookie, signed in again before each
    request so a test's clock can jump past the idle time-out."""

    def __init__(self, sign_in: Any, user: Any) -> None:
        from django.test import Client

        self.sign_in, self.user = sign_in, user
        self.client = Client(enforce_csrf_checks=True)
        self.sign_in(self.client, user)
        self.client.get("/")

    def _token(self) -> str:
        from django.conf import settings

        return str(self.client.cookies[settings.CSRF_COOKIE_NAME].value)

    def get(self, url: str) -> Any:
        self.sign_in(self.client, self.user)
        return self.client.get(url)

    def post(self, url: str, data: dict[str, Any] | None = None, *, follow: bool = True) -> Any:
        self.sign_in(self.client, self.user)
        return self.client.post(url, {**(data or {}), "csrfmiddlewaretoken": self._token()}, follow=follow)

    def api(self, url: str, body: dict[str, Any] | None = None) -> Any:
        import json

        self.sign_in(self.client, self.user)
        return self.client.post(
            url, data=json.dumps(body or {}), content_type="application/json", HTTP_X_CSRFTOKEN=self._token()
        )


def qids_answers(total: int) -> dict[str, int]:
    """QIDS-SR16 answers adding up to ``total`` (at most 24), never on the suicidality item (12)."""
    answers = {str(i): 0 for i in range(1, 17)}
    for item in (1, 5, 6, 10, 11, 13, 14, 15):
        answers[str(item)] = min(3, total)
        total -= answers[str(item)]
    return answers


def madrs_answers(total: int) -> dict[str, int]:
    """MADRS answers adding up to ``total`` (at most 54), never on the suicidal-thoughts item (10)."""
    answers = {str(i): 0 for i in range(1, 11)}
    for item in range(1, 10):
        answers[str(item)] = min(6, total)
        total -= answers[str(item)]
    return answers


# A frozen clinic for the course-rule tests (issue 14): the site's zone, a Wednesday, and the Monday after it
# on which new courses start.
NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 12, 9, 10, 0, tzinfo=NY)
MONDAY = datetime(2026, 12, 14, tzinfo=NY).date()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """``day`` days after the course's first Monday, at ``hour``:``minute`` site time."""
    return datetime.combine(MONDAY + timedelta(days=day), time(hour, minute), tzinfo=NY)


@pytest.fixture
def clinic(time_machine: Any, nurse: Any, prescriber: Any, patient: Any, site: Any) -> list[Any]:
    """Time frozen at ``NOW``; the site open Monday to Friday with chairs C1 and C2; the patient screened."""
    time_machine.move_to(NOW, tick=False)
    chairs = open_site(site)
    screened(nurse, prescriber, patient)
    return chairs
