"""Intakes and treatment plans for the Condition and CarePlan tests, built through the services.

Cara (owner organization): intake v1 (indication TRD; diagnoses TRD, MDD with suicidal ideation, PTSD),
  signed and screened; an IV ketamine plan (``iv-trd-elektd``) from next Monday.
  Conditions: MDD 370143000, suicidal ideation 6471006, PTSD 47505003 and TRD (370143000 + local ``trd``).
Dan (owner organization): intake v1 (indication CRPS; diagnoses fibromyalgia), not signed: provisional.
  Then v2 (same, plus neuropathic pain), still unsigned: only v2's three Conditions are served.
Theirs (another organization): a signed intake (TRD, PTSD) and a plan of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.utils import timezone
from tests.treatment.conftest import complete_intake, open_site, screened

from ketaclinic.assessment import services as assessment
from ketaclinic.treatment import services as treatment


def next_monday() -> date:
    today = timezone.localdate()
    return today + timedelta(days=7 - today.weekday())


@dataclass
class Courses:
    cara: Any
    dan: Any
    theirs_patient: Any
    cara_intake: Any
    dan_intake: Any
    dan_old_intake: Any
    theirs_intake: Any
    plan: Any
    theirs_plan: Any


def plan_for(prescriber: Any, patient: Any, protocol: str = "iv-trd-elektd") -> Any:
    data = {"protocol": protocol, "start": next_monday().isoformat(), "preferred_time": "09:00"}
    return treatment.create_plan(user=prescriber, patient=patient, data=data)


def build(
    *,
    nurse: Any,
    prescriber: Any,
    site: Any,
    make_patient: Any,
    outsider: Any,
    outsider_prescriber: Any,
    other_site: Any,
) -> Courses:
    open_site(site)
    open_site(other_site)
    cara = make_patient(nurse, given_name="Cara")
    screening = screened(
        nurse, prescriber, cara, indication="trd", diagnoses=["trd", "mdd_suicidal_ideation", "ptsd"]
    )
    plan = plan_for(prescriber, cara)
    dan = make_patient(nurse, given_name="Dan")
    dan_old = assessment.save_intake(
        user=nurse,
        patient=dan,
        data=complete_intake(indication="crps", diagnoses=["fibromyalgia"]),
        base_version=None,
    )
    dan_intake = assessment.save_intake(
        user=nurse,
        patient=dan,
        data=complete_intake(indication="crps", diagnoses=["fibromyalgia", "neuropathic_pain"]),
        base_version=1,
    )
    theirs = make_patient(outsider, given_name="Otto", family_name="Orgpatient")
    theirs_screening = screened(outsider, outsider_prescriber, theirs, diagnoses=["trd", "ptsd"])
    theirs_plan = plan_for(outsider_prescriber, theirs)
    return Courses(
        cara=cara,
        dan=dan,
        theirs_patient=theirs,
        cara_intake=screening.intake,
        dan_intake=dan_intake,
        dan_old_intake=dan_old,
        theirs_intake=theirs_screening.intake,
        plan=plan,
        theirs_plan=theirs_plan,
    )
