"""Recording consent (consent.services) from an empty clinic: the form version, the signature or scan kept
privately, expiry, withdrawal, new versions — and what the pre-dose gate then says for the session's drug and
route."""

from __future__ import annotations

import io
import os
import stat
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone
from PIL import Image
from tests.consent.helpers import consent_on_file

from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import services as chairside
from ketaclinic.clinical import consent as rules
from ketaclinic.clinical.dosing import calculate_dose
from ketaclinic.clinical.protocol_library import PROTOCOLS
from ketaclinic.consent import documents, services
from ketaclinic.consent.models import Consent, ConsentTemplate, TemplateChanged
from ketaclinic.consent.sample import drawn_signature

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def today(patient: Any) -> Any:
    return timezone.localdate(timezone.now(), patient.site.zone)


def gate_consent(nurse: Any, patient: Any, protocol_id: str) -> dict[str, Any]:
    """The gate's consent item for a session of ``protocol_id`` today: today's checked-in session of that
    protocol if there is one (a patient has one session a day), else one scheduled now and checked in."""
    from ketaclinic.chairside.models import TreatmentSession

    session = TreatmentSession.objects.filter(
        patient=patient, protocol_id=protocol_id, status__in=("checked_in", "pre_dose")
    ).first()
    if session is None:
        protocol = PROTOCOLS[protocol_id]
        dose = calculate_dose(protocol=protocol, weight_kg=70, height_cm=165).dose_mg
        session = chairside.schedule_session(
            user=nurse,
            patient=patient,
            protocol_id=protocol_id,
            scheduled_at=timezone.now(),
            planned_dose_mg=dose,
        )
        chairside.transition(user=nurse, session=session, to="checked_in")
    check = chairside.evaluate_gate(user=nurse, session=session, answers={})
    return next(i for i in check.items if i["key"] == "consent")


def sign(nurse: Any, patient: Any, drug: str = "ketamine", route: str = "iv", **changes: Any) -> Consent:
    form = services.current_template(organization_id=patient.organization_id, drug=drug, route=route)
    args: dict[str, Any] = {
        "user": nurse,
        "patient": patient,
        "template": form,
        "signed_on": today(patient),
        "evidence": services.DrawnSignature(signer_name="Testa Examplesson", png=drawn_signature("Testa")),
        "witness": nurse,
    }
    return services.record_consent(**(args | changes))


def refused(**kwargs: Any) -> dict[str, str]:
    with pytest.raises(services.ConsentInputError) as caught:
        services.record_consent(**kwargs)
    return caught.value.errors


# --- signed on the tablet: kept, private, on the gate ---------------------------------------------------


def test_a_tablet_signature_is_kept_private_and_the_gate_shows_version_date_and_age(
    nurse: Any, patient: Any, settings: Any
) -> None:
    assert gate_consent(nurse, patient, "iv-trd-elektd")["status"] == "fail"  # a new patient: no consent
    consent = sign(nurse, patient)
    form = ConsentTemplate.objects.get(organization=patient.organization, drug="ketamine", route="iv")
    assert (consent.template, consent.template_fingerprint, form.version) == (form, form.fingerprint, 1)
    assert consent.expires_on == today(patient) + timedelta(days=365) and consent.validity_days == 365
    assert (consent.signer_name, consent.witness, consent.method) == ("Testa Examplesson", nurse, "tablet")
    path = documents.root() / consent.document_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(documents.root().stat().st_mode) == 0o700
    assert not str(path).startswith(str(settings.STATIC_ROOT))
    entry = AuditEntry.objects.get(category="consent", action="add", object_id=str(consent.pk))
    assert '"form_version":1' in entry.after.replace(" ", "") and consent.document_sha256 in entry.after
    item = gate_consent(nurse, patient, "iv-trd-elektd")
    assert item["status"] == "pass" and not item["overridable"]
    assert "version 1, signed " + today(patient).isoformat() + " (today)" in item["reason"]
    assert "witnessed by Nurse1" in item["reason"] and "clinic policy 365 days, unconfirmed" in item["reason"]


def test_an_iv_consent_does_not_cover_an_im_session(nurse: Any, patient: Any) -> None:
    sign(nurse, patient, route="iv")
    item = gate_consent(nurse, patient, "im-clinic-template")
    assert item["status"] == "fail" and not item["overridable"]
    assert "No signed consent for Ketamine (racemic) by intramuscular injection" in item["reason"]
    assert "on file: ketamine by intravenous infusion — each route needs its own consent" in item["reason"]


def test_an_expired_consent_fails_the_gate(nurse: Any, patient: Any) -> None:
    consent_on_file(nurse, patient, "ketamine", "iv", signed_on=today(patient) - timedelta(days=10))
    with time_machine.travel(timezone.now() + timedelta(days=356)):
        item = gate_consent(nurse, patient, "iv-trd-elektd")
    assert item["status"] == "fail" and "Consent expired on" in item["reason"]


def test_a_withdrawn_consent_fails_the_gate_and_an_older_one_does_not_revive(
    nurse: Any, patient: Any, prescriber: Any
) -> None:
    consent_on_file(nurse, patient, "esketamine", signed_on=today(patient) - timedelta(days=30))
    latest = consent_on_file(nurse, patient, "esketamine", signed_on=today(patient) - timedelta(days=2))
    with pytest.raises(services.ConsentInputError) as caught:
        services.withdraw_consent(user=nurse, consent=latest, withdrawn_on=today(patient), reason="no")
    assert caught.value.errors == {"reason": "write what the patient said or why (at least 10 characters)"}
    services.withdraw_consent(
        user=nurse, consent=latest, withdrawn_on=today(patient), reason="Patient does not want more sprays"
    )
    item = gate_consent(nurse, patient, "esk-trd-label")
    assert item["status"] == "fail"
    assert (
        "Consent withdrawn on " + today(patient).isoformat() + ": Patient does not want more sprays"
        in (item["reason"])
    )
    session = chairside.TreatmentSession.objects.get(patient=patient)
    with pytest.raises(chairside.SessionError, match="cannot be overridden"):
        chairside.override_gate_item(
            user=prescriber, session=session, item_key="consent", reason="Patient agreed verbally today"
        )
    with pytest.raises(services.ConsentError, match="already withdrawn"):
        services.withdraw_consent(
            user=nurse, consent=latest, withdrawn_on=today(patient), reason="twice over"
        )
    assert (
        AuditEntry.objects.filter(category="consent", action="change", object_id=str(latest.pk)).count() == 1
    )


# --- what is refused ------------------------------------------------------------------------------------


def test_a_blank_or_false_signature_a_future_date_and_no_name_are_refused(nurse: Any, patient: Any) -> None:
    form = services.current_template(organization_id=patient.organization_id, drug="ketamine", route="iv")
    blank = io.BytesIO()
    Image.new("RGBA", (600, 200), (0, 0, 0, 0)).save(blank, format="PNG")
    base = {
        "user": nurse,
        "patient": patient,
        "template": form,
        "witness": nurse,
        "signed_on": today(patient),
    }
    errors = refused(**base, evidence=services.DrawnSignature(signer_name=" ", png=blank.getvalue()))
    assert errors == {
        "signer_name": "the patient types their full name",
        "signature": "the signature box is empty: the patient signs with a finger, stylus or mouse",
    }
    errors = refused(
        **base | {"signed_on": today(patient) + timedelta(days=1)},
        evidence=services.DrawnSignature("A B", PDF),
    )
    assert errors == {
        "signed_on": "is in the future",
        "signature": "the signature must be a PNG image (as the signature box sends it)",
    }
    errors = refused(
        **base | {"signed_on": today(patient) - timedelta(days=1)},
        evidence=services.DrawnSignature("Testa Examplesson", drawn_signature("Testa")),
    )
    assert errors == {"signed_on": "a signature drawn on the tablet or phone is signed today"}
    assert not Consent.objects.exists() and not list(documents.root().glob("org-*/*"))


def test_a_witness_from_another_site_or_clinic_and_a_later_expiry_are_refused(
    nurse: Any, patient: Any, make_user: Any, org: Any, second_site: Any, outsider: Any
) -> None:
    elsewhere = make_user("northnurse", org, "nurse", [second_site])
    form = services.current_template(organization_id=patient.organization_id, drug="ketamine", route="iv")
    evidence = services.DrawnSignature("Testa Examplesson", drawn_signature("Testa"))
    base = {
        "user": nurse,
        "patient": patient,
        "template": form,
        "signed_on": today(patient),
        "evidence": evidence,
    }
    assert refused(**base, witness=elsewhere) == {"witness": "does not work at Main Street"}
    assert refused(**base, witness=outsider) == {"witness": "is not an active member of this clinic's staff"}
    assert refused(**base, witness=None) == {"witness": "name the member of staff who saw the patient sign"}
    later = today(patient) + timedelta(days=400)
    assert refused(**base, witness=nurse, expires_on=later) == {
        "expires_on": f"is later than {(today(patient) + timedelta(days=365)).isoformat()}: a consent lasts at "
        "most 365 days (clinic policy)"
    }


def test_only_nurses_and_prescribers_record_consent(front_desk: Any, admin: Any, patient: Any) -> None:
    for user in (front_desk, admin):
        with pytest.raises(services.ConsentForbidden):
            sign(user, patient)


def test_a_scan_is_checked_by_its_content_and_its_age(nurse: Any, patient: Any) -> None:
    form = services.current_template(organization_id=patient.organization_id, drug="ketamine", route="im")
    base = {"user": nurse, "patient": patient, "template": form, "witness": nurse}
    errors = refused(
        **base,
        signed_on=today(patient) - timedelta(days=400),
        evidence=services.SignedScan(
            data=b"hello, not a pdf", content_type="application/pdf", filename="x.pdf"
        ),
    )
    assert errors["signed_on"].startswith("is 400 days ago: a consent lasts 365 days (clinic policy)")
    assert errors["document"] == "the file must be a PDF, PNG or JPEG scan of the signed form"
    big = PDF + b"0" * documents.MAX_SCAN_BYTES
    errors = refused(
        **base, signed_on=today(patient), evidence=services.SignedScan(big, "application/pdf", "big.pdf")
    )
    assert errors == {"document": "the file is 10.0 MB; the limit is 10 MB"}
    errors = refused(
        **base,
        signed_on=today(patient),
        evidence=services.SignedScan(drawn_signature("x"), "application/pdf", "a.pdf"),
    )
    assert errors == {"document": "the file says it is application/pdf but its content is image/png"}
    consent = services.record_consent(
        **base,
        signed_on=today(patient) - timedelta(days=5),
        evidence=services.SignedScan(PDF, "application/pdf", "signed form.pdf"),
    )
    assert (consent.method, consent.document_type, consent.document_filename) == (
        "scan",
        "application/pdf",
        "signed form.pdf",
    )
    assert consent.expires_on == today(patient) - timedelta(days=5) + timedelta(days=365)
    assert gate_consent(nurse, patient, "im-clinic-template")["status"] == "pass"


@override_settings(KETACLINIC_CONSENT_VALID_DAYS=90)
def test_the_clinic_sets_the_validity_period(nurse: Any, patient: Any) -> None:
    consent = sign(nurse, patient)
    assert consent.expires_on == today(patient) + timedelta(days=90) and consent.validity_days == 90
    assert "KETACLINIC_CONSENT_VALID_DAYS=90" in services.validity_policy().source


def test_a_changed_document_is_reported_not_shown(nurse: Any, patient: Any) -> None:
    consent = sign(nurse, patient)
    assert services.consent_document(user=nurse, consent=consent).data.startswith(b"\x89PNG")
    path = documents.root() / consent.document_file
    os.chmod(path, 0o600)
    path.write_bytes(drawn_signature("Someone Else"))
    with pytest.raises(services.ConsentError, match="does not match the one recorded"):
        services.consent_document(user=nurse, consent=consent)
    assert AuditEntry.objects.filter(category="consent", outcome="failure").exists()


# --- forms and their versions ---------------------------------------------------------------------------


def _sections(form: ConsentTemplate, **texts: str) -> list[rules.Section]:
    return [
        rules.Section(**(s | ({"text": texts[s["key"]]} if s["key"] in texts else {}))) for s in form.sections
    ]


def test_a_prescriber_publishes_a_new_version_and_every_patient_signs_again_when_asked(
    nurse: Any, prescriber: Any, patient: Any
) -> None:
    old = sign(nurse, patient)
    v1 = old.template
    assert v1 is not None
    questions = "Ask the nurse or your prescriber anything before you sign; call the clinic on 555-0100."
    with pytest.raises(services.ConsentForbidden):
        services.publish_template(
            user=nurse,
            drug="ketamine",
            route="iv",
            title=v1.title,
            sections=_sections(v1),
            change_note="x" * 20,
        )
    with pytest.raises(services.ConsentInputError) as caught:
        services.publish_template(
            user=prescriber,
            drug="ketamine",
            route="iv",
            title=v1.title,
            sections=_sections(
                v1, benefit="Up to 70 % of people respond after six infusions in our experience."
            ),
            change_note="Clinic wording",
        )
    assert "quotes 70 %" in caught.value.errors["benefit"]
    with pytest.raises(services.ConsentInputError) as caught:
        services.publish_template(
            user=prescriber,
            drug="ketamine",
            route="iv",
            title=v1.title,
            sections=_sections(v1),
            change_note="Nothing",
        )
    assert caught.value.errors == {
        "change_note": "say what changed and why (at least 10 characters)",
    }
    v2 = services.publish_template(
        user=prescriber,
        drug="ketamine",
        route="iv",
        title=v1.title,
        sections=_sections(v1, questions=questions),
        change_note="Clinic phone number added",
    )
    assert (v2.version, v2.published_by, v2.builtin_revision) == (2, prescriber, None)
    assert gate_consent(nurse, patient, "iv-trd-elektd")["status"] == "pass"  # v1 still covers
    v3 = services.publish_template(
        user=prescriber,
        drug="ketamine",
        route="iv",
        title=v1.title,
        sections=_sections(v1, questions=questions + " Bring your medicines list."),
        change_note="Bladder-risk wording reviewed; please sign again",
        sign_again=True,
    )
    item = gate_consent(nurse, patient, "iv-trd-elektd")
    assert (
        item["status"] == "fail" and "version 3" in item["reason"] and "please sign again" in item["reason"]
    )
    old.refresh_from_db()
    assert old.template == v1 and old.template_fingerprint == v1.fingerprint  # what was signed stays
    with pytest.raises(TemplateChanged):
        v1.save()
    with pytest.raises(services.ConsentInputError) as caught:
        sign(nurse, patient, template=v2)
    assert caught.value.errors == {
        "template": "version 2 is not the current form (version 3): the patient signs the current version"
    }
    sign(nurse, patient, template=v3)
    assert gate_consent(nurse, patient, "iv-trd-elektd")["status"] == "pass"
    assert AuditEntry.objects.filter(category="consent-form", action="add").count() == 2


def test_forms_belong_to_their_clinic(nurse: Any, patient: Any, outsider: Any, outsider_patient: Any) -> None:
    theirs = services.current_template(organization_id=outsider.org_id, drug="ketamine", route="iv")
    with pytest.raises(services.ConsentNotFound):
        services.get_template(user=nurse, template_id=theirs.pk)
    with pytest.raises(services.ConsentNotFound):
        sign(nurse, patient, template=theirs)
