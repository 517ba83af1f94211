"""Plans: the screening gate, dose limits and overrides, second-person check, dated course with chair capacity,
calendars per patient and per site, and role/organization isolation."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from ketaclinic.assessment import services as assessment
from ketaclinic.audit.models import AuditEntry
from ketaclinic.treatment import services
from ketaclinic.treatment.models import Plan, PlanSession


def next_monday() -> date:
    today = timezone.localdate()
    return today + timedelta(days=7 - today.weekday())


def plan_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "protocol": "iv-trd-elektd",
        "start": next_monday().isoformat(),
        "preferred_time": "09:00",
    }
    data.update(overrides)
    return data


def test_no_plan_without_a_signed_current_screening(
    nurse: Any, prescriber: Any, patient: Any, site: Any, setup: Any
) -> None:
    setup.open_site(site)
    with pytest.raises(services.PlanValidationError) as caught:
        services.create_plan(user=prescriber, patient=patient, data=plan_data())
    assert "No screening yet" in caught.value.errors["screening"]
    screening = setup.screened(nurse, prescriber, patient, sign=False)
    with pytest.raises(services.PlanValidationError) as caught:
        services.create_plan(user=prescriber, patient=patient, data=plan_data())
    assert "must sign the screening" in caught.value.errors["screening"]
    assessment.sign_screening(user=prescriber, screening=screening)
    assessment.save_intake(
        user=nurse, patient=patient, data=setup.complete_intake(moca_score=27), base_version=1
    )  # the intake changed: the screening is stale
    with pytest.raises(services.PlanValidationError) as caught:
        services.create_plan(user=prescriber, patient=patient, data=plan_data())
    assert "run the screening again" in caught.value.errors["screening"]
    assert not Plan.objects.exists()


def test_not_eligible_needs_a_prescriber_override_then_the_plan_records_it(
    nurse: Any, prescriber: Any, patient: Any, site: Any, setup: Any
) -> None:
    setup.open_site(site)
    # Uncontrolled hypertension: esketamine contraindicated by default (label §2.2 wording, not one of the
    # absolute label contraindications of §2.5), so a prescriber may override it with a reason.
    screening = setup.screened(nurse, prescriber, patient, uncontrolled_hypertension="yes")
    assert screening.decisions["esketamine"] == "not_eligible"
    data = plan_data(protocol="esk-trd-label")
    with pytest.raises(services.PlanValidationError) as caught:
        services.create_plan(user=prescriber, patient=patient, data=data)
    assert "not eligible" in caught.value.errors["screening"]
    override = assessment.override_screening(
        user=prescriber, screening=screening, drug="esketamine", reason="BP controlled now, cardiology agrees"
    )
    plan = services.create_plan(user=prescriber, patient=patient, data=data)
    assert (plan.protocol_key, plan.protocol_version) == ("esk-trd-label", 1)
    assert plan.screening_override == override and plan.screening_decision == "not_eligible"
    # Esketamine day 1 = 56 mg = 2 devices of 28 mg (clinical.md §2.1); no second person for a nasal spray.
    assert plan.dose_mg == 56 and plan.dose["devices"] == 2 and not plan.second_person_required
    sessions = list(plan.sessions.order_by("number"))
    # Label weeks 1–4 twice weekly (8) are booked; weeks 5–8 weekly and week 9+ are proposed, booked at
    # the end-of-induction review (clinical.md §2.1: evaluate benefit at the end of induction).
    assert len(sessions) == 8 and {s.phase_kind for s in sessions} == {"induction"}
    assert [p["name"] for p in plan.proposals] == [
        "Maintenance (weeks 5–8): weekly",
        "Maintenance (week 9 onward): every 2 weeks or weekly",
    ]
    assert sessions[0].start.astimezone(site.zone).date() == next_monday()
    assert sessions[1].start.astimezone(site.zone).date() == next_monday() + timedelta(days=3)  # days 0 and 3
    entry = AuditEntry.objects.get(object_type="Plan", action="add")
    assert "cardiology agrees" in entry.after


def test_a_label_contraindication_blocks_an_esketamine_plan_but_racemic_ketamine_may_be_overridden(
    nurse: Any, prescriber: Any, patient: Any, site: Any, setup: Any
) -> None:
    setup.open_site(site)
    screening = setup.screened(nurse, prescriber, patient, intracerebral_haemorrhage="yes")
    assert screening.decisions == {"esketamine": "not_eligible", "ketamine": "not_eligible"}
    with pytest.raises(assessment.AssessmentValidationError) as refused:
        assessment.override_screening(
            user=prescriber, screening=screening, drug="esketamine", reason="Remote bleed, neurology agrees"
        )
    assert "contraindicated by the SPRAVATO label: cannot be overridden" in refused.value.errors["drug"]
    with pytest.raises(services.PlanValidationError) as caught:
        services.create_plan(user=prescriber, patient=patient, data=plan_data(protocol="esk-trd-label"))
    assert "History of intracerebral haemorrhage" in caught.value.errors["screening"]
    assert "cannot be overridden" in caught.value.errors["screening"]
    # Racemic ketamine: the same item is contraindicated by an extrapolated default that stays overridable.
    with pytest.raises(services.PlanValidationError):
        services.create_plan(user=prescriber, patient=patient, data=plan_data())
    override = assessment.override_screening(
        user=prescriber, screening=screening, drug="ketamine", reason="Remote bleed, neurology agrees"
    )
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    assert plan.protocol_key == "iv-trd-elektd" and plan.screening_override == override
    assert Plan.objects.count() == 1


def test_soft_dose_limit_needs_a_reason_hard_limit_refuses(
    nurse: Any, prescriber: Any, patient: Any, site: Any, setup: Any
) -> None:
    setup.open_site(site)
    setup.screened(nurse, prescriber, patient)
    with pytest.raises(services.PlanValidationError) as caught:
        services.create_plan(user=prescriber, patient=patient, data=plan_data(prescribed_amount="1.5"))
    assert "outside the hard limit 0.1–1" in caught.value.errors["prescribed_amount"]
    with pytest.raises(services.PlanValidationError) as caught:
        services.create_plan(user=prescriber, patient=patient, data=plan_data(prescribed_amount="0.8"))
    assert "record a reason" in caught.value.errors["dose_override_reason"]
    plan = services.create_plan(
        user=prescriber,
        patient=patient,
        data=plan_data(prescribed_amount="0.8", dose_override_reason="Partial response at 0.75 mg/kg"),
    )
    assert plan.dose_mg == pytest.approx(56.0)  # 0.8 mg/kg × 70 kg
    assert plan.dose_override_reason == "Partial response at 0.75 mg/kg"
    assert plan.second_person_required  # IV


def test_second_person_verification_is_recorded_and_not_by_the_prescriber(
    nurse: Any, prescriber: Any, patient: Any, site: Any, setup: Any, sign_in: Any
) -> None:
    setup.open_site(site)
    setup.screened(nurse, prescriber, patient)
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    assert plan.dose_mg == pytest.approx(35.0)  # 0.5 mg/kg × 70 kg
    with pytest.raises(services.TreatmentError, match="someone other than"):
        services.verify_dose(user=prescriber, plan=plan)
    response = sign_in(Client(), nurse).post(f"/plans/{plan.pk}/verify/")
    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.verified_by == nurse and plan.verified_at is not None


def test_chairs_are_capacity_and_existing_bookings_count(
    nurse: Any, prescriber: Any, patient: Any, site: Any, setup: Any, make_patient: Any
) -> None:
    chairs = setup.open_site(site, chairs=1)
    other = make_patient(nurse, given_name="Second", family_name="Patientson")
    setup.screened(nurse, prescriber, patient)
    setup.screened(nurse, prescriber, other)
    first = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    second = services.create_plan(user=prescriber, patient=other, data=plan_data())
    a = first.sessions.get(number=1)
    b = second.sessions.get(number=1)
    zone = site.zone
    assert a.start.astimezone(zone).time().isoformat() == "09:00:00" and a.chair == chairs[0]
    # IV chair time 70 min (40 min infusion + 30 min observation): 09:00–10:10 occupies the 09:00, 09:30 and
    # 10:00 half-hour slots, so the one chair is next free at 10:30.
    assert b.start.astimezone(zone).time().isoformat() == "10:30:00" and b.chair == chairs[0]
    assert any("all 1 chairs booked" in c and "moved to 10:30" in c for c in second.conflicts)


def test_no_chairs_no_plan_and_fields_are_named(
    nurse: Any, prescriber: Any, patient: Any, setup: Any
) -> None:
    setup.screened(nurse, prescriber, patient)
    with pytest.raises(services.PlanValidationError) as caught:
        services.create_plan(
            user=prescriber,
            patient=patient,
            data=plan_data(start="2020-01-01", basis="heaviest", concentration_mg_ml="25"),
        )
    errors = caught.value.errors
    assert errors["start"] == "is in the past"
    assert errors["basis"] == "choose actual, ideal or adjusted"
    assert errors["concentration_mg_ml"] == "choose 10, 50 or 100 mg/mL"
    assert "no active chairs" in errors["site"]


def test_only_prescribers_create_plans(
    nurse: Any, prescriber: Any, patient: Any, site: Any, setup: Any, sign_in: Any
) -> None:
    setup.open_site(site)
    setup.screened(nurse, prescriber, patient)
    assert sign_in(Client(), nurse).get(f"/patients/{patient.pk}/plans/new/").status_code == 403
    client = sign_in(Client(), prescriber)
    form_page = client.get(f"/patients/{patient.pk}/plans/new/")
    assert form_page.status_code == 200
    assert "Ketamine (racemic) — <strong>Eligible</strong>" in form_page.content.decode()
    response = client.post(f"/patients/{patient.pk}/plans/new/", plan_data(prescribed_amount="2"))
    assert response.status_code == 422
    assert "outside the hard limit" in response.content.decode()
    response = client.post(f"/patients/{patient.pk}/plans/new/", plan_data())
    plan = Plan.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/plans/{plan.pk}/"
    page = client.get(f"/plans/{plan.pk}/").content.decode()
    assert "iv-trd-elektd version 1" in page and "35.0 mg" in page


def test_patient_calendar_and_site_calendar_front_desk_sees_no_clinical_details(
    nurse: Any, prescriber: Any, front_desk: Any, patient: Any, site: Any, setup: Any, sign_in: Any
) -> None:
    setup.open_site(site)
    setup.screened(nurse, prescriber, patient)
    services.create_plan(user=prescriber, patient=patient, data=plan_data())
    desk = sign_in(Client(), front_desk)
    chart = desk.get(f"/patients/{patient.pk}/").content.decode()
    # The treatment section only (the chart's change history belongs to the patients app).
    section = chart.split('class="card treatment-section"', 1)[1].split("</section>", 1)[0]
    assert "09:00–10:10" in section and "C1" in section
    assert "mg/kg" not in section and "iv-trd-elektd" not in section
    week = desk.get(f"/calendar/?site={site.pk}&week={next_monday().isoformat()}").content.decode()
    assert "Examplesson, Testa" in week and "09:00–10:10" in week and "C1" in week
    assert "mg/kg" not in week and "session 1" not in week
    clinician_chart = sign_in(Client(), prescriber).get(f"/patients/{patient.pk}/").content.decode()
    assert "0.5 mg/kg over 40 min" in clinician_chart


def test_another_organization_gets_404(
    nurse: Any, prescriber: Any, outsider: Any, patient: Any, site: Any, setup: Any, sign_in: Any
) -> None:
    setup.open_site(site)
    setup.screened(nurse, prescriber, patient)
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    client = sign_in(Client(), outsider)
    assert client.get(f"/plans/{plan.pk}/").status_code == 404
    week = client.get(f"/calendar/?week={next_monday().isoformat()}").content.decode()
    assert "Examplesson" not in week


# --- API -----------------------------------------------------------------------------------------------


def _post(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json")


def test_api_intake_screening_plan_round_trip_and_422s(
    nurse: Any, prescriber: Any, patient: Any, site: Any, setup: Any, sign_in: Any
) -> None:
    setup.open_site(site)
    nurse_api = sign_in(Client(), nurse)
    bad = _post(
        nurse_api, f"/api/assessment/patients/{patient.pk}/intakes", {"data": {"pregnancy": "perhaps"}}
    )
    assert bad.status_code == 422
    fields = {tuple(d["loc"]) for d in bad.json()["detail"]}
    assert ("body", "data.pregnancy") in fields and ("body", "data.assessed_on") in fields
    created = _post(
        nurse_api, f"/api/assessment/patients/{patient.pk}/intakes", {"data": setup.complete_intake()}
    )
    assert created.status_code == 201 and created.json()["version"] == 1
    intake_id = created.json()["id"]
    assert nurse_api.post(f"/api/assessment/intakes/{intake_id}/sign").status_code == 403
    pres_api = sign_in(Client(), prescriber)
    assert pres_api.post(f"/api/assessment/intakes/{intake_id}/sign").json()["signed_by"] == "prescriber1"
    run = nurse_api.post(f"/api/assessment/patients/{patient.pk}/screenings")
    assert run.status_code == 201 and run.json()["decisions"] == {
        "esketamine": "eligible",
        "ketamine": "eligible",
    }
    screening_id = run.json()["id"]
    assert nurse_api.get(f"/api/assessment/screenings/{screening_id}").json()["stale"] is False
    assessment.sign_screening(user=prescriber, screening=assessment.latest_screening(patient))  # type: ignore[arg-type]
    bad_plan = _post(
        pres_api, f"/api/treatment/patients/{patient.pk}/plans", plan_data(prescribed_amount="0.8", basis="x")
    )
    assert bad_plan.status_code == 422
    assert {d["loc"][1] for d in bad_plan.json()["detail"]} == {"basis"}
    made = _post(pres_api, f"/api/treatment/patients/{patient.pk}/plans", plan_data())
    assert made.status_code == 201
    body = made.json()
    assert body["protocol"] == {"id": "iv-trd-elektd", "version": 1} and body["dose_mg"] == 35.0
    # ELEKT-D induction 6 is booked; the optional maintenance example (clinical.md §1.4: weekly 4, every
    # 2 weeks 4, monthly 3) is proposed for the end-of-induction review, not booked (issue 14).
    assert len(body["sessions"]) == 6
    assert [(p["optional"], p["sessions"]) for p in body["proposals"]] == [(True, 4), (True, 4), (True, 3)]
    assert nurse_api.get(f"/api/treatment/plans/{body['id']}").status_code == 200
    assert _post(nurse_api, f"/api/treatment/patients/{patient.pk}/plans", plan_data()).status_code == 403


def test_bookings_share_a_fixed_half_hour_grid() -> None:
    # 14:00–15:10 UTC touches three half-hour slots (14:00, 14:30, 15:00); 14:10–14:40 touches two.
    start = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    keys = services._slot_keys(start, start + timedelta(minutes=70))
    assert [k.strftime("%H:%M") for k in keys] == ["14:00", "14:30", "15:00"]
    keys = services._slot_keys(start + timedelta(minutes=10), start + timedelta(minutes=40))
    assert [k.strftime("%H:%M") for k in keys] == ["14:00", "14:30"]


def test_site_calendar_explains_double_bookings_and_sessions_without_a_chair(
    nurse: Any, prescriber: Any, patient: Any, site: Any, setup: Any, sign_in: Any
) -> None:
    chairs = setup.open_site(site, chairs=1)
    setup.screened(nurse, prescriber, patient)
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    first = plan.sessions.get(number=1)
    # A session moved by hand onto the same chair, overlapping by 10 minutes, and one with no chair.
    PlanSession.objects.create(
        organization=plan.organization,
        plan=plan,
        patient=patient,
        site=site,
        chair=chairs[0],
        number=99,
        phase_name="manual",
        phase_kind="induction",
        week=1,
        start=first.start + timedelta(minutes=60),
        end=first.end + timedelta(minutes=60),
        dose_text="",
    )
    PlanSession.objects.filter(plan=plan, number=2).update(chair=None)
    page = sign_in(Client(), nurse).get(f"/calendar/?site={site.pk}&week={next_monday().isoformat()}")
    text = page.content.decode()
    # 09:00–10:10 and 10:00–11:10 (site time) overlap on chair C1.
    assert "double-booked: 09:00–10:10 overlaps 10:00–11:10" in text
    assert "booked without a chair: assign one" in text


def test_site_calendar_shows_sessions_scheduled_at_the_chair_outside_a_plan(
    nurse: Any,
    prescriber: Any,
    front_desk: Any,
    patient: Any,
    make_patient: Any,
    site: Any,
    setup: Any,
    sign_in: Any,
) -> None:
    """A session scheduled at the chair without a plan takes the chair like a course session: the calendar
    shows it in its chair's row (and a plan session on top of it as a double booking), not "free"."""
    from ketaclinic.chairside import services as chairside

    chairs = setup.open_site(site, chairs=1)
    setup.screened(nurse, prescriber, patient)
    services.create_plan(user=prescriber, patient=patient, data=plan_data())  # Monday 09:00–10:10, C1
    walk_in = make_patient(nurse, given_name="Walter", family_name="Inman")
    monday = datetime.combine(next_monday(), datetime.min.time(), tzinfo=site.zone)
    session = chairside.schedule_session(
        user=nurse,
        patient=walk_in,
        protocol_id="iv-trd-elektd",
        scheduled_at=monday.replace(hour=9, minute=30),
        planned_dose_mg=35,
        chair=chairs[0],
        chair_override_reason="Course patient leaves early today",  # the chair is taken: overridden
    )
    week = f"/calendar/?site={site.pk}&week={next_monday().isoformat()}"
    text = sign_in(Client(), nurse).get(week).content.decode()
    monday_card = text.split("calendar-day", 2)[1]
    assert 'Inman, Walter · <span class="muted">at the chair, no plan</span>' in monday_card
    assert f"/sessions/{session.pk}/" in monday_card
    assert "double-booked: 09:00–10:10 overlaps 09:30–" in monday_card
    desk = sign_in(Client(), front_desk).get(week).content.decode()
    assert "Inman, Walter" in desk and f"/sessions/{session.pk}/" not in desk
