"""The controlled-substance register (security.md §4): receipts with the supplier's details, use for a
patient's session where drawn = given + wasted and a waste is signed by a re-authenticated witness who is
someone else, counts, losses with the DEA deadlines, corrections by reversal; entries are append-only and
hash-chained; the register prints; bad input is named and stores nothing; roles and organizations."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.utils import DatabaseError
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from tests.chairside.test_report_pdf import pdf_text

from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import services as chairside
from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.core.models import Notification
from ketaclinic.ledger import services
from ketaclinic.ledger.models import LedgerEntry, StockLot

PASSWORD = "correct horse battery staple"


def _code(user: Any) -> str:
    return f"{TOTP(TOTPDevice.objects.get(user=user).bin_key).token():06d}"


def _receipt(**overrides: Any) -> dict[str, Any]:
    data = {
        "drug": "ketamine",
        "product": "Ketamine HCl 50 mg/mL, 10 mL vial",
        "ndc": "0409-2051-05",
        "lot": "K2026A",
        "expiry": (date.today() + timedelta(days=400)).isoformat(),
        "unit": "mL",
        "mg_per_unit": "50",
        "quantity": "100",
        "containers": "10",
        "supplier_name": "Example Wholesale Inc.",
        "supplier_address": "1 Depot Road, Springfield, IL",
        "supplier_dea": "RE1234563",
        "received_on": date.today().isoformat(),
    }
    data.update(overrides)
    return data


@pytest.fixture
def stocked(nurse: Any, site: Any) -> Any:
    return services.receive(user=nurse, site=site, data=_receipt()).lot


@pytest.fixture
def iv_session(nurse: Any, patient: Any) -> Any:
    session = chairside.schedule_session(
        user=nurse,
        patient=patient,
        protocol_id="iv-trd-elektd",
        scheduled_at=timezone.now(),
        planned_dose_mg=35,
    )
    TreatmentSession.objects.filter(pk=session.pk).update(status="dosing", dose_started_at=timezone.now())
    session.refresh_from_db()
    return session


def test_a_receipt_records_the_supplier_and_opens_the_balance(stocked: Any, nurse: Any, site: Any) -> None:
    entry = stocked.entries.get()
    assert (entry.kind, entry.quantity, entry.balance_after, entry.containers) == ("receipt", 100, 100, 10)
    assert (entry.supplier_name, entry.supplier_dea) == ("Example Wholesale Inc.", "RE1234563")
    assert services.balance(stocked) == 100 and stocked.mg_per_unit == 50
    again = services.receive(user=nurse, site=site, data=_receipt(quantity="20", containers="2"))
    assert again.lot == stocked and again.balance_after == 120 and again.seq == entry.seq + 1


def test_bad_receipts_name_every_field_and_store_nothing(nurse: Any, site: Any, stocked: Any) -> None:
    with pytest.raises(services.LedgerInputError) as err:
        services.receive(
            user=nurse,
            site=site,
            data=_receipt(
                lot="K-NEW",
                quantity="-5",
                containers="0",
                supplier_dea="12",
                received_on=(date.today() + timedelta(days=2)).isoformat(),
                expiry="2020-01-01",
                unit="bottle",
                supplier_address="",
            ),
        )
    assert set(err.value.errors) == {
        "quantity",
        "containers",
        "supplier_dea",
        "received_on",
        "expiry",
        "unit",
        "supplier_address",
    }
    with pytest.raises(services.LedgerInputError, match="registered with other details"):
        services.receive(user=nurse, site=site, data=_receipt(mg_per_unit="10"))
    assert StockLot.objects.count() == 1 and LedgerEntry.objects.count() == 1


def test_use_is_drawn_given_plus_wasted_and_a_waste_needs_a_reauthenticated_witness(
    stocked: Any, iv_session: Any, nurse: Any, prescriber: Any, patient: Any
) -> None:
    def use(**kw: Any) -> Any:
        args = {"drawn": "7", "administered": "7", "wasted": "0"} | kw
        return services.record_use(user=nurse, lot=stocked, session=iv_session, **args)

    with pytest.raises(services.LedgerInputError, match=r"given \+ wasted must equal drawn"):
        use(drawn="7", administered="6", wasted="0")
    with pytest.raises(services.LedgerInputError, match="a waste needs a witness"):
        use(drawn="10", administered="7", wasted="3")
    with pytest.raises(services.LedgerInputError, match="someone other than"):
        use(drawn="10", administered="7", wasted="3", witness=nurse, witness_password=PASSWORD)
    with pytest.raises(services.LedgerInputError, match="not accepted"):
        use(
            drawn="10",
            administered="7",
            wasted="3",
            witness=prescriber,
            witness_password="wrong",
            witness_code=_code(prescriber),
        )
    with pytest.raises(services.LedgerInputError, match="more than the 100 mL left"):
        use(drawn="101", administered="101")
    assert stocked.entries.count() == 1  # nothing stored by any of those
    entry = use(
        drawn="10",
        administered="7",
        wasted="3",
        witness=prescriber,
        witness_password=PASSWORD,
        witness_code=_code(prescriber),
    )
    assert (entry.quantity, entry.balance_after, entry.patient, entry.session) == (
        -10,
        90,
        patient,
        iv_session,
    )
    assert entry.witness == prescriber and entry.witness_signed_at is not None
    audited = AuditEntry.objects.get(object_type="LedgerEntry", object_id=str(entry.pk))
    assert audited.patient_id == patient.pk and json.loads(audited.after)["balance"] == "90.000"
    plain = use(drawn="7", administered="7", wasted="0")
    assert plain.witness is None and plain.balance_after == 83
    # A wrong authenticator code with the right password is refused too (and nothing is stored).
    with pytest.raises(services.LedgerInputError, match="not accepted"):
        use(
            drawn="10",
            administered="7",
            wasted="3",
            witness=prescriber,
            witness_password=PASSWORD,
            witness_code="000000",
        )
    assert services.balance(stocked) == 83


def test_a_session_of_another_drug_or_site_is_refused(
    stocked: Any, nurse: Any, patient: Any, admin: Any, second_site: Any, make_patient: Any
) -> None:
    esk = chairside.schedule_session(
        user=nurse,
        patient=patient,
        protocol_id="esk-trd-label",
        scheduled_at=timezone.now(),
        planned_dose_mg=56,
    )
    TreatmentSession.objects.filter(pk=esk.pk).update(status="dosing")
    esk.refresh_from_db()
    with pytest.raises(services.LedgerInputError, match="esketamine session"):
        services.record_use(user=nurse, lot=stocked, session=esk, drawn="1", administered="1", wasted="0")
    north = make_patient(admin, site=second_site, given_name="Nora", family_name="North")
    far = chairside.schedule_session(
        user=admin,
        patient=north,
        protocol_id="iv-trd-elektd",
        scheduled_at=timezone.now(),
        planned_dose_mg=35,
    )
    TreatmentSession.objects.filter(pk=far.pk).update(status="dosing")
    far.refresh_from_db()
    with pytest.raises(services.LedgerInputError, match="not a session at this lot's site"):
        services.record_use(user=nurse, lot=stocked, session=far, drawn="1", administered="1", wasted="0")


def test_the_database_itself_refuses_bad_rows_and_any_edit(stocked: Any, nurse: Any, prescriber: Any) -> None:
    entry = stocked.entries.get()
    base = {
        "organization_id": entry.organization_id,
        "lot": stocked,
        "at": timezone.now(),
        "recorded_at": timezone.now(),
        "by": nurse,
        "prev_hash": entry.entry_hash,
        "entry_hash": "x" * 64,
    }
    for bad in (
        {
            "seq": 90,
            "kind": "use",
            "quantity": -10,
            "balance_after": 90,
            "drawn": 10,
            "administered": 7,
            "wasted": 2,
        },
        {
            "seq": 91,
            "kind": "use",
            "quantity": -1,
            "balance_after": 99,
            "drawn": 1,
            "administered": 1,
            "wasted": 0,
            "witness": nurse,
        },
        {"seq": 92, "kind": "loss", "quantity": -200, "balance_after": -100},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            LedgerEntry.objects.create(**base, **bad)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(quantity=1000)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    assert LedgerEntry.objects.get(pk=entry.pk).quantity == 100


def test_counts_losses_and_corrections(stocked: Any, nurse: Any, admin: Any) -> None:
    with pytest.raises(services.LedgerInputError) as err:
        services.count(user=nurse, lot=stocked, counted="98", count_time="closing")
    assert "98 counted, 100 expected" in err.value.errors["reason"]
    short = services.count(
        user=nurse, lot=stocked, counted="98", count_time="closing", reason="2 mL broken vial"
    )
    assert (short.quantity, short.balance_after, short.counted) == (-2, 98, 98)
    same = services.count(user=nurse, lot=stocked, counted="98", count_time="opening")
    assert same.quantity == 0
    lost = services.report_loss(user=nurse, lot=stocked, quantity="10", reason="Vial missing from the safe")
    assert lost.balance_after == 88
    notice = Notification.objects.get(recipient=admin, kind="controlled-substance-loss")
    assert "within 1 business day" in notice.message and "Form 106" in notice.message
    fixed = services.correct(user=nurse, entry=lost, reason="Found in the second safe")
    assert (fixed.quantity, fixed.balance_after, fixed.corrects) == (10, 98, lost)
    with pytest.raises(services.LedgerError, match="already corrected"):
        services.correct(user=nurse, entry=lost, reason="again")
    with pytest.raises(services.LedgerError, match="not corrected"):
        services.correct(user=nurse, entry=fixed, reason="undo")
    assert LedgerEntry.objects.filter(pk=lost.pk, quantity=-10).exists()  # the original stays as it was


def test_the_chain_verifies_and_a_rewritten_row_is_found(stocked: Any, nurse: Any) -> None:
    services.count(user=nurse, lot=stocked, counted="100", count_time="opening")
    services.report_loss(user=nurse, lot=stocked, quantity="1", reason="Spilled")
    assert services.verify_chain(nurse.organization_id) is None
    second = LedgerEntry.objects.order_by("seq")[1]
    with connection.cursor() as cursor:  # someone with database access switches the triggers off
        cursor.execute("UPDATE ketaclinic_audit_maintenance SET allow_purge = %s", [True])
        cursor.execute("UPDATE ledger_ledgerentry SET quantity = 5 WHERE id = %s", [second.pk])
        cursor.execute("UPDATE ketaclinic_audit_maintenance SET allow_purge = %s", [False])
    assert services.verify_chain(nurse.organization_id) == second.seq
    from ketaclinic.core.management.commands.clinic_check import _ledger_chains

    assert _ledger_chains() == f"{nurse.organization.slug}: entry {second.seq} does not check out"


def test_register_lists_the_period_and_prints_the_dispensing_record(
    stocked: Any,
    iv_session: Any,
    nurse: Any,
    prescriber: Any,
    patient: Any,
    site: Any,
    tmp_path: Any,
    sign_in: Any,
) -> None:
    patient.address = "9 Elm Street, Springfield"
    patient.save()
    services.record_use(
        user=nurse,
        lot=stocked,
        session=iv_session,
        drawn="10",
        administered="7",
        wasted="3",
        witness=prescriber,
        witness_password=PASSWORD,
        witness_code=_code(prescriber),
    )
    client = sign_in(Client(), prescriber)
    today = timezone.localdate(timezone.now(), site.zone).isoformat()
    page = client.get(f"/ledger/register/?site={site.pk}&since={today}&until={today}").content.decode()
    assert "Drawn 10 mL: given 7, wasted 3" in page and "Examplesson, Testa" in page
    assert AuditEntry.objects.filter(category="controlled-substances", detail__startswith="register").exists()
    pdf = client.get(f"/ledger/register/?site={site.pk}&since={today}&until={today}&format=pdf")
    assert pdf["Content-Type"] == "application/pdf" and "Examplesson" not in pdf["Content-Disposition"]
    text = pdf_text(pdf.content, tmp_path)  # table cells wrap: check words that stay together
    assert "Controlled-substance register" in text and "Wholesale Inc." in text and "DEA RE1234563" in text
    assert "Drawn 10 mL: given 7, wasted 3" in text and "9 Elm Street, Springfield" in text
    assert "witnessed by Prescriber1 (prescriber1)" in text and "contains PHI" in text
    bad = client.get(f"/ledger/register/?site={site.pk}&since=2026-05-02&until=2026-05-01")
    assert bad.status_code == 422


def test_pages_roles_and_organizations(
    stocked: Any,
    iv_session: Any,
    nurse: Any,
    prescriber: Any,
    front_desk: Any,
    admin: Any,
    outsider: Any,
    site: Any,
    sign_in: Any,
) -> None:
    client = sign_in(Client(), nurse)
    assert "K2026A" in client.get("/ledger/").content.decode()
    received = client.post("/ledger/receive/", _receipt(site=site.pk, quantity="5", containers="1"))
    assert received.status_code == 302 and services.balance(stocked) == 105
    refused = client.post("/ledger/receive/", _receipt(site=site.pk, quantity="abc"))
    assert refused.status_code == 422 and "is not a number" in refused.content.decode()
    kept = refused.content.decode()  # what was typed stays in the form, the date included
    assert 'value="RE1234563"' in kept and f'value="{date.today().isoformat()}"' in kept
    used = client.post(
        f"/ledger/lots/{stocked.pk}/use/",
        {
            "session": iv_session.pk,
            "drawn": "10",
            "administered": "7",
            "wasted": "3",
            "witness": prescriber.pk,
            "witness_password": PASSWORD,
            "witness_code": _code(prescriber),
        },
    )
    assert used.status_code == 302 and services.balance(stocked) == 95
    page = client.get(f"/ledger/lots/{stocked.pk}/").content.decode()
    assert "Balance: <strong>95 mL</strong>" in page and "witness" in page
    offered = AuditEntry.objects.filter(user=nurse, detail__endswith="sessions offered for stock use")
    assert offered.exists() and "Examplesson, Testa" in page  # the session list names patients: audited
    assert "Balance: <strong>95 mL</strong>" in page and "given 7, wasted 3" in page  # as staff write them
    receipt = stocked.entries.order_by("seq").first()
    unfixed = client.post(f"/ledger/entries/{receipt.pk}/correct/", {"reason": ""})
    assert unfixed.status_code == 422 and unfixed.content.decode().count("<details open>") == 1
    assert sign_in(Client(), front_desk).get("/ledger/").status_code == 403
    reader = sign_in(Client(), admin)
    assert reader.get(f"/ledger/lots/{stocked.pk}/").status_code == 200
    assert reader.post("/ledger/receive/", _receipt(site=site.pk)).status_code == 403
    assert sign_in(Client(), outsider).get(f"/ledger/lots/{stocked.pk}/").status_code == 404
    assert Decimal(services.balance(stocked)) == 95


def test_the_session_page_records_and_shows_the_stock_drawn_for_it(
    stocked: Any, iv_session: Any, nurse: Any, prescriber: Any, front_desk: Any, sign_in: Any
) -> None:
    client = sign_in(Client(), nurse)
    page = client.get(f"/sessions/{iv_session.pk}/").content.decode()
    card = page.split('id="controlled-drugs"', 1)[1].split("</section>", 1)[0]
    assert "Nothing drawn from stock" in card and "lot K2026A (100 mL left)" in card
    refused = client.post(
        f"/ledger/sessions/{iv_session.pk}/use/",
        {"lot": stocked.pk, "drawn": "10", "administered": "7", "wasted": "3"},
        follow=True,
    ).content.decode()
    assert "Stock use not recorded: witness a waste needs a witness." in refused
    done = client.post(
        f"/ledger/sessions/{iv_session.pk}/use/",
        {
            "lot": stocked.pk,
            "drawn": "10",
            "administered": "7",
            "wasted": "3",
            "witness": prescriber.pk,
            "witness_password": PASSWORD,
            "witness_code": _code(prescriber),
        },
        follow=True,
    ).content.decode()
    assert "Stock use recorded" in done and "90 mL left in lot K2026A" in done
    card = done.split('id="controlled-drugs"', 1)[1].split("</section>", 1)[0]
    assert "<td>10 mL</td><td>7</td><td>3</td><td>Prescriber1" in card
    assert sign_in(Client(), front_desk).post(f"/ledger/sessions/{iv_session.pk}/use/", {}).status_code == 403
