"""The end-of-induction review in Chromium, from an empty clinic: an ELEKT-D course whose six infusions are
done shows the review as due, the QIDS-SR16 response by its own rule (≥50 % reduction, clinical.md §0) and
the optional maintenance as proposed, not booked; the prescriber ticks the weekly month and records the
review, and the four weekly infusions are booked, the first a week after the last infusion."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from tests.browser.test_plan_move_and_stop import _sign_in
from tests.treatment.conftest import open_site, qids_answers, screened
from tests.treatment.test_plans import plan_data

from ketaclinic.measures import services as measures
from ketaclinic.treatment import services
from ketaclinic.treatment.models import PlanSession


def test_prescriber_reviews_the_induction_and_books_the_weekly_month(
    browser_page: Any, nurse: Any, prescriber: Any, patient: Any, site: Any
) -> None:
    open_site(site)
    screened(nurse, prescriber, patient)
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    # The six infusions took place over the last three weeks (moved into the past as the course went).
    now = timezone.now().replace(second=0, microsecond=0)
    rows = list(plan.sessions.order_by("number"))
    for k, row in enumerate(rows):
        start = now - timedelta(days=22 - 3 * k + (k % 2), hours=2)
        PlanSession.objects.filter(pk=row.pk).update(start=start, end=start + timedelta(minutes=70))
    first = plan.sessions.get(number=1).start
    measures.record_administration(
        user=nurse,
        patient=patient,
        instrument="qids-sr16",
        answers=qids_answers(20),
        administered_at=first - timedelta(days=1),
    )
    measures.record_administration(
        user=nurse,
        patient=patient,
        instrument="qids-sr16",
        answers=qids_answers(8),
        administered_at=now - timedelta(hours=1),
    )

    page = browser_page
    _sign_in(page, prescriber)
    page.goto(f"/plans/{plan.pk}/")
    assert "Review due" in page.inner_text("#review-due")
    review = page.locator("#induction-review")
    assert "QIDS-SR16 20 → 8 (-60 %): Response: ≥50% reduction from baseline — met" in review.inner_text()
    proposed = page.inner_text("#proposals")
    assert "Maintenance: weekly for 1 month" in proposed and proposed.count("optional") == 3
    assert page.locator("td.session-dose:has-text('35 mg')").count() == 6
    page.check("#review-form input[name=phases][value='1']")
    page.click("#review-form button:has-text('Record the review')")
    page.wait_for_selector(".msg.success")
    assert "Sessions booked: 7, 8, 9, 10." in page.inner_text(".msg.success")
    assert "Continue into maintenance" in page.inner_text("#reviews")
    assert page.locator("#review-due").count() == 0
    weekly = list(plan.sessions.filter(phase_kind="maintenance").order_by("start"))
    last = plan.sessions.get(number=6).start
    assert len(weekly) == 4 and weekly[0].start.date() >= (last + timedelta(days=7)).date()
    assert "Maintenance: weekly for 1 month" not in page.inner_text("#proposals")
