"""In real Chromium: a 20,000-character alert note, mental status and rate-change note (one unbroken "word"
each) wrap on the session page instead of stretching it (issue 14: "the page 189,626 px wide")."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from ketaclinic.chairside.models import Administration, Observation, SessionAlert, TreatmentSession


def test_twenty_thousand_characters_wrap_on_the_session_page(
    browser_sign_in: Any, nurse: Any, site: Any, patient: Any
) -> None:
    now = timezone.now()
    session = TreatmentSession.objects.create(
        organization=site.organization,
        patient=patient,
        site=site,
        protocol_id="iv-trd-elektd",
        drug="ketamine",
        route="iv",
        planned_dose_mg=Decimal("35"),
        scheduled_at=now - timedelta(minutes=40),
        status="monitoring",
        status_changed_at=now - timedelta(minutes=30),
        dose_started_at=now - timedelta(minutes=30),
        created_by=nurse,
    )
    long_word = "A" * 20_000
    Administration.objects.create(
        organization=site.organization,
        session=session,
        kind="infusion_start",
        at=now - timedelta(minutes=30),
        drug="ketamine",
        product="Ketamine HCl 10 mg/mL",
        lot="L1",
        expiry=date(2030, 1, 1),
        dose_mg=Decimal("35"),
        rate_ml_per_h=Decimal("150"),
        note="N" * 20_000,
        given_by=nurse,
    )
    Observation.objects.create(
        organization=site.organization,
        session=session,
        observed_at=now - timedelta(minutes=20),
        sbp_mmhg=124,
        dbp_mmhg=78,
        temp_c=Decimal("45.0"),
        mental_status="M" * 20_000,
        entered_by=nurse,
    )
    SessionAlert.objects.create(
        organization=site.organization,
        session=session,
        code="temp_high",
        severity="warning",
        message="Temperature 45 °C at 10 min: at or above 38 °C",
        source="clinic default, unconfirmed",
        dedup_key="t",
        raised_at=now - timedelta(minutes=20),
        acknowledged_by=nurse,
        acknowledged_at=now - timedelta(minutes=19),
        note=long_word,
    )
    page = browser_sign_in(nurse)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/sessions/{session.pk}/")
    page.wait_for_selector("#observations")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, f"the page is {width} px wide"
    assert page.locator("#alerts").inner_text().count("A") >= 20_000  # the note is there, whole
    assert long_word in page.content()
