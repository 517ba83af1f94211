"""The pre-dose gate reads the patient's signed, current screening from the assessment app."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from ketaclinic.assessment import services as assessment
from ketaclinic.assessment.models import ScreeningOverride
from ketaclinic.chairside import services

from .conftest import GOOD_ESK_ANSWERS


def _screened(nurse: Any, prescriber: Any, patient: Any, **overrides: Any) -> Any:
    from tests.treatment import conftest as module  # the complete, eligible intake used by the plan tests

    return module.screened(nurse, prescriber, patient, **overrides)


def _screening_item(session: Any, nurse: Any) -> dict[str, Any]:
    check = services.evaluate_gate(user=nurse, session=session, answers=GOOD_ESK_ANSWERS)
    return next(i for i in check.items if i["key"] == "screening")


def test_a_signed_eligible_screening_passes_the_gate_item(
    esk_session: Any, nurse: Any, prescriber: Any
) -> None:
    _screened(nurse, prescriber, esk_session.patient)
    assert _screening_item(esk_session, nurse)["status"] == "pass"


def test_an_unsigned_or_stale_screening_fails_it(esk_session: Any, nurse: Any, prescriber: Any) -> None:
    _screened(nurse, prescriber, esk_session.patient, sign=False)
    assert _screening_item(esk_session, nurse)["status"] == "fail"


def test_a_screening_that_excludes_the_drug_fails_until_overridden(
    esk_session: Any, nurse: Any, prescriber: Any
) -> None:
    screening = _screened(nurse, prescriber, esk_session.patient, uncontrolled_hypertension="yes")
    assert _screening_item(esk_session, nurse)["status"] == "fail"
    assessment.override_screening(
        user=prescriber,
        screening=screening,
        drug="esketamine",
        reason="BP controlled on amlodipine since October, cardiology agrees",
    )
    assert _screening_item(esk_session, nurse)["status"] == "pass"


def test_an_override_of_an_esketamine_label_contraindication_does_not_pass_the_gate(
    esk_session: Any, nurse: Any, prescriber: Any
) -> None:
    screening = _screened(nurse, prescriber, esk_session.patient, intracerebral_haemorrhage="yes")
    # A row recorded before such overrides were refused (the service refuses them now).
    ScreeningOverride.objects.create(
        screening=screening,
        drug="esketamine",
        reason="Remote small haemorrhage, neurology cleared treatment",
        overridden_by=prescriber,
        overridden_at=timezone.now(),
    )
    assert _screening_item(esk_session, nurse)["status"] == "fail"
