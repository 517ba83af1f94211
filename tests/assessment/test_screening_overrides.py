"""Which contraindications a prescriber may override for one patient: never the SPRAVATO label's own
(aneurysmal vascular disease, AVM, intracerebral haemorrhage, hypersensitivity; clinical.md §2.5), on the page,
in the service, at plan time and at the pre-dose gate; racemic ketamine stays overridable with a reason."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from ketaclinic.assessment import services
from ketaclinic.assessment.models import Screening, ScreeningOverride
from ketaclinic.audit.models import AuditEntry
from ketaclinic.clinical.conditions import Drug, Route

LABEL_ITEMS = {
    "aneurysmal_vascular_disease": "Aneurysmal vascular disease",
    "arteriovenous_malformation": "Arteriovenous malformation",
    "intracerebral_haemorrhage": "History of intracerebral haemorrhage",
    "ketamine_hypersensitivity": "Hypersensitivity to ketamine or esketamine",
}
REASON = "Remote lesion, neurology reviewed and cleared treatment"


def screened(nurse: Any, prescriber: Any, patient: Any, **answers: str) -> Screening:
    data = {"assessed_on": "2026-11-20", "indication": "trd", **answers}
    intake = services.save_intake(user=nurse, patient=patient, data=data, base_version=None)
    services.sign_intake(user=prescriber, intake=intake)
    screening = services.run_screening(user=nurse, patient=patient)
    return services.sign_screening(user=prescriber, screening=screening)


def csrf_client(sign_in: Any, user: Any) -> Client:
    return sign_in(Client(enforce_csrf_checks=True), user)  # type: ignore[no-any-return]


def token_from(page: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def section(page: str, drug: str) -> str:
    start = page.index(f'id="drug-{drug}"')
    return page[start : page.index("</section>", start)]


# --- the service --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("item", sorted(LABEL_ITEMS))
def test_an_esketamine_label_contraindication_cannot_be_overridden_racemic_ketamine_can(
    item: str, nurse: Any, prescriber: Any, patient: Any
) -> None:
    screening = screened(nurse, prescriber, patient, **{item: "yes"})
    assert screening.decisions == {"esketamine": "not_eligible", "ketamine": "not_eligible"}
    with pytest.raises(services.AssessmentValidationError) as refused:
        services.override_screening(user=prescriber, screening=screening, drug="esketamine", reason=REASON)
    message = refused.value.errors["drug"]
    assert "contraindicated by the SPRAVATO label: cannot be overridden" in message
    assert LABEL_ITEMS[item] in message and "clinical.md §2.5: SPRAVATO label contraindication" in message
    assert set(refused.value.errors) == {"drug"}  # the reason was fine: the drug is what is refused
    assert not ScreeningOverride.objects.exists()
    override = services.override_screening(
        user=prescriber, screening=screening, drug="ketamine", reason=REASON
    )
    assert override.drug == "ketamine"
    assert services.plan_clearance(patient=patient, drug=Drug.KETAMINE, route=Route.IV).override == override
    with pytest.raises(services.AssessmentError, match="cannot be overridden"):
        services.plan_clearance(patient=patient, drug=Drug.ESKETAMINE, route=Route.INTRANASAL)
    assert services.valid_screening_signed_on(patient=patient, drug="esketamine") is None
    assert screening.signed_at is not None
    assert (
        services.valid_screening_signed_on(patient=patient, drug="ketamine")
        == screening.signed_at.astimezone(patient.site.zone).date()
    )


def test_racemic_ketamine_still_needs_a_written_reason(nurse: Any, prescriber: Any, patient: Any) -> None:
    screening = screened(nurse, prescriber, patient, arteriovenous_malformation="yes")
    with pytest.raises(services.AssessmentValidationError) as refused:
        services.override_screening(user=prescriber, screening=screening, drug="ketamine", reason="ok")
    assert refused.value.errors == {"reason": "write the clinical reason (at least 10 characters)"}
    assert not ScreeningOverride.objects.exists()


def test_an_esketamine_contraindication_outside_the_label_list_stays_overridable(
    nurse: Any, prescriber: Any, patient: Any
) -> None:
    # Uncontrolled hypertension is contraindicated for esketamine by default (label §2.2 "a BP rise poses a
    # serious risk"), not one of the label's absolute contraindications: a prescriber may decide past it.
    screening = screened(nurse, prescriber, patient, uncontrolled_hypertension="yes")
    assert screening.decisions["esketamine"] == "not_eligible"
    override = services.override_screening(
        user=prescriber, screening=screening, drug="esketamine", reason="BP controlled now, cardiology agrees"
    )
    clearance = services.plan_clearance(patient=patient, drug=Drug.ESKETAMINE, route=Route.INTRANASAL)
    assert clearance.override == override
    assert services.valid_screening_signed_on(patient=patient, drug="esketamine") is not None


def test_an_old_esketamine_override_row_no_longer_clears_the_plan_or_the_gate(
    nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    screening = screened(nurse, prescriber, patient, intracerebral_haemorrhage="yes")
    # Recorded before label contraindications were refused (the service no longer makes such rows).
    ScreeningOverride.objects.create(
        screening=screening,
        drug="esketamine",
        reason="Haemorrhage in 1998 after trauma; neurology cleared treatment",
        overridden_by=prescriber,
        overridden_at=timezone.now(),
    )
    with pytest.raises(services.AssessmentError) as caught:
        services.plan_clearance(patient=patient, drug=Drug.ESKETAMINE, route=Route.INTRANASAL)
    assert "History of intracerebral haemorrhage" in caught.value.message
    assert "cannot be overridden" in caught.value.message
    assert services.valid_screening_signed_on(patient=patient, drug="esketamine") is None
    assert services.effective_override(screening, Drug.ESKETAMINE) is None
    page = sign_in(Client(), prescriber).get(f"/screenings/{screening.pk}/").content.decode()
    assert "does not count" in section(page, "esketamine")
    body = sign_in(Client(), nurse).get(f"/api/assessment/screenings/{screening.pk}").json()
    assert body["overridable"] == {"ketamine": True, "esketamine": False}
    assert [(o["drug"], o["counts"]) for o in body["overrides"]] == [("esketamine", False)]


# --- the screening page ---------------------------------------------------------------------------------


def test_the_screening_page_offers_no_esketamine_override_and_refuses_a_post(
    nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    screening = screened(nurse, prescriber, patient, intracerebral_haemorrhage="yes")
    client = csrf_client(sign_in, prescriber)
    page = client.get(f"/screenings/{screening.pk}/").content.decode()
    esketamine = section(page, "esketamine")
    assert "contraindicated by the SPRAVATO label: cannot be overridden" in esketamine
    assert "History of intracerebral haemorrhage" in esketamine and "clinical.md §2.5" in esketamine
    assert "override-form" not in esketamine and 'name="reason"' not in esketamine
    assert "Record override for Ketamine (racemic)" in section(page, "ketamine")  # racemic: the form is there
    url = f"/screenings/{screening.pk}/override/"
    assert client.post(url, {"drug": "esketamine", "reason": REASON}).status_code == 403  # no CSRF token
    response = client.post(
        url, {"drug": "esketamine", "reason": REASON, "csrfmiddlewaretoken": token_from(page)}
    )
    assert response.status_code == 422
    text = response.content.decode()
    assert "Nothing was saved" in text and "cannot be overridden" in text
    assert not ScreeningOverride.objects.exists()
    assert not AuditEntry.objects.filter(category="clinical-override").exists()
    response = client.post(
        url, {"drug": "ketamine", "reason": REASON, "csrfmiddlewaretoken": token_from(page)}
    )
    assert response.status_code == 302
    assert list(ScreeningOverride.objects.values_list("drug", flat=True)) == ["ketamine"]
    assert AuditEntry.objects.filter(category="clinical-override", patient_id=patient.pk).count() == 1


def test_only_a_prescriber_of_the_patients_site_and_organization_may_post_an_override(
    nurse: Any,
    prescriber: Any,
    front_desk: Any,
    patient: Any,
    sign_in: Any,
    make_user: Any,
    second_site: Any,
    other_org: Any,
    other_site: Any,
) -> None:
    screening = screened(nurse, prescriber, patient, arteriovenous_malformation="yes")
    url = f"/screenings/{screening.pk}/override/"
    other_site_prescriber = make_user("prescriber2", prescriber.organization, "prescriber", [second_site])
    other_org_prescriber = make_user("prescriber9", other_org, "prescriber", [other_site])
    for user, status in (
        (nurse, 403),
        (front_desk, 403),
        (other_site_prescriber, 404),
        (other_org_prescriber, 404),
    ):
        client = csrf_client(sign_in, user)
        token = token_from(client.get("/").content.decode())
        response = client.post(url, {"drug": "ketamine", "reason": REASON, "csrfmiddlewaretoken": token})
        assert response.status_code == status, user.username
    assert not ScreeningOverride.objects.exists()
