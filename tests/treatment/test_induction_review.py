"""End-of-induction review (issue 14, second bullet): maintenance phases marked optional were booked anyway
(ELEKT-D: 17 sessions over 5 months) and continued whatever the response.

Now the plan books the induction and proposes the rest; when the induction is done (or on demand) a
prescriber records the response on the protocol's scale by the scale's own rule (baseline at or before the
first session → latest), and decides: continue (books the maintenance chosen; a reason when the rule is not
met), stop, or extend within the protocol's limits (make up sessions dropped or missed). Maintenance sessions
open only after a review that continues. From an empty clinic, time frozen; views with CSRF-enforcing clients."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from ketaclinic.accounts.models import SiteClosure
from ketaclinic.audit.models import AuditEntry
from ketaclinic.clinical.protocol_library import get_protocol
from ketaclinic.clinical.schedule import rhythm_problems
from ketaclinic.measures import services as measures
from ketaclinic.treatment import services
from ketaclinic.treatment.models import InductionReview, PlanSession
from ketaclinic.treatment.opening import open_course_session
from ketaclinic.treatment.review import record_review, review_state

from .conftest import MONDAY, NOW, NY, FormClient, at, madrs_answers, qids_answers
from .test_plans import plan_data


def _scale(nurse: Any, patient: Any, instrument: str, answers: dict[str, int], when: datetime) -> None:
    measures.record_administration(
        user=nurse, patient=patient, instrument=instrument, answers=answers, administered_at=when
    )


def test_elektd_maintenance_is_proposed_then_booked_for_a_responder(
    clinic: Any, nurse: Any, prescriber: Any, patient: Any, sign_in: Any, time_machine: Any
) -> None:
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    assert plan.sessions.count() == 6 and set(plan.sessions.values_list("phase_kind", flat=True)) == {
        "induction"
    }
    nurse_page = FormClient(sign_in, nurse)
    page = nurse_page.get(f"/plans/{plan.pk}/").content.decode()
    proposals = page.split('id="proposals"', 1)[1].split("</ul>", 1)[0]
    assert proposals.count("optional") == 3 and "Maintenance: weekly for 1 month" in proposals
    assert "Record the review" not in page and 'id="review-due"' not in page  # nurses read; not due yet
    _scale(nurse, patient, "qids-sr16", qids_answers(20), NOW)  # baseline, before the first session

    last = plan.sessions.get(number=6)
    time_machine.move_to(last.end + timedelta(hours=2), tick=False)
    _scale(nurse, patient, "qids-sr16", qids_answers(8), last.end + timedelta(hours=1))
    prescriber_page = FormClient(sign_in, prescriber)
    page = prescriber_page.get(f"/plans/{plan.pk}/").content.decode()
    assert 'id="review-due"' in page
    assert "QIDS-SR16 20 → 8 (-60 %): Response: ≥50% reduction from baseline — met" in page
    assert "clinical.md §0 (ELEKT-D" in page
    assert (
        nurse_page.post(f"/plans/{plan.pk}/review/", {"decision": "continue"}, follow=False).status_code
        == 403
    )

    done = prescriber_page.post(f"/plans/{plan.pk}/review/", {"decision": "continue", "phases": ["1"]})
    text = done.content.decode()
    assert "Review recorded: Continue into maintenance. Sessions booked: 7, 8, 9, 10." in text
    weekly = list(plan.sessions.filter(phase_kind="maintenance").order_by("start"))
    assert [s.number for s in weekly] == [7, 8, 9, 10]
    # The first weekly infusion a week after the last induction infusion (Thu 31 Dec), then weekly.
    assert weekly[0].start.astimezone(NY).date() == last.start.astimezone(NY).date() + timedelta(days=7)
    days = [(s.number, s.start.astimezone(NY).date()) for s in plan.sessions.filter(status="booked")]
    assert rhythm_problems(get_protocol("iv-trd-elektd"), days) == []
    review = InductionReview.objects.get(plan=plan)
    assert (
        review.response_met is True
        and review.decision == "continue"
        and review.sessions_booked == [7, 8, 9, 10]
    )
    assert review.scale == "qids_sr16" and review.baseline_total == 20 and review.latest_total == 8
    entry = AuditEntry.objects.get(object_type="InductionReview", object_id=str(review.pk))
    assert json.loads(entry.after)["decision"] == "continue" and entry.user == prescriber
    # The two other optional phases stay proposed; the booked weekly phase opens in its window.
    assert [m["index"] for m in review_state(user=prescriber, plan=plan).maintenance] == [2, 3]
    time_machine.move_to(weekly[0].start - timedelta(minutes=30), tick=False)
    opened, new = open_course_session(user=nurse, session=weekly[0])
    assert new and opened.session_number == 7


def test_continuing_without_a_response_needs_the_prescribers_reason(
    clinic: Any, nurse: Any, prescriber: Any, patient: Any, time_machine: Any
) -> None:
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data(protocol="esk-trd-label"))
    assert plan.sessions.count() == 8
    _scale(nurse, patient, "madrs", madrs_answers(34), NOW)
    last = plan.sessions.get(number=8)
    time_machine.move_to(last.end + timedelta(hours=1), tick=False)
    _scale(nurse, patient, "madrs", madrs_answers(30), last.end)
    with pytest.raises(services.PlanValidationError) as refused:
        record_review(user=prescriber, plan=plan, decision="continue")
    assert refused.value.errors["reason"].startswith(
        "The response rule is not met: continuing into maintenance needs your reason"
    )
    assert "clinical.md §11" in refused.value.errors["reason"]
    assert not plan.sessions.filter(phase_kind="maintenance").exists()
    review = record_review(
        user=prescriber,
        plan=plan,
        decision="continue",
        reason="Partial benefit; patient and family want to continue",
        cadences={2: "weekly"},  # week 9 onward: weekly instead of every 2 weeks (label allows either)
    )
    assert review.response_met is False and "MADRS 34 → 30" in review.summary
    maintenance = list(plan.sessions.filter(phase_kind="maintenance").order_by("start"))
    # Weeks 5–8 weekly (4), then week 9 on weekly (4 shown): both non-optional phases booked.
    assert [s.number for s in maintenance] == [9, 10, 11, 12, 13, 14, 15, 16]
    gaps = {(b.start - a.start).days for a, b in pairwise(maintenance)}
    assert gaps == {7}
    assert (maintenance[0].start - last.start).days == 7


def test_stop_and_the_api(
    clinic: Any, nurse: Any, prescriber: Any, patient: Any, outsider: Any, sign_in: Any, time_machine: Any
) -> None:
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    url = f"/api/treatment/plans/{plan.pk}/review"
    nurse_api = FormClient(sign_in, nurse)
    state = nurse_api.get(url).json()
    assert state["due"] is False and [m["index"] for m in state["maintenance"]] == [1, 2, 3]
    assert state["responses"][0]["scale"] == "qids_sr16" and state["responses"][0]["met"] is None
    assert nurse_api.api(url, {"decision": "stop", "reason": "x" * 20}).status_code == 403
    assert FormClient(sign_in, outsider).get(url).status_code == 404
    time_machine.move_to(at(3, 12), tick=False)  # after session 2, on demand: the patient cannot go on
    api = FormClient(sign_in, prescriber)
    refused = api.api(url, {"decision": "stop"})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "reason"]
    stopped = api.api(url, {"decision": "stop", "reason": "Cystitis symptoms; urology referral"})
    assert stopped.status_code == 201
    body = stopped.json()
    assert body["review"]["decision"] == "stop" and body["plan"]["status"] == "cancelled"
    assert "End-of-induction review: Cystitis symptoms" in body["plan"]["stop_reason"]
    assert [s["status"] for s in body["plan"]["sessions"]] == [
        "booked",
        "booked",
        "cancelled",
        "cancelled",
        "cancelled",
        "cancelled",
    ]
    assert api.api(url, {"decision": "stop", "reason": "Again and again"}).status_code == 409


def test_extending_makes_up_sessions_a_closure_dropped_and_no_more(
    clinic: Any, nurse: Any, prescriber: Any, patient: Any, site: Any, time_machine: Any
) -> None:
    for day in (10, 11, 14, 15):  # Thu 24, Fri 25, Mon 28, Tue 29 December
        SiteClosure.objects.create(
            organization=site.organization, site=site, day=MONDAY + timedelta(days=day), reason="Holidays"
        )
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    assert sorted(plan.sessions.values_list("number", flat=True)) == [1, 2, 3, 6]
    assert [u.split(" (")[0] for u in plan.unscheduled] == ["Session 4", "Session 5"]
    assert all("continue the current schedule" in u for u in plan.unscheduled)
    last = plan.sessions.get(number=6)
    time_machine.move_to(last.end + timedelta(hours=1), tick=False)
    state = review_state(user=prescriber, plan=plan)
    assert state.due and state.extendable == [4, 5]
    with pytest.raises(services.PlanValidationError) as refused:
        record_review(
            user=prescriber,
            plan=plan,
            decision="extend",
            extra_sessions=3,
            reason="Two were lost to closures",
        )
    assert refused.value.errors["extra_sessions"].startswith("between 1 and 2")
    review = record_review(
        user=prescriber, plan=plan, decision="extend", extra_sessions=2, reason="Two were lost to closures"
    )
    assert review.sessions_booked == [4, 5]
    made_up = list(plan.sessions.filter(number__in=[4, 5]).order_by("start"))
    assert all(s.phase_kind == "induction" and s.start > last.start for s in made_up)
    days = [(s.number, s.start.astimezone(NY).date()) for s in plan.sessions.filter(status="booked")]
    assert rhythm_problems(get_protocol("iv-trd-elektd"), days) == []
    assert review_state(user=prescriber, plan=plan).extendable == []
    with pytest.raises(services.PlanValidationError, match="already given or booked: nothing to make up"):
        record_review(
            user=prescriber, plan=plan, decision="extend", extra_sessions=1, reason="One more please"
        )


def test_a_maintenance_session_booked_before_the_rule_opens_only_after_a_review(
    clinic: Any, nurse: Any, prescriber: Any, patient: Any, sign_in: Any, time_machine: Any
) -> None:
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data(protocol="esk-trd-label"))
    # A plan made before issue 14 had its maintenance booked up front.
    legacy = PlanSession.objects.create(
        organization=plan.organization,
        plan=plan,
        patient=patient,
        site=plan.site,
        chair=plan.sessions.get(number=1).chair,
        number=9,
        phase_name="Maintenance (weeks 5–8): weekly",
        phase_kind="maintenance",
        week=5,
        start=at(38, 9),
        end=at(38, 11),
        dose_text="56 or 84 mg",
    )
    time_machine.move_to(at(38, 8), tick=False)
    page = FormClient(sign_in, nurse).post(f"/plan-sessions/{legacy.pk}/start/").content.decode()
    assert (
        "Not opened: Session 9 is a maintenance session: a prescriber records the end-of-induction review"
        in page
    )
    record_review(user=prescriber, plan=plan, decision="continue", reason="Good response reported by family")
    opened, _new = open_course_session(user=nurse, session=legacy)
    assert opened.session_number == 9
