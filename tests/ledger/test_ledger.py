"""The controlled-substance register (security.md §4): receipts with the supplier's details, counts (a
difference needs a second person who signs, and the administrators hear of it), losses with the DEA
deadlines, corrections by reversal; entries are append-only and hash-chained; the register prints with
each dose's draw; bad input is named and stores nothing; roles and organizations. A dose's draw: test_draws."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.utils import DatabaseError
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from tests.assessment.test_screening_overrides import token_from
from tests.chairside.test_report_pdf import pdf_text
from tests.clock import clinic_today
from tests.conftest import sign
from tests.ledger.conftest import ready_to_dose

from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import services as chairside
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
        "expiry": (clinic_today() + timedelta(days=400)).isoformat(),
        "unit": "mL",
        "mg_per_unit": "50",
        "quantity": "100",
        "containers": "10",
        "supplier_name": "Example Wholesale Inc.",
        "supplier_address": "1 Depot Road, Springfield, IL",
        "supplier_dea": "RE1234563",
        "received_on": clinic_today().isoformat(),
    }
    data.update(overrides)
    return data


def _dose(session: Any, lot: Any, nurse: Any, prescriber: Any) -> Any:
    """35 mg of lot K2026A (50 mg/mL) into a 100 mL bag: 1 mL drawn, 0.7 mL given, 0.3 mL wasted."""
    return chairside.record_administration(
        user=nurse,
        session=session,
        kind="infusion_start",
        lot_id=lot.pk,
        given="0.7",
        wasted="0.3",
        dose_mg=35,
        container_volume_ml=100,
        rate_ml_per_h=150,
        verifier=sign(prescriber),
    )


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
                received_on=(clinic_today() + timedelta(days=2)).isoformat(),
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


def test_a_count_that_differs_needs_a_second_person_and_tells_the_administrators(
    stocked: Any, nurse: Any, prescriber: Any, admin: Any
) -> None:
    with pytest.raises(services.LedgerInputError) as err:
        services.count(user=nurse, lot=stocked, counted="98", count_time="closing")
    assert "98 mL counted, 100 mL expected" in err.value.errors["reason"]
    assert "choose the nurse or prescriber who signs" in err.value.errors["witness"]

    def short_by_two(witness: Any) -> dict[str, str]:
        with pytest.raises(services.LedgerInputError) as refused:
            services.count(
                user=nurse,
                lot=stocked,
                counted="98",
                count_time="closing",
                reason="broken vial",
                witness=witness,
            )
        return refused.value.errors

    assert set(short_by_two(None)) == {"witness"}
    assert "someone other than you" in short_by_two(sign(nurse))["witness"]
    guessed = short_by_two(sign(prescriber, password="guess"))
    assert "not accepted" in guessed["witness_password"]
    assert stocked.entries.count() == 1 and not Notification.objects.exists()  # nothing stored
    short = services.count(
        user=nurse,
        lot=stocked,
        counted="98",
        count_time="closing",
        reason="2 mL broken vial",
        containers="10",
        witness=sign(prescriber),
    )
    assert (short.quantity, short.balance_after, short.counted, short.containers) == (-2, 98, 98, 10)
    assert short.witness == prescriber and short.witness_signed_at is not None
    notice = Notification.objects.get(recipient=admin, kind="controlled-substance-count")
    assert "lot K2026A at Main Street differs from the register: 98 mL counted, 100 mL expected (−2 mL)" in (
        notice.message
    )
    assert "second person Prescriber1" in notice.message and "reportable loss" in notice.message
    audited = json.loads(AuditEntry.objects.get(object_type="LedgerEntry", object_id=str(short.pk)).after)
    assert audited["difference"] == "-2" and audited["witness"] == "prescriber1"
    assert audited["notified"] == ["admin1"]
    same = services.count(user=nurse, lot=stocked, counted="98", count_time="opening")  # agrees: one person
    assert same.quantity == 0 and same.witness is None
    assert Notification.objects.filter(kind="controlled-substance-count").count() == 1


def test_losses_and_corrections(stocked: Any, nurse: Any, admin: Any) -> None:
    lost = services.report_loss(user=nurse, lot=stocked, quantity="10", reason="Vial missing from the safe")
    assert lost.balance_after == 90
    notice = Notification.objects.get(recipient=admin, kind="controlled-substance-loss")
    assert "within 1 business day" in notice.message and "Form 106" in notice.message
    assert "10 mL of lot K2026A (Ketamine) reported lost at Main Street" in notice.message
    fixed = services.correct(user=nurse, entry=lost, reason="Found in the second safe")
    assert (fixed.quantity, fixed.balance_after, fixed.corrects) == (10, 100, lost)
    with pytest.raises(services.LedgerError, match="already corrected"):
        services.correct(user=nurse, entry=lost, reason="again")
    with pytest.raises(services.LedgerError, match="not corrected"):
        services.correct(user=nurse, entry=fixed, reason="undo")
    assert LedgerEntry.objects.filter(pk=lost.pk, quantity=-10).exists()  # the original stays as it was


def test_the_chain_verifies_and_a_rewritten_row_is_found(
    stocked: Any, nurse: Any, prescriber: Any, iv_ready: Any, make_patient: Any
) -> None:
    services.count(user=nurse, lot=stocked, counted="100", count_time="opening")
    services.report_loss(user=nurse, lot=stocked, quantity="1", reason="Spilled")
    _dose(iv_ready, stocked, nurse, prescriber)
    assert services.verify_chain(nurse.organization_id) is None
    # The dose a draw names is part of its hash: pointing the draw at another dose is found.
    other = ready_to_dose(nurse, prescriber, make_patient(nurse, given_name="Olive"))
    theirs = _dose(other, stocked, nurse, prescriber)
    use = LedgerEntry.objects.filter(kind="use").order_by("seq").first()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ketaclinic_audit_maintenance SET allow_purge = %s", [True])
        cursor.execute(
            "UPDATE ledger_ledgerentry SET administration_id = %s WHERE id = %s",
            [LedgerEntry._meta.get_field("administration").get_db_prep_value(theirs.pk, connection), use.pk],
        )
        cursor.execute("UPDATE ketaclinic_audit_maintenance SET allow_purge = %s", [False])
    assert services.verify_chain(nurse.organization_id) == use.seq
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ketaclinic_audit_maintenance SET allow_purge = %s", [True])
        cursor.execute(
            "UPDATE ledger_ledgerentry SET administration_id = %s WHERE id = %s",
            [
                LedgerEntry._meta.get_field("administration").get_db_prep_value(
                    use.administration_id, connection
                ),
                use.pk,
            ],
        )
        cursor.execute("UPDATE ketaclinic_audit_maintenance SET allow_purge = %s", [False])
    assert services.verify_chain(nurse.organization_id) is None
    second = LedgerEntry.objects.order_by("seq")[1]
    with connection.cursor() as cursor:  # someone with database access switches the triggers off
        cursor.execute("UPDATE ketaclinic_audit_maintenance SET allow_purge = %s", [True])
        cursor.execute("UPDATE ledger_ledgerentry SET quantity = 5 WHERE id = %s", [second.pk])
        cursor.execute("UPDATE ketaclinic_audit_maintenance SET allow_purge = %s", [False])
    assert services.verify_chain(nurse.organization_id) == second.seq
    from ketaclinic.core.management.commands.clinic_check import _ledger_chains

    assert _ledger_chains().startswith(f"{nurse.organization.slug}: entry {second.seq} does not check out")


def test_register_lists_the_period_and_prints_the_dispensing_record(
    stocked: Any,
    iv_ready: Any,
    nurse: Any,
    prescriber: Any,
    patient: Any,
    site: Any,
    tmp_path: Any,
    sign_in: Any,
) -> None:
    patient.address = "9 Elm Street, Springfield"
    patient.save()
    _dose(iv_ready, stocked, nurse, prescriber)
    client = sign_in(Client(), prescriber)
    today = timezone.localdate(timezone.now(), site.zone).isoformat()
    page = client.get(f"/ledger/register/?site={site.pk}&since={today}&until={today}").content.decode()
    assert "Drawn 1 mL: given 0.7, wasted 0.3" in page and "Examplesson, Testa" in page
    assert "dose: infusion started, 35 mg at" in page
    assert AuditEntry.objects.filter(category="controlled-substances", detail__startswith="register").exists()
    pdf = client.get(f"/ledger/register/?site={site.pk}&since={today}&until={today}&format=pdf")
    assert pdf["Content-Type"] == "application/pdf" and "Examplesson" not in pdf["Content-Disposition"]
    text = pdf_text(pdf.content, tmp_path)  # table cells wrap: check words that stay together
    assert "Controlled-substance register" in text and "Wholesale Inc." in text and "DEA RE1234563" in text
    assert "Drawn 1 mL: given 0.7, wasted 0.3" in text and "9 Elm Street, Springfield" in text
    assert "witnessed by Prescriber1 (prescriber1)" in text and "contains PHI" in text
    bad = client.get(f"/ledger/register/?site={site.pk}&since=2026-05-02&until=2026-05-01")
    assert bad.status_code == 422


def _token(client: Any, path: str) -> str:
    return token_from(client.get(path).content.decode())


def test_pages_roles_and_organizations(
    stocked: Any,
    iv_ready: Any,
    nurse: Any,
    prescriber: Any,
    front_desk: Any,
    admin: Any,
    outsider: Any,
    site: Any,
    sign_in: Any,
) -> None:
    client = sign_in(Client(enforce_csrf_checks=True), nurse)
    token = _token(client, "/ledger/")
    assert "K2026A" in client.get("/ledger/").content.decode()
    received = client.post(
        "/ledger/receive/", _receipt(site=site.pk, quantity="5", containers="1", csrfmiddlewaretoken=token)
    )
    assert received.status_code == 302 and services.balance(stocked) == 105
    refused = client.post(
        "/ledger/receive/", _receipt(site=site.pk, quantity="abc", csrfmiddlewaretoken=token)
    )
    assert refused.status_code == 422 and "is not a number" in refused.content.decode()
    kept = refused.content.decode()  # what was typed stays in the form, the date included
    assert 'value="RE1234563"' in kept and f'value="{clinic_today().isoformat()}"' in kept
    _dose(iv_ready, stocked, nurse, prescriber)
    page = client.get(f"/ledger/lots/{stocked.pk}/").content.decode()
    assert "Balance: <strong>104 mL</strong>" in page and "Examplesson, Testa" in page
    assert "given 0.7, wasted 0.3" in page and "infusion started 35 mg" in page  # as staff write them
    assert 'id="use"' not in page  # a draw is recorded with its dose, on the session page
    # A count that differs, on the page: refused without the second person (what was typed is kept, the
    # password is not), recorded when they sign.
    count = {"counted": "103", "containers": "11", "count_time": "closing", "reason": "1 mL spilled"}
    alone = client.post(f"/ledger/lots/{stocked.pk}/count/", count | {"csrfmiddlewaretoken": token})
    assert alone.status_code == 422 and "choose the nurse or prescriber who signs" in alone.content.decode()
    assert 'value="1 mL spilled"' in alone.content.decode()
    witness = sign(prescriber)
    signed = client.post(
        f"/ledger/lots/{stocked.pk}/count/",
        count
        | {
            "csrfmiddlewaretoken": token,
            "witness": prescriber.pk,
            "witness_password": witness.password,
            "witness_code": witness.code,
        },
        follow=True,
    ).content.decode()
    assert "Count recorded" in signed and "administrators have been notified" in signed
    assert "second person Prescriber1" in signed and services.balance(stocked) == 103
    receipt = stocked.entries.order_by("seq").first()
    unfixed = client.post(
        f"/ledger/entries/{receipt.pk}/correct/", {"reason": "", "csrfmiddlewaretoken": token}
    )
    assert unfixed.status_code == 422 and unfixed.content.decode().count("<details open>") == 1
    assert sign_in(Client(), front_desk).get("/ledger/").status_code == 403
    reader = sign_in(Client(), admin)
    assert reader.get(f"/ledger/lots/{stocked.pk}/").status_code == 200
    assert reader.post("/ledger/receive/", _receipt(site=site.pk)).status_code == 403
    assert reader.post(f"/ledger/lots/{stocked.pk}/count/", count).status_code == 403
    assert sign_in(Client(), outsider).get(f"/ledger/lots/{stocked.pk}/").status_code == 404
    assert Decimal(services.balance(stocked)) == 103
