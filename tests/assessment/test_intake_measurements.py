"""The intake's measurements decide with the history (issue 14, *Why*: a measured 190/115 passed screening as
"eligible with cautions" because the history said "no uncontrolled hypertension"): a BP at or above 180/110
stops both drugs until a prescriber reviews it, the contradiction is shown on the screening page, and
childbearing potential is recorded with its reason. Pages are driven with CSRF-enforcing clients."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.test import Client
from tests.treatment.conftest import complete_intake

from ketaclinic.assessment import services
from ketaclinic.assessment.intake_data import IntakeDataError, clean_intake, snapshot_from_data
from ketaclinic.assessment.models import Intake, Screening
from ketaclinic.clinical.conditions import Drug, Route
from ketaclinic.clinical.screening_model import Answer, NotChildbearingReason

from .test_screening_overrides import csrf_client, token_from

TODAY = date(2026, 11, 27)


def intake_form(**changes: Any) -> dict[str, Any]:
    """The complete intake as the form posts it (every item answered)."""
    data = complete_intake()
    post: dict[str, Any] = {
        k: v for k, v in data.items() if isinstance(v, str) and k not in ("medications", "prior_trials")
    }
    post.update(
        diagnoses=data["diagnoses"],
        systolic_bp=data["systolic_bp"],
        diastolic_bp=data["diastolic_bp"],
        heart_rate=data["heart_rate"],
        stop_bang_score=data["stop_bang_score"],
        moca_score=data["moca_score"],
        scale_phq9="18",
        medications_recorded="recorded",
        medications_text="",
        trials_recorded="recorded",
        trials_text="sertraline | yes | 8 | yes | no_response | yes\nvenlafaxine | yes | 8 | yes | no_response | yes",
    )
    post.update(changes)
    return post


def save_by_form(client: Client, patient: Any, **changes: Any) -> Any:
    url = f"/patients/{patient.pk}/intake/edit/"
    token = token_from(client.get(url).content.decode())
    return client.post(url, {**intake_form(**changes), "csrfmiddlewaretoken": token})


def sign_and_screen(prescriber_client: Client, patient: Any) -> Screening:
    intake = Intake.objects.filter(patient=patient).first()
    assert intake is not None
    page = prescriber_client.get(f"/patients/{patient.pk}/intake/").content.decode()
    signed = prescriber_client.post(f"/intakes/{intake.pk}/sign/", {"csrfmiddlewaretoken": token_from(page)})
    assert signed.status_code == 302
    page = prescriber_client.get(f"/patients/{patient.pk}/intake/").content.decode()
    ran = prescriber_client.post(
        f"/patients/{patient.pk}/screening/run/", {"csrfmiddlewaretoken": token_from(page)}
    )
    assert ran.status_code == 302
    screening = Screening.objects.filter(patient=patient).first()
    assert screening is not None
    return screening


# --- the stored intake -----------------------------------------------------------------------------------


def test_childbearing_potential_is_yes_or_no_with_its_reason() -> None:
    cleaned = clean_intake(
        {
            "assessed_on": "2026-11-20",
            "childbearing_potential": "no",
            "childbearing_potential_reason": "other",
            "childbearing_potential_note": "Born without a uterus",
        },
        today=TODAY,
    )
    recorded = snapshot_from_data(cleaned, age_years=30).childbearing_potential
    assert (recorded.answer, recorded.reason) == (Answer.NO, NotChildbearingReason.OTHER)
    assert recorded.reason_text == "other: Born without a uterus"
    # An intake saved before the question was asked reads as unknown, not no.
    old = snapshot_from_data({"assessed_on": "2026-11-20"}, age_years=30).childbearing_potential
    assert old.answer is Answer.UNKNOWN


@pytest.mark.parametrize(
    ("given", "field", "message"),
    [
        ({"childbearing_potential": "no"}, "childbearing_potential_reason", "say why the patient cannot"),
        (
            {"childbearing_potential": "yes", "childbearing_potential_reason": "post_menopausal"},
            "childbearing_potential_reason",
            "only when childbearing potential is no",
        ),
        (
            {"childbearing_potential": "no", "childbearing_potential_reason": "menopause"},
            "childbearing_potential_reason",
            "choose post_menopausal, permanently_sterile, male_at_birth, other",
        ),
        (
            {"childbearing_potential": "no", "childbearing_potential_reason": "other"},
            "childbearing_potential_note",
            "say which other reason",
        ),
        (
            {
                "childbearing_potential": "no",
                "childbearing_potential_reason": "other",
                "childbearing_potential_note": "x" * 201,
            },
            "childbearing_potential_note",
            "201 characters: at most 200",
        ),
        ({"systolic_bp": 190, "diastolic_bp": 115, "repeat_systolic_bp": 150}, "repeat_diastolic_bp", "both"),
        (
            {"repeat_systolic_bp": 150, "repeat_diastolic_bp": 92},
            "repeat_systolic_bp",
            "first blood pressure",
        ),
        (
            {"systolic_bp": 190, "diastolic_bp": 115, "repeat_systolic_bp": 92, "repeat_diastolic_bp": 150},
            "repeat_diastolic_bp",
            "must be lower than the systolic",
        ),
    ],
)
def test_bad_childbearing_and_repeat_readings_are_refused_naming_the_field(
    given: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(IntakeDataError) as caught:
        clean_intake({"assessed_on": "2026-11-20", **given}, today=TODAY)
    assert message in caught.value.errors[field]


# --- the pages -------------------------------------------------------------------------------------------


def test_a_measured_190_115_with_no_uncontrolled_hypertension_is_not_eligible_and_the_page_says_why(
    nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    desk = csrf_client(sign_in, nurse)
    rx = csrf_client(sign_in, prescriber)
    saved = save_by_form(desk, patient, uncontrolled_hypertension="no", systolic_bp="190", diastolic_bp="115")
    assert saved.status_code == 302
    screening = sign_and_screen(rx, patient)
    assert screening.decisions == {"esketamine": "not_eligible", "ketamine": "not_eligible"}
    codes = {f["code"] for f in screening.findings}
    assert {"baseline_bp_stop", "contradiction:uncontrolled_hypertension"} <= codes
    page = rx.get(f"/screenings/{screening.pk}/").content.decode()
    clash = page[page.index('id="contradictions"') :]
    clash = clash[: clash.index("</section>")]
    assert "History and measurement disagree" in clash
    assert "History says no uncontrolled hypertension, but BP was measured at 190/115" in clash
    assert "Caution: history and measurement disagree" in page  # in each drug's findings too
    esk = page[page.index('id="drug-esketamine"') :]
    assert "Not eligible" in esk[:200]
    assert "190/115 at intake is at or above 180/110: not eligible until a prescriber reviews it" in esk
    assert "default, unconfirmed" in esk and "clinical.md §11" in esk
    signed = rx.post(f"/screenings/{screening.pk}/sign/", {"csrfmiddlewaretoken": token_from(page)})
    assert signed.status_code == 302
    with pytest.raises(services.AssessmentError, match="not eligible"):
        services.plan_clearance(patient=patient, drug=Drug.KETAMINE, route=Route.IV)

    # A prescriber's recorded review decision clears it for the drug (not an esketamine label item).
    reviewed = rx.post(
        f"/screenings/{screening.pk}/override/",
        {
            "csrfmiddlewaretoken": token_from(page),
            "drug": "ketamine",
            "reason": "White-coat BP; home readings 128/82 over two weeks, GP letter on file",
        },
    )
    assert reviewed.status_code == 302
    assert services.plan_clearance(patient=patient, drug=Drug.KETAMINE, route=Route.IV).override is not None
    with pytest.raises(services.AssessmentError, match="not eligible"):
        services.plan_clearance(patient=patient, drug=Drug.ESKETAMINE, route=Route.INTRANASAL)


def test_a_repeat_reading_below_the_stop_on_a_new_intake_version_clears_it(
    nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    desk = csrf_client(sign_in, nurse)
    rx = csrf_client(sign_in, prescriber)
    save_by_form(desk, patient, systolic_bp="190", diastolic_bp="115")
    first = sign_and_screen(rx, patient)
    assert first.decisions["esketamine"] == "not_eligible"
    again = save_by_form(
        desk,
        patient,
        base_version="1",
        systolic_bp="190",
        diastolic_bp="115",
        repeat_systolic_bp="132",
        repeat_diastolic_bp="84",
    )
    assert again.status_code == 302
    screening = sign_and_screen(rx, patient)
    assert screening.decisions == {
        "esketamine": "eligible_with_cautions",
        "ketamine": "eligible_with_cautions",
    }
    page = rx.get(f"/screenings/{screening.pk}/").content.decode()
    assert "BP 190/115 at intake was at or above 180/110; re-measured 132/84, within 140/90" in page
    assert 'id="contradictions"' not in page  # 132/84 agrees with "no uncontrolled hypertension"
    intake = rx.get(f"/patients/{patient.pk}/intake/").content.decode()
    assert "Repeat systolic BP after rest (mmHg)" in intake and "132" in intake


def test_childbearing_potential_on_the_form_and_the_chart_reads_in_words(
    nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    desk = csrf_client(sign_in, nurse)
    refused = save_by_form(desk, patient, childbearing_potential="no", childbearing_potential_reason="")
    assert refused.status_code == 422
    assert "say why the patient cannot become pregnant" in refused.content.decode()
    assert not Intake.objects.filter(patient=patient).exists()
    saved = save_by_form(
        desk, patient, childbearing_potential="no", childbearing_potential_reason="permanently_sterile"
    )
    assert saved.status_code == 302
    page = desk.get(f"/patients/{patient.pk}/intake/").content.decode()
    assert "Hysterectomy, or both ovaries or both tubes removed" in page
    assert "permanently_sterile" not in page
    unknown = save_by_form(
        desk, patient, base_version="1", childbearing_potential="unknown", childbearing_potential_reason=""
    )
    assert unknown.status_code == 302
    screening = sign_and_screen(csrf_client(sign_in, prescriber), patient)
    assert screening.decisions == {"esketamine": "incomplete", "ketamine": "incomplete"}
    assert any(f["code"] == "missing:childbearing_potential" for f in screening.findings)


def test_another_organization_cannot_run_or_read_the_screening(
    nurse: Any, prescriber: Any, patient: Any, outsider: Any, front_desk: Any, sign_in: Any
) -> None:
    save_by_form(csrf_client(sign_in, nurse), patient, systolic_bp="190", diastolic_bp="115")
    screening = sign_and_screen(csrf_client(sign_in, prescriber), patient)
    stranger = csrf_client(sign_in, outsider)
    assert stranger.get(f"/screenings/{screening.pk}/").status_code == 404
    assert stranger.get(f"/patients/{patient.pk}/intake/edit/").status_code == 404
    assert csrf_client(sign_in, front_desk).get(f"/screenings/{screening.pk}/").status_code == 403


def test_a_control_character_anywhere_in_an_intake_is_refused_naming_where() -> None:
    """Issue 15: NUL and other control characters are refused in every text input (the API's intake is a
    free JSON object, so the intake's own cleaning judges it); tabs and line breaks in notes are kept."""
    with pytest.raises(IntakeDataError) as refused:
        clean_intake(
            {
                "assessed_on": "2026-11-20",
                "notes": "first line\nsecond\tline\x00",
                "medications": [{"name": "sertraline\x1b[0m"}],
            },
            today=TODAY,
        )
    assert "NUL" in refused.value.errors["notes"]
    assert "escape" in refused.value.errors["medications.0.name"]
    kept = clean_intake({"assessed_on": "2026-11-20", "notes": "line one\n\tline two"}, today=TODAY)
    assert kept["notes"] == "line one\n\tline two"
