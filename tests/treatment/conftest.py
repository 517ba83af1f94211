"""Shared set-up for treatment tests: a complete intake (eligible for both drugs), screening, an open site."""

from __future__ import annotations

from typing import Any

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
    return helpers
