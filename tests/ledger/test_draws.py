"""A dose at the chair is drawn from the site's stock (issue 14, *Why*: "the controlled-drug register is not
tied to the clinical record"): the lot gives product, strength, lot number and expiry; the volume given is
the dose at *that lot's* strength; an expired lot, or one of another site or drug, is refused; devices are
whole; the draw is recorded with the dose (drawn = given + wasted, a waste witnessed) or not at all; a stock
use always names a dose of the same session."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from tests.assessment.test_screening_overrides import token_from
from tests.conftest import sign
from tests.ledger.conftest import ready_to_dose
from tests.ledger.stock import receive, spravato

from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import services as chairside
from ketaclinic.chairside.models import Administration, TreatmentSession
from ketaclinic.ledger import draws, services
from ketaclinic.ledger.models import LedgerEntry


def _start(session: Any, lot: Any, nurse: Any, **kw: Any) -> Any:
    """35 mg of ``lot`` diluted to 100 mL at 150 mL/h (52.5 mg/h over 40 min)."""
    args = {"dose_mg": 35, "container_volume_ml": 100, "rate_ml_per_h": 150} | kw
    return chairside.record_administration(
        user=nurse, session=session, kind="infusion_start", lot_id=lot.pk, **args
    )


def _start_form(page: str, lot: Any, prescriber: Any) -> dict[str, Any]:
    """The session page's *Start infusion* form as a nurse fills it: 35 mg of ``lot`` (50 mg/mL), 1 mL drawn,
    0.3 mL wasted, into 100 mL at 150 mL/h, the prescriber signing as the second person."""
    code = sign(prescriber).code
    return {
        "csrfmiddlewaretoken": token_from(page),
        "kind": "infusion_start",
        "lot_id": lot.pk,
        "given": "0.7",
        "wasted": "0.3",
        "dose_mg": "35",
        "container_volume_ml": "100",
        "rate_ml_per_h": "150",
        "verified_by": prescriber.pk,
        "verified_by_password": "correct horse battery staple",
        "verified_by_code": code,
    }


def _nothing_stored(session: Any, lot: Any) -> None:
    assert not Administration.objects.filter(session=session).exists()
    assert not lot.entries.filter(kind="use").exists()
    assert TreatmentSession.objects.get(pk=session.pk).status == "pre_dose"


def test_the_lot_gives_product_strength_lot_and_expiry_and_the_draw_is_recorded_with_the_dose(
    iv_ready: Any, stocked: Any, nurse: Any, prescriber: Any, patient: Any
) -> None:
    dose = _start(iv_ready, stocked, nurse, given="0.7", wasted="0.3", verifier=sign(prescriber))
    assert (dose.stock_lot, dose.product, dose.lot, dose.expiry) == (
        stocked,
        "Ketamine HCl 50 mg/mL, 10 mL vial",
        "K2026A",
        stocked.expiry,
    )
    assert dose.concentration_mg_ml == 50 and dose.final_concentration_mg_ml == Decimal("0.35")
    assert dose.rate_mg_per_h == Decimal("52.50")  # 150 mL/h × 35 mg / 100 mL, from THIS lot's strength
    use = LedgerEntry.objects.get(kind="use")
    assert (use.administration, use.session, use.patient) == (dose, iv_ready, patient)
    assert (use.drawn, use.administered, use.wasted, use.quantity) == (1, Decimal("0.7"), Decimal("0.3"), -1)
    # The second person who checked the dose, with password and code, witnessed the waste: one signature.
    assert use.witness == dose.verified_by == prescriber and use.witness_signed_at is not None
    assert use.at == dose.at and services.balance(stocked) == 99
    audited = json.loads(AuditEntry.objects.get(object_type="Administration", object_id=str(dose.pk)).after)
    assert audited["register_entry"] == use.seq and audited["wasted"] == "0.3"
    assert services.verify_chain(nurse.org_id) is None  # the new link is in the hash and checks out
    iv_ready.refresh_from_db()
    assert iv_ready.status == "dosing"
    # A rate change draws nothing (and says so rather than ignoring a lot sent with it).
    with pytest.raises(chairside.SessionInputError) as change:
        chairside.record_administration(
            user=nurse,
            session=iv_ready,
            kind="rate_change",
            rate_ml_per_h=100,
            note="BP 150/95",
            verifier=sign(prescriber),
            lot_id=stocked.pk,
        )
    assert "draws nothing from stock" in change.value.errors["lot_id"]


def test_the_volume_given_must_be_the_dose_at_the_lots_strength(
    iv_ready: Any, stocked: Any, nurse: Any, prescriber: Any
) -> None:
    # Why: the record said "10 mg/mL · lot DEMO-K" while the lot is 50 mg/mL; drawing the 3.63 mL
    # calculated for 10 mg/mL from it gives 181.5 mg.
    with pytest.raises(chairside.SessionInputError) as strength:
        _start(iv_ready, stocked, nurse, dose_mg="36.3", given="3.63", verifier=sign(prescriber))
    message = strength.value.errors["given"]
    assert "3.63 mL of lot K2026A (50 mg/mL) is 181.5 mg, not the 36.3 mg dose" in message
    assert "36.3 mg is 0.726 mL of this lot" in message
    # The volume for solution is always stated; a dose that cannot be measured to 0.001 mL is not rounded.
    with pytest.raises(chairside.SessionInputError) as missing:
        _start(iv_ready, stocked, nurse, verifier=sign(prescriber))
    assert "the volume (mL) of lot K2026A put into the dose" in missing.value.errors["given"]
    with pytest.raises(chairside.SessionInputError) as fine:
        _start(iv_ready, stocked, nurse, dose_mg="35.37", given="0.7074", verifier=sign(prescriber))
    assert "0.70740… mL, which cannot be measured to 0.001 mL" in fine.value.errors["dose_mg"]
    assert "35.35 mg (0.707 mL) or 35.4 mg (0.708 mL)" in fine.value.errors["dose_mg"]
    with pytest.raises(chairside.SessionInputError) as precision:
        _start(iv_ready, stocked, nurse, given="0.7", wasted="0.0005", verifier=sign(prescriber))
    assert "more than 3 decimals" in precision.value.errors["wasted"]
    _nothing_stored(iv_ready, stocked)


def test_an_expired_lot_or_a_lot_of_another_site_drug_or_clinic_is_refused(
    iv_ready: Any,
    nurse: Any,
    prescriber: Any,
    site: Any,
    second_site: Any,
    make_user: Any,
    org: Any,
    outsider: Any,
    other_site: Any,
) -> None:
    with time_machine.travel(timezone.now() - timedelta(days=30)):
        expired = receive(nurse, site, strength="50", lot="OLD-1", expiry_days=10)
    north_nurse = make_user("nurse2", org, "nurse", [second_site])
    north = receive(north_nurse, second_site, strength="50", lot="NORTH-1")
    devices = spravato(nurse, site, lot="ESK-1")
    tablets = receive(nurse, site, unit="tablet", strength="25", lot="TAB-1", quantity="20")
    theirs = receive(outsider, other_site, strength="50", lot="THEIRS")
    refusals = {}
    for lot in (expired, north, devices, tablets, theirs):
        with pytest.raises(chairside.SessionInputError) as refused:
            _start(iv_ready, lot, nurse, given="0.7", verifier=sign(prescriber))
        refusals[lot.lot] = refused.value.errors["lot_id"]
    assert "lot OLD-1 expired on" in refusals["OLD-1"] and "an expired lot is not given" in refusals["OLD-1"]
    assert refusals["NORTH-1"] == "lot NORTH-1 is stock of North Road; this session is at Main Street"
    assert refusals["ESK-1"] == "lot ESK-1 is esketamine; this is a ketamine (racemic) session"
    assert "counted in tablets: doses by intravenous infusion are drawn from mL" in refusals["TAB-1"]
    assert refusals["THEIRS"] == "no such lot in this clinic's stock"
    with pytest.raises(chairside.SessionInputError) as none:
        chairside.record_administration(
            user=nurse, session=iv_ready, kind="infusion_start", dose_mg=35, rate_ml_per_h=150
        )
    assert "choose the lot the dose is drawn from" in none.value.errors["lot_id"]
    _nothing_stored(iv_ready, expired)
    # The session page offers only what may be given: in date, this site, this drug, a unit for the route.
    assert draws.lots_for_dose(session=iv_ready, on=timezone.localdate()) == []


def test_devices_are_whole_and_esketamine_comes_in_devices_only(
    nurse: Any, prescriber: Any, patient: Any, site: Any
) -> None:
    def refused(**data: Any) -> dict[str, str]:
        with pytest.raises(services.LedgerInputError) as err:
            receive(nurse, site, drug="esketamine", **data)
        return err.value.errors

    base = {
        "drug": "esketamine",
        "product": "Spravato 28 mg",
        "lot": "ESK-ML",
        "expiry": (timezone.localdate() + timedelta(days=300)).isoformat(),
        "unit": "mL",
        "mg_per_unit": "28",
        "quantity": "10",
        "containers": "10",
        "received_on": timezone.localdate().isoformat(),
        "supplier_name": "Example Wholesale Inc.",
        "supplier_address": "1 Depot Road",
        "supplier_dea": "RE1234563",
    }
    with pytest.raises(services.LedgerInputError) as in_ml:  # Why: a Spravato lot received in mL
        services.receive(user=nurse, site=site, data=base)
    assert "esketamine is received in devices, not mL" in in_ml.value.errors["unit"]
    with pytest.raises(services.LedgerInputError) as strength:
        services.receive(user=nurse, site=site, data=base | {"unit": "device", "mg_per_unit": "30"})
    assert "a SPRAVATO device holds 28 mg, not 30 mg" in strength.value.errors["mg_per_unit"]
    assert refused(quantity="1.5", containers=2)["quantity"] == "1.5 devices: devices are counted whole"
    assert "each device is one container" in refused(quantity="6", containers=1)["containers"]
    assert not LedgerEntry.objects.exists()
    lot = spravato(nurse, site, lot="ESK-1", quantity="6")
    for bad in (
        lambda: services.count(user=nurse, lot=lot, counted="5.5", count_time="closing", reason="one used"),
        lambda: services.report_loss(user=nurse, lot=lot, quantity="0.5", reason="dropped"),
    ):
        with pytest.raises(services.LedgerInputError, match="devices are counted whole"):
            bad()
    session = ready_to_dose(nurse, prescriber, patient, "esk-trd-label", 56, session_number=2)
    with pytest.raises(chairside.SessionInputError) as half:  # Why: 1.5 Spravato devices
        chairside.record_administration(
            user=nurse, session=session, kind="nasal_device", lot_id=lot.pk, given="1.5"
        )
    assert half.value.errors["given"] == "1.5 devices: devices are counted whole"
    first = chairside.record_administration(user=nurse, session=session, kind="nasal_device", lot_id=lot.pk)
    use = LedgerEntry.objects.get(kind="use")
    assert (use.drawn, use.administered, use.wasted, use.administration) == (1, 1, 0, first)
    assert (
        first.concentration_mg_ml is None and first.product == "Spravato 28 mg" and services.balance(lot) == 5
    )


def test_a_waste_is_witnessed_the_draw_and_the_dose_stand_together(
    nurse: Any, prescriber: Any, patient: Any, site: Any
) -> None:
    tablets = receive(nurse, site, unit="tablet", strength="10", lot="SL-10", quantity="20")
    session = ready_to_dose(nurse, prescriber, patient, "sl-clinic-template", 10)
    with pytest.raises(chairside.SessionInputError) as alone:  # a dropped tablet, nobody signing
        chairside.record_administration(
            user=nurse, session=session, kind="sublingual", lot_id=tablets.pk, dose_mg=10, wasted="1"
        )
    assert "a waste needs a witness" in alone.value.errors["waste_witness"]
    with pytest.raises(chairside.SessionInputError) as wrong:
        chairside.record_administration(
            user=nurse,
            session=session,
            kind="sublingual",
            lot_id=tablets.pk,
            dose_mg=10,
            wasted="1",
            waste_witness=sign(prescriber, password="guess"),
        )
    assert "not accepted" in wrong.value.errors["waste_witness_password"]
    with pytest.raises(chairside.SessionInputError) as odd:
        chairside.record_administration(
            user=nurse, session=session, kind="sublingual", lot_id=tablets.pk, dose_mg=15
        )
    assert "15 mg is 1.5 tablets of 10 mg/tablet: tablets are given whole" in odd.value.errors["dose_mg"]
    _nothing_stored(session, tablets)
    dose = chairside.record_administration(
        user=nurse,
        session=session,
        kind="sublingual",
        lot_id=tablets.pk,
        dose_mg=10,
        wasted="1",
        waste_witness=sign(prescriber),
    )
    use = LedgerEntry.objects.get(kind="use")
    assert (use.drawn, use.administered, use.wasted, use.witness, use.administration) == (
        2,
        1,
        1,
        prescriber,
        dose,
    )
    assert services.balance(tablets) == 18


def test_if_the_draw_fails_the_dose_is_not_stored_either(
    iv_ready: Any, stocked: Any, nurse: Any, prescriber: Any, sign_in: Any, monkeypatch: Any
) -> None:
    """A colleague empties the lot between the check and the write: the register refuses the draw, and the
    dose the session page was saving goes with it (the page's request commits whatever the view returns)."""
    client = sign_in(Client(enforce_csrf_checks=True), nurse)
    page = client.get(f"/sessions/{iv_ready.pk}/").content.decode()

    def emptied(**kwargs: Any) -> Any:
        raise services.LedgerInputError({"quantity": "1 mL is more than the 0 mL left in lot K2026A"})

    monkeypatch.setattr(draws, "_append", emptied)
    answer = client.post(
        f"/sessions/{iv_ready.pk}/administer/", _start_form(page, stocked, prescriber), follow=True
    )
    assert "more than the 0 mL left in lot K2026A" in answer.content.decode()
    _nothing_stored(iv_ready, stocked)


def test_the_session_page_draws_from_a_chosen_lot(
    iv_ready: Any, stocked: Any, nurse: Any, prescriber: Any, front_desk: Any, sign_in: Any
) -> None:
    client = sign_in(Client(enforce_csrf_checks=True), nurse)
    page = client.get(f"/sessions/{iv_ready.pk}/").content.decode()
    form = page.split('id="doses"', 1)[1].split("</section>", 1)[0]
    assert "Ketamine HCl 50 mg/mL, 10 mL vial · 50 mg/mL · lot K2026A" in form and "100 mL left" in form
    assert 'name="concentration_mg_ml"' not in form and 'name="expiry"' not in form  # nothing typed by hand
    body = _start_form(page, stocked, prescriber) | {"version": iv_ready.version}
    done = client.post(f"/sessions/{iv_ready.pk}/administer/", body, follow=True).content.decode()
    assert "Recorded: Infusion started" in done
    card = done.split('id="controlled-drugs"', 1)[1].split("</section>", 1)[0]
    assert (
        "Infusion started, 35 mg" in card and "<td>1 mL</td><td>0.7</td><td>0.3</td><td>Prescriber1" in card
    )
    assert "(vial 50 mg/mL) · in 100 mL = 0.35 mg/mL · lot K2026A" in done
    assert services.balance(stocked) == 99
    desk = sign_in(Client(enforce_csrf_checks=True), front_desk)
    assert desk.post(f"/sessions/{iv_ready.pk}/administer/", {}).status_code == 403


def test_a_stock_use_needs_a_dose_of_the_same_session(
    iv_ready: Any, stocked: Any, nurse: Any, prescriber: Any, patient: Any, make_patient: Any, sign_in: Any
) -> None:
    client = sign_in(Client(), nurse)
    # Why: 0.7 mL "given" to a patient whose session had no administration. The old forms are gone…
    assert client.post(f"/ledger/lots/{stocked.pk}/use/", {"session": iv_ready.pk}).status_code == 404
    # …and the session page's form names a dose of this session, or nothing is recorded.
    bare = {"lot": stocked.pk, "drawn": "0.7", "administered": "0.7", "wasted": "0"}
    answer = client.post(f"/ledger/sessions/{iv_ready.pk}/use/", bare, follow=True).content.decode()
    assert "Stock use not recorded: administration choose the dose of this session" in answer
    other = ready_to_dose(nurse, prescriber, make_patient(nurse, given_name="Olive"))
    theirs = _start(other, stocked, nurse, given="0.7", verifier=sign(prescriber))
    client.post(f"/ledger/sessions/{iv_ready.pk}/use/", {"administration": theirs.pk, "given": "0.7"})
    assert not LedgerEntry.objects.filter(kind="use", session=iv_ready).exists()
    # A dose whose draw was wrong: reversed, then recorded again for that dose (once).
    dose = _start(iv_ready, stocked, nurse, given="0.7", wasted="0.3", verifier=sign(prescriber))
    wrong = LedgerEntry.objects.get(kind="use", administration=dose)
    with pytest.raises(services.LedgerInputError, match=f"this dose's draw is entry {wrong.seq}"):
        draws.record_use(user=nurse, administration=dose, given="0.7", wasted="0")
    services.correct(user=nurse, entry=wrong, reason="Wasted volume miscounted: none was wasted")
    page = client.get(f"/sessions/{iv_ready.pk}/").content.decode()
    assert "Record a dose's draw again" in page and "lot K2026A" in page
    again = client.post(
        f"/ledger/sessions/{iv_ready.pk}/use/",
        {"administration": dose.pk, "given": "0.7", "wasted": "0"},
        follow=True,
    ).content.decode()
    assert "Stock use recorded" in again and "Record a dose's draw again" not in again
    redrawn = LedgerEntry.objects.filter(kind="use", administration=dose).latest("seq")
    assert (redrawn.drawn, redrawn.wasted, redrawn.at) == (Decimal("0.7"), 0, dose.at)
    assert services.balance(stocked) == Decimal("98.6")  # 100 − 0.7 (Olive) − 0.7 (this dose)
    assert services.verify_chain(nurse.org_id) is None


def test_the_api_takes_a_lot_id_and_refuses_the_hand_typed_fields(
    iv_ready: Any, stocked: Any, nurse: Any, prescriber: Any, outsider: Any, site: Any, sign_in: Any
) -> None:
    from tests.chairside.journey import Api, signature

    desk = Api(nurse, sign_in)
    spravato(nurse, site, lot="ESK-1")  # esketamine: not offered for a ketamine session
    offered = desk.get(f"/sessions/{iv_ready.pk}/stock-lots").json()
    assert [(o["lot"], o["unit"], o["mg_per_unit"], o["balance"]) for o in offered] == [
        ("K2026A", "mL", "50.000", "100.000")
    ]
    typed = {
        "kind": "infusion_start",
        "product": "Ketamine HCl 10 mg/mL",
        "concentration_mg_ml": "10",
        "lot": "DEMO-K",
        "expiry": "2030-01-31",
        "dose_mg": "36.3",
        "container_volume_ml": "100",
        "rate_ml_per_h": "150",
        "verifier": signature(prescriber),
    }
    refused = desk.refused(f"/sessions/{iv_ready.pk}/administrations", typed)
    assert set(refused) == {"product", "concentration_mg_ml", "lot", "expiry", "lot_id"}
    assert "send lot_id" in refused["concentration_mg_ml"]
    body = {k: v for k, v in typed.items() if k not in ("product", "concentration_mg_ml", "lot", "expiry")}
    wrong = desk.refused(
        f"/sessions/{iv_ready.pk}/administrations",
        body | {"lot_id": str(stocked.pk), "given": "3.63", "verifier": signature(prescriber)},
    )
    assert "is 181.5 mg, not the 36.3 mg dose" in wrong["given"]
    done = desk.ok(
        f"/sessions/{iv_ready.pk}/administrations",
        body
        | {
            "lot_id": str(stocked.pk),
            "dose_mg": "35",
            "given": "0.7",
            "wasted": "0.3",
            "verifier": signature(prescriber),
        },
        status=201,
    )
    assert (done["lot"], done["concentration_mg_ml"], done["drawn"], done["wasted"]) == (
        "K2026A",
        "50.000",
        "1.000",
        "0.300",
    )
    assert done["final_concentration_mg_ml"] == "0.35"
    assert LedgerEntry.objects.get(kind="use").seq == done["register_entry"]
    assert Api(outsider, sign_in).get(f"/sessions/{iv_ready.pk}/stock-lots").status_code == 404
