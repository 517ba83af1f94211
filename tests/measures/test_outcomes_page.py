"""The Outcomes page: a period's sessions, response and remission, and safety events, counted over the
patients the user may see, at one site or all of theirs; prescribers and administrators only; bad dates
answer 422 and show nothing; the read is audited without naming a patient."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone

from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import services as chairside
from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.measures import services


def _phq9(total: int) -> dict[str, int]:
    answers, left = {}, total
    for item in range(1, 9):
        answers[str(item)] = min(3, left)
        left -= answers[str(item)]
    answers["9"] = 0
    return answers


def _course(nurse: Any, patient: Any, totals: list[int]) -> None:
    start = timezone.now() - timedelta(days=60)
    for week, total in enumerate(totals):
        services.record_administration(
            user=nurse,
            patient=patient,
            instrument="phq9",
            answers=_phq9(total),
            administered_at=start + timedelta(days=week * 10),
        )


def test_outcomes_count_the_visible_patients_at_the_chosen_site(
    nurse: Any,
    prescriber: Any,
    admin: Any,
    patient: Any,
    make_patient: Any,
    site: Any,
    second_site: Any,
    sign_in: Any,
) -> None:
    _course(nurse, patient, [20, 14, 8])  # -60 %: response, no remission
    second = make_patient(nurse, given_name="Second", family_name="Patientson")
    _course(nurse, second, [12, 10, 4])  # -67 %: response and remission
    north = make_patient(admin, site=second_site, given_name="Nora", family_name="Northcote")
    _course(admin, north, [15, 15, 15])  # at the other site: no response
    session = chairside.schedule_session(
        user=nurse,
        patient=patient,
        protocol_id="esk-trd-label",
        scheduled_at=timezone.now() - timedelta(days=3),
        planned_dose_mg=56,
    )
    TreatmentSession.objects.filter(pk=session.pk).update(
        status="discharged", discharged_at=timezone.now() - timedelta(days=3)
    )

    client = sign_in(Client(), admin)
    everywhere = client.get("/outcomes/").content.decode()
    phq9 = everywhere.split("<td>PHQ-9</td>", 1)[1].split("</tr>", 1)[0]
    assert "<td>3</td>" in phq9 and "2 of 3 (67 %)" in phq9 and "1 of 3 (33 %)" in phq9
    assert "Sessions carried out (discharged)</dt><dd><strong>1</strong>" in everywhere
    assert "esk-trd-label" in everywhere
    assert "<td>PCL-5</td>" in everywhere and "Meaningful improvement" in everywhere  # PTSD and pain rows
    # Per course protocol: the first patient's session was esk-trd-label; the others have no course.
    groups = (
        everywhere.split("<td>PHQ-9</td>", 1)[1].split("<td>MADRS</td>", 1)[0].split('class="sub-row"')[1:]
    )
    assert "esk-trd-label" in groups[0] and "<td>1</td>" in groups[0] and "1 of 1 (100 %)" in groups[0]
    assert "no course recorded" in groups[1] and "<td>2</td>" in groups[1]
    assert "1 of 2 (50 %)" in groups[1]  # the second patient responded and remitted; the third neither
    here = client.get(f"/outcomes/?site={site.pk}").content.decode()
    phq9 = here.split("<td>PHQ-9</td>", 1)[1].split("</tr>", 1)[0]
    assert "2 of 2 (100 %)" in phq9 and "1 of 2 (50 %)" in phq9
    for page in (everywhere, here):
        assert "Examplesson" not in page and "Northcote" not in page  # counts only
    entry = AuditEntry.objects.filter(user=admin, category="outcomes").latest("id")
    assert entry.patient_id is None and entry.detail.endswith(f"at {site.code}")

    # The prescriber covers the first site only: the other site's patient is not counted.
    mine = sign_in(Client(), prescriber).get("/outcomes/").content.decode()
    assert "2 of 2 (100 %)" in mine.split("<td>PHQ-9</td>", 1)[1].split("</tr>", 1)[0]


def test_bad_periods_answer_422_and_show_nothing(prescriber: Any, sign_in: Any) -> None:
    client = sign_in(Client(), prescriber)
    backwards = client.get("/outcomes/?since=2026-05-01&until=2026-04-01")
    assert backwards.status_code == 422 and "is before the start of the period" in backwards.content.decode()
    assert 'id="outcomes-scales"' not in backwards.content.decode()
    garbage = client.get("/outcomes/?since=yesterday")
    assert garbage.status_code == 422 and "is not a date" in garbage.content.decode()
    assert not AuditEntry.objects.filter(category="outcomes").exists()


def test_nurses_and_front_desk_may_not_open_it(nurse: Any, front_desk: Any, sign_in: Any) -> None:
    assert sign_in(Client(), nurse).get("/outcomes/").status_code == 403
    assert sign_in(Client(), front_desk).get("/outcomes/").status_code == 403


def test_cli_prints_the_same_counts_as_json_and_refuses_bad_periods(
    nurse: Any, patient: Any, make_patient: Any, org: Any
) -> None:
    import json
    from io import StringIO

    import pytest
    from django.core.management import CommandError, call_command

    _course(nurse, patient, [20, 14, 8])
    _course(nurse, make_patient(nurse, given_name="Second", family_name="Patientson"), [12, 10, 4])
    out = StringIO()
    call_command("outcomes", "--organization", org.slug, "--json", stdout=out)
    data = json.loads(out.getvalue())
    phq9 = data["scales"]["phq9"]
    assert (phq9["patients"], phq9["responders"], phq9["remitters"]) == (2, 2, 1)
    assert phq9["by_protocol"]["none"]["patients"] == 2 and data["site"] is None
    text = StringIO()
    call_command("outcomes", "--organization", org.slug, stdout=text)
    assert "PHQ-9: 2 patients; response 2/2 (100 %); remission 1/2 (50 %)" in text.getvalue()
    assert "Examplesson" not in text.getvalue() + out.getvalue()
    entry = AuditEntry.objects.filter(category="outcomes").latest("id")
    assert entry.username == f"system:outcomes-report@{org.slug}"
    with pytest.raises(CommandError, match="is before the start"):
        call_command("outcomes", "--organization", org.slug, "--since", "2026-05-01", "--until", "2026-04-01")
    with pytest.raises(CommandError, match="not a date"):
        call_command("outcomes", "--organization", org.slug, "--since", "May")
