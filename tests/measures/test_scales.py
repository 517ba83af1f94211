"""Rating scales in the app: storage with the computed scores, bad input, audit, isolation, API."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from ketaclinic.audit.models import AuditEntry
from ketaclinic.measures import services
from ketaclinic.measures.models import ScaleAdministration

PHQ9_MILD = {str(i): 1 for i in range(1, 10)} | {"9": 0}  # 8 × 1 + 0 = 8 → mild (5–9)


def _post(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json")


def test_an_administration_keeps_answers_scores_who_and_when(nurse: Any, patient: Any) -> None:
    saved = services.record_administration(user=nurse, patient=patient, instrument="phq9", answers=PHQ9_MILD)
    stored = ScaleAdministration.objects.get(pk=saved.pk)
    assert stored.total == 8 and stored.band == "Mild" and stored.flags == []
    assert stored.answers["1"] == 1 and stored.instrument_version
    assert stored.entered_by == nurse and stored.entered_by_kind == "clinician"
    entry = AuditEntry.objects.get(object_id=str(saved.pk), action="add")
    assert entry.patient_id == patient.pk and entry.category == "rating-scales"


def test_bad_answers_name_each_item_and_store_nothing(nurse: Any, patient: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    before = (ScaleAdministration.objects.count(), AuditEntry.objects.count())
    answers = {str(i): 1 for i in range(1, 8)} | {"8": 4}  # item 8 out of range, item 9 missing
    response = _post(client, f"/api/patients/{patient.pk}/scales", {"instrument": "phq9", "answers": answers})
    assert response.status_code == 422
    detail = {tuple(d["loc"]): d["msg"] for d in response.json()["detail"]}
    assert "4 is outside 0–3" in detail[("body", "answers.8")]
    assert "missing" in detail[("body", "answers.9")]
    assert (ScaleAdministration.objects.count(), AuditEntry.objects.count()) == before


def test_html_entry_shows_every_bad_item(nurse: Any, patient: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    response = client.post(f"/patients/{patient.pk}/scales/new/gad7/", {"item_1": "3"})
    assert response.status_code == 422
    html = response.content.decode()
    for item in range(2, 8):
        assert f"item {item}" in html
    assert ScaleAdministration.objects.count() == 0


def test_api_submit_and_list(nurse: Any, patient: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    madrs = {str(i): 3 for i in range(1, 11)}  # 10 × 3 = 30 → moderate (20–34)
    created = _post(client, f"/api/patients/{patient.pk}/scales", {"instrument": "madrs", "answers": madrs})
    assert created.status_code == 201
    assert created.json()["total"] == 30 and created.json()["band"].lower().startswith("moderate")
    listed = client.get(f"/api/patients/{patient.pk}/scales").json()
    assert [a["instrument"] for a in listed] == ["madrs"]


def test_scales_of_another_organization_are_unreachable(
    nurse: Any, sign_in: Any, outsider_patient: Any
) -> None:
    client = sign_in(Client(), nurse)
    assert client.get(f"/api/patients/{outsider_patient.pk}/scales").status_code == 404
    assert client.get(f"/patients/{outsider_patient.pk}/scales/").status_code == 404
    response = _post(
        client, f"/api/patients/{outsider_patient.pk}/scales", {"instrument": "phq9", "answers": PHQ9_MILD}
    )
    assert response.status_code == 404 and ScaleAdministration.objects.count() == 0


def test_front_desk_cannot_read_scores(front_desk: Any, patient: Any, sign_in: Any, nurse: Any) -> None:
    services.record_administration(user=nurse, patient=patient, instrument="phq9", answers=PHQ9_MILD)
    client = sign_in(Client(), front_desk)
    assert client.get(f"/api/patients/{patient.pk}/scales").status_code == 403
    assert client.get(f"/patients/{patient.pk}/scales/").status_code == 403
    chart = client.get(f"/patients/{patient.pk}/").content.decode()
    assert (
        "PHQ-9" not in chart.split("Self-report link")[1].split("Change history")[0]
        or "trajectory-phq9" not in chart
    )


def test_trajectory_marks_response_and_remission(nurse: Any, patient: Any, sign_in: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    start = timezone.now() - timedelta(days=30)
    for day, total in [(0, 20), (7, 14), (14, 9), (21, 4)]:
        # PHQ-9 answers summing to `total` with item 9 = 0: fill items 1–8 with up to 3 each.
        answers, left = {}, total
        for item in range(1, 9):
            answers[str(item)] = min(3, left)
            left -= answers[str(item)]
        answers["9"] = 0
        services.record_administration(
            user=nurse,
            patient=patient,
            instrument="phq9",
            answers=answers,
            administered_at=start + timedelta(days=day),
        )
    rows = services.trajectory("phq9", list(ScaleAdministration.objects.order_by("administered_at"))).rows
    # baseline 20: 14 is −30 % (no response), 9 is −55 % (response, not <5), 4 is −80 % (response and remission)
    assert [(r.response, r.remission) for r in rows] == [
        (None, None),
        (False, False),
        (True, False),
        (True, True),
    ]
    page = sign_in(Client(), nurse).get(f"/patients/{patient.pk}/").content.decode()
    assert 'id="trajectory-phq9"' in page and "<svg" in page
    assert "baseline 20" in page and "response" in page and "Remission" in page
    assert page.count('class="tag ok">remission') == 1


def test_trajectory_marks_the_dates_of_treatment_sessions(nurse: Any, patient: Any, sign_in: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from ketaclinic.chairside.models import TreatmentSession

    start = timezone.now() - timedelta(days=20)
    for day, total in [(0, 18), (14, 8)]:
        answers = {str(i): 0 for i in range(1, 10)}
        for i in range(1, 9):
            answers[str(i)] = min(3, max(0, total - 3 * (i - 1)))
        services.record_administration(
            user=nurse,
            patient=patient,
            instrument="phq9",
            answers=answers,
            administered_at=start + timedelta(days=day),
        )
    for day in (2, 5):
        TreatmentSession.objects.create(
            organization_id=patient.organization_id,
            patient=patient,
            site=patient.site,
            protocol_id="iv-trd-elektd",
            drug="ketamine",
            route="iv",
            planned_dose_mg=35,
            scheduled_at=start + timedelta(days=day),
            dose_started_at=start + timedelta(days=day),
            status="discharged",
            created_by=nurse,
        )
    section = (
        sign_in(Client(), nurse)
        .get(f"/patients/{patient.pk}/")
        .content.decode()
        .split('id="trajectory-phq9"')[1]
    )
    assert "session 1" in section and "session 2" in section


def test_a_scale_can_be_tied_to_one_of_the_patients_sessions_only(
    nurse: Any, patient: Any, outsider_patient: Any
) -> None:
    import uuid

    import pytest

    with pytest.raises(services.ScaleInputError, match="not a treatment session"):
        services.record_administration(
            user=nurse, patient=patient, instrument="phq9", answers=PHQ9_MILD, session_id=uuid.uuid4()
        )
