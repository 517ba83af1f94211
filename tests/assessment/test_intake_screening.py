"""Intake versions, signing, the keyboard form, screening with reasons and sources, staleness and overrides."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from django.test import Client

from ketaclinic.assessment import services
from ketaclinic.assessment.intake_data import IntakeDataError, clean_intake, snapshot_from_data
from ketaclinic.assessment.models import Intake, Screening, ScreeningOverride
from ketaclinic.audit.models import AuditEntry
from ketaclinic.clinical.screening_model import Answer

TODAY = date(2026, 11, 27)

ICH = {"assessed_on": "2026-11-20", "indication": "trd", "intracerebral_haemorrhage": "yes"}


def form_post(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "assessed_on": "2026-11-20",
        "indication": "trd",
        "diagnoses": ["trd"],
        "hepatic_impairment": "unknown",
        "medications_recorded": "unknown",
        "trials_recorded": "unknown",
    }
    data.update(overrides)
    return data


# --- pure mapping (no database) --------------------------------------------------------------------------


def test_unknown_stays_distinct_from_no_and_collections_distinguish_none_from_not_recorded() -> None:
    cleaned = clean_intake(
        {"assessed_on": "2026-11-20", "pregnancy": "no", "medications": [], "prior_trials": None},
        today=TODAY,
    )
    snap = snapshot_from_data(cleaned, age_years=46)
    assert snap.history.pregnancy is Answer.NO
    assert snap.history.breastfeeding is Answer.UNKNOWN  # not given: unknown, not no
    assert snap.medications == ()  # recorded: none
    assert snap.prior_trials is None  # not recorded


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(IntakeDataError) as caught:
        clean_intake(
            {
                "assessed_on": "2027-01-01",
                "pregnancy": "maybe",
                "moca_score": 31,
                "systolic_bp": 120,
                "diastolic_bp": 130,
                "baseline_scales": {"phq9": 28, "hamd": 3},
                "medications": [{"name": "", "classes": ["benzo"]}],
                "prior_trials": [{"drug": "sertraline", "outcome": "great"}],
                "colour": "blue",
            },
            today=TODAY,
        )
    errors = caught.value.errors
    assert errors["assessed_on"] == "is in the future"
    assert errors["pregnancy"] == "answer yes, no or unknown"
    assert errors["moca_score"] == "31 is outside 0–30"
    assert errors["diastolic_bp"] == "must be lower than the systolic pressure"
    assert errors["baseline_scales.phq9"] == "28 is outside 0–27"  # PHQ-9 runs 0–27 (clinical.md §8)
    assert "unknown scale" in errors["baseline_scales.hamd"]
    assert errors["medications[0].name"] == "required"
    assert "unknown class benzo" in errors["medications[0].classes"]
    assert errors["prior_trials[0].outcome"].startswith("use no_response")
    assert errors["colour"] == "unknown field"


# --- the app -------------------------------------------------------------------------------------------


def test_nurse_enters_intake_by_form_each_save_is_a_new_version(
    nurse: Any, patient: Any, sign_in: Any
) -> None:
    client = sign_in(Client(), nurse)
    page = client.get(f"/patients/{patient.pk}/intake/edit/")
    assert page.status_code == 200
    response = client.post(
        f"/patients/{patient.pk}/intake/edit/",
        form_post(
            intracerebral_haemorrhage="yes",
            medications_recorded="recorded",
            medications_text="clonazepam | benzodiazepine | 20\nsertraline | ssri",
            trials_recorded="recorded",
            trials_text="sertraline | yes | 8 | yes | no_response | yes",
            scale_phq9="18",
        ),
    )
    assert response.status_code == 302
    first = Intake.objects.get(patient=patient)
    assert first.version == 1 and first.age_years == 46  # born 1980-05-17, assessed 2026-11-20
    assert first.data["medications"] == [
        {"name": "clonazepam", "classes": ["benzodiazepine"], "diazepam_equivalent_mg_per_day": 20.0},
        {"name": "sertraline", "classes": ["ssri"], "diazepam_equivalent_mg_per_day": None},
    ]
    assert first.data["prior_trials"][0]["weeks"] == 8.0
    assert first.data["baseline_scales"] == {"phq9": 18.0}
    response = client.post(
        f"/patients/{patient.pk}/intake/edit/", form_post(base_version="1", intracerebral_haemorrhage="no")
    )
    assert response.status_code == 302
    versions = list(Intake.objects.filter(patient=patient).order_by("version"))
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].data["intracerebral_haemorrhage"] == "yes"  # the earlier version is kept unchanged
    assert versions[1].data["intracerebral_haemorrhage"] == "no"
    assert versions[0].fingerprint != versions[1].fingerprint
    assert AuditEntry.objects.filter(object_type="Intake", action__in=["add", "change"]).count() == 2


def test_bad_medication_lines_rerender_with_line_numbers_and_nothing_is_saved(
    nurse: Any, patient: Any, sign_in: Any
) -> None:
    client = sign_in(Client(), nurse)
    response = client.post(
        f"/patients/{patient.pk}/intake/edit/",
        form_post(
            medications_recorded="recorded",
            medications_text="clonazepam | benzo\nonly a name",
            scale_phq9="40",
        ),
    )
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert any("line 1" in e and "unknown class benzo" in e for e in errors["medications_text"])
    assert any("line 2" in e for e in errors["medications_text"])
    assert "40 is outside 0–27" in errors["scale_phq9"][0]
    assert not Intake.objects.filter(patient=patient).exists()


def test_stale_base_version_is_a_conflict(nurse: Any, prescriber: Any, patient: Any, sign_in: Any) -> None:
    services.save_intake(user=nurse, patient=patient, data=ICH, base_version=None)
    client = sign_in(Client(), prescriber)
    response = client.post(f"/patients/{patient.pk}/intake/edit/", form_post())  # started from nothing
    assert response.status_code == 409
    assert Intake.objects.filter(patient=patient).count() == 1


def test_only_prescribers_sign_and_who_when_is_recorded(
    nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    intake = services.save_intake(user=nurse, patient=patient, data=ICH, base_version=None)
    assert sign_in(Client(), nurse).post(f"/intakes/{intake.pk}/sign/").status_code == 403
    with pytest.raises(services.NotAllowed):
        services.sign_intake(user=nurse, intake=intake)
    response = sign_in(Client(), prescriber).post(f"/intakes/{intake.pk}/sign/")
    assert response.status_code == 302
    intake.refresh_from_db()
    assert intake.signed_by == prescriber and intake.signed_at is not None


def test_screening_needs_a_signed_intake(nurse: Any, patient: Any) -> None:
    services.save_intake(user=nurse, patient=patient, data=ICH, base_version=None)
    with pytest.raises(services.AssessmentError, match="sign the latest intake"):
        services.run_screening(user=nurse, patient=patient)


def test_ich_is_not_eligible_for_esketamine_with_reason_and_source(
    nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    intake = services.save_intake(user=nurse, patient=patient, data=ICH, base_version=None)
    services.sign_intake(user=prescriber, intake=intake)
    client = sign_in(Client(), prescriber)
    response = client.post(f"/patients/{patient.pk}/screening/run/")
    screening = Screening.objects.get(patient=patient)
    assert response.status_code == 302 and response["Location"] == f"/screenings/{screening.pk}/"
    assert screening.decisions["esketamine"] == "not_eligible"
    assert screening.fingerprint == intake.fingerprint
    ich = [f for f in screening.findings if f["code"] == "intracerebral_haemorrhage"]
    assert ich and all(f["severity"] == "contraindicated" for f in ich)
    page = client.get(f"/screenings/{screening.pk}/").content.decode()
    assert "Not eligible" in page
    assert ich[0]["reason"] in page.replace("&#x27;", "'")
    assert "clinical.md §2.5" in page
    assert "Stale" not in page


def test_changing_the_intake_makes_the_screening_stale(
    nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    intake = services.save_intake(user=nurse, patient=patient, data=ICH, base_version=None)
    services.sign_intake(user=prescriber, intake=intake)
    screening = services.run_screening(user=nurse, patient=patient)
    assert not services.is_stale(screening)
    services.save_intake(user=nurse, patient=patient, data=dict(ICH, pregnancy="no"), base_version=1)
    assert services.is_stale(screening)
    page = sign_in(Client(), prescriber).get(f"/screenings/{screening.pk}/").content.decode()
    assert "Stale: the intake changed" in page
    with pytest.raises(services.AssessmentError, match="run the screening again"):
        services.sign_screening(user=prescriber, screening=screening)


def test_override_needs_a_prescriber_and_a_written_reason_and_is_audited(
    nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    intake = services.save_intake(user=nurse, patient=patient, data=ICH, base_version=None)
    services.sign_intake(user=prescriber, intake=intake)
    screening = services.run_screening(user=nurse, patient=patient)
    url = f"/screenings/{screening.pk}/override/"
    # Racemic ketamine: the haemorrhage item is an extrapolated default, overridable with a reason (an
    # esketamine label contraindication is not: tests/assessment/test_screening_overrides.py).
    assert sign_in(Client(), nurse).post(url, {"drug": "ketamine", "reason": "x" * 20}).status_code == 403
    client = sign_in(Client(), prescriber)
    response = client.post(url, {"drug": "ketamine", "reason": "ok"})
    assert response.status_code == 422
    assert "at least 10 characters" in response.content.decode()
    assert not ScreeningOverride.objects.exists()
    reason = "Remote haemorrhage 1998, neurology cleared"
    assert client.post(url, {"drug": "ketamine", "reason": reason}).status_code == 302
    override = ScreeningOverride.objects.get()
    assert (override.drug, override.reason, override.overridden_by) == ("ketamine", reason, prescriber)
    entry = AuditEntry.objects.get(category="clinical-override")
    assert reason in entry.after and entry.patient_id == patient.pk


def test_another_organization_gets_404(
    outsider: Any, nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    intake = services.save_intake(user=nurse, patient=patient, data=ICH, base_version=None)
    services.sign_intake(user=prescriber, intake=intake)
    screening = services.run_screening(user=nurse, patient=patient)
    client = sign_in(Client(), outsider)
    for url in (
        f"/patients/{patient.pk}/intake/",
        f"/intakes/{intake.pk}/",
        f"/screenings/{screening.pk}/",
    ):
        assert client.get(url).status_code == 404, url


def test_front_desk_cannot_open_intakes(front_desk: Any, patient: Any, sign_in: Any) -> None:
    client = sign_in(Client(), front_desk)
    assert client.get(f"/patients/{patient.pk}/intake/").status_code == 403
    chart = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "Intake and eligibility" not in chart


def test_earlier_versions_stay_readable_and_the_api_reads_the_latest(
    nurse: Any, patient: Any, sign_in: Any
) -> None:
    first = services.save_intake(user=nurse, patient=patient, data=ICH, base_version=None)
    services.save_intake(
        user=nurse, patient=patient, data=dict(ICH, intracerebral_haemorrhage="no"), base_version=1
    )
    client = sign_in(Client(), nurse)
    old = client.get(f"/intakes/{first.pk}/").content.decode()
    assert "An earlier version" in old and "History of intracerebral haemorrhage" in old
    latest = client.get(f"/api/assessment/patients/{patient.pk}/intakes/latest").json()
    assert latest["version"] == 2 and latest["data"]["intracerebral_haemorrhage"] == "no"
    # TRD is coded as MDD 370143000 with the coding marked unconfirmed (interop.md §1.2, conditions.py).
    assert latest["coded_diagnoses"][0]["codings"][0] == {
        "code": "370143000",
        "display": "Major depressive disorder (disorder)",
        "confirmed": False,
        "note": latest["coded_diagnoses"][0]["codings"][0]["note"],
    }
    stale = client.post(
        f"/api/assessment/patients/{patient.pk}/intakes",
        data='{"base_version": 1, "data": {"assessed_on": "2026-11-20"}}',
        content_type="application/json",
    )
    assert stale.status_code == 409 and Intake.objects.filter(patient=patient).count() == 2


def test_the_audit_records_what_changed_between_versions(nurse: Any, patient: Any) -> None:
    services.save_intake(user=nurse, patient=patient, data=ICH, base_version=None)
    services.save_intake(user=nurse, patient=patient, data=dict(ICH, pregnancy="no"), base_version=1)
    first, second = AuditEntry.objects.filter(object_type="Intake").order_by("seq")
    # A first version: only the answered fields (unknowns and empties are left out).
    assert json.loads(first.after) == {
        "version": 1,
        "assessed_on": "2026-11-20",
        "indication": "trd",
        "intracerebral_haemorrhage": "yes",
    }
    assert json.loads(second.before) == {"version": 1, "pregnancy": "unknown"}
    assert json.loads(second.after) == {"version": 2, "pregnancy": "no"}
