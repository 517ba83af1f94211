"""The controlled-substance register as a PDF (1304.04: readily retrievable, printable per location), and
an inventory as the printed record kept at the location (1304.11; security.md §4)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone
from reportlab.lib.pagesizes import landscape, letter
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

from ketaclinic.accounts.models import Site, User
from ketaclinic.chairside.reports import BODY, H1, SMALL, _p, _table
from ketaclinic.ledger.models import Inventory, LedgerEntry
from ketaclinic.ledger.services import qty

PAGE = landscape(letter)
WIDTH = PAGE[0] - 24 * mm


def _build(story: list[Any], title: str) -> bytes:
    """A landscape letter PDF of ``story`` (12 mm margins)."""
    buffer = io.BytesIO()
    margins = {"leftMargin": 12 * mm, "rightMargin": 12 * mm, "topMargin": 12 * mm, "bottomMargin": 12 * mm}
    SimpleDocTemplate(buffer, pagesize=PAGE, title=title, **margins).build(story)
    return buffer.getvalue()


def _who(user: User | None) -> str:
    """A person as the register names them; a prescriber with their DEA number (accounts/staff.py)."""
    if user is None:
        return ""
    dea = f", DEA {user.dea_number}" if user.dea_number else ""
    return f"{user.display_name} ({user.get_username()}{dea})"


def registrant_text(site: Site) -> str:
    """The site as the registrant whose register this is (21 CFR 1304.04: kept at the registered location),
    from its settings page (accounts/site_identifiers.py)."""
    parts = [site.name, *site.address_lines]
    if site.phone:
        parts.append(f"phone {site.phone}")
    dea = site.dea_registration or "not recorded (an administrator enters it on the site's settings page)"
    return f"Registrant: {', '.join(parts)} · DEA registration {dea}"


def entry_text(e: LedgerEntry) -> str:
    """What the entry records, in words, for the register (screen and PDF)."""
    unit = e.lot.unit
    if e.kind == "receipt":
        return (
            f"Received {qty(e.quantity)} {unit} in {e.containers} container(s) from {e.supplier_name}, "
            f"{e.supplier_address}, DEA {e.supplier_dea}"
        )
    if e.kind == "use":
        patient = e.patient
        # A use names its patient (services.record_use); drawn = given + wasted is a database constraint.
        assert patient is not None and e.drawn is not None and e.administered is not None
        assert e.wasted is not None
        who = f"{patient.family_name}, {patient.given_name} ({patient.mrn}), {patient.address or 'no address on file'}"
        text = f"Drawn {qty(e.drawn)} {unit}: given {qty(e.administered)}, wasted {qty(e.wasted)} — {who}"
        dose = e.administration
        if dose is not None:
            text += (
                f"; dose: {dose.get_kind_display().lower()}, {qty(dose.dose_mg or Decimal(0))} mg at "
                f"{timezone.localtime(dose.at, e.lot.site.zone):%H:%M}"
            )
        if e.witness_id:
            text += f"; waste witnessed by {_who(e.witness)}, signed {timezone.localtime(e.witness_signed_at, e.lot.site.zone):%Y-%m-%d %H:%M}"
        return text
    if e.kind == "count":
        assert e.counted is not None  # services.count always stores it
        text = f"Counted {qty(e.counted)} {unit} at {e.count_time} of business"
        if e.containers is not None:
            text += f", {e.containers} container(s)"
        if e.inventory_id:
            text += " (inventory)"
        if e.reason:
            text += f": {e.reason}"
        if e.witness_id:
            text += f"; second person {_who(e.witness)}"
        return text
    if e.kind == "loss":
        return f"Loss of {qty(-e.quantity)} {unit}: {e.reason}"
    return f"Correction of entry {e.corrects.seq if e.corrects else '?'}: {e.reason}"


def register_pdf(
    *,
    site: Site,
    since: date,
    until: date,
    entries: Sequence[LedgerEntry],
    printed_by: User,
    now: datetime | None = None,
) -> bytes:
    now = now or timezone.now()
    zone = site.zone
    rows: list[list[Any]] = [["#", "When", "Product, lot", "Entry", "Change", "Balance", "Recorded by"]]
    for e in entries:
        rows.append(
            [
                str(e.seq),
                f"{timezone.localtime(e.at, zone):%Y-%m-%d %H:%M}",
                f"{e.lot.product}, lot {e.lot.lot} (exp. {e.lot.expiry.isoformat()})",
                entry_text(e),
                f"{'+' if e.quantity > 0 else ''}{qty(e.quantity)} {e.lot.unit}",
                f"{qty(e.balance_after)} {e.lot.unit}",
                _who(e.by),
            ]
        )
    story: list[Any] = [
        _p(f"Controlled-substance register — {site.name}", H1),
        _p(registrant_text(site), BODY),
        _p(
            f"{since.isoformat()} to {until.isoformat()} ({site.time_zone}). Ketamine and esketamine, DEA Schedule III "
            "(21 CFR 1308.13(c)). Entries are never edited: a correction is a new entry naming the one it corrects.",
            BODY,
        ),
        Spacer(1, 4),
    ]
    if len(rows) == 1:
        story.append(_p("No entries in this period.", BODY))
    else:
        story.append(_table(rows, [10 * mm, 26 * mm, 60 * mm, WIDTH - 172 * mm, 20 * mm, 20 * mm, 36 * mm]))
    story.append(Spacer(1, 6))
    story.append(
        Paragraph(
            f"Printed {timezone.localtime(now, zone):%Y-%m-%d %H:%M} by {_who(printed_by)} · contains PHI",
            SMALL,
        )
    )
    return _build(story, f"Controlled-substance register {site.code} {since.isoformat()}–{until.isoformat()}")


def inventory_pdf(
    *, inventory: Inventory, counts: Sequence[LedgerEntry], printed_by: User, now: datetime | None = None
) -> bytes:
    """The inventory as printed and kept at the location: who took it (two people), the date and whether at
    opening or close of business, and for each lot the substance, finished form, NDC, lot, expiry, strength,
    containers and the quantity counted (security.md §4, 21 CFR 1304.11)."""
    from ketaclinic.ledger.inventory import INVENTORY_SOURCE, status

    now = now or timezone.now()
    site = inventory.site
    zone = site.zone
    rows: list[list[Any]] = [
        [
            "Register #",
            "Substance",
            "Finished form (product)",
            "NDC",
            "Lot",
            "Expiry",
            "Strength",
            "Containers",
            "Counted",
            "Difference from the register",
        ]
    ]
    for e in counts:
        lot = e.lot
        per = "mL" if lot.unit == "mL" else lot.unit
        assert e.counted is not None  # an inventory line always carries its count
        rows.append(
            [
                str(e.seq),
                f"{lot.get_drug_display()} (Schedule III)",
                lot.product,
                lot.ndc or "—",
                lot.lot,
                lot.expiry.isoformat(),
                f"{qty(lot.mg_per_unit)} mg/{per}",
                "" if e.containers is None else str(e.containers),
                f"{qty(e.counted)} {lot.unit} ({qty(e.counted * lot.mg_per_unit)} mg)",
                f"{'+' if e.quantity > 0 else ''}{qty(e.quantity)} {lot.unit}: {e.reason}"
                if e.quantity
                else "none",
            ]
        )
    signed = timezone.localtime(inventory.witness_signed_at, zone)
    story: list[Any] = [
        _p(f"Controlled-substance inventory — {inventory.get_kind_display()}", H1),
        _p(f"{site.organization.name}. {registrant_text(site)}", BODY),
        _p(
            f"Taken on {inventory.taken_on.isoformat()} at the {inventory.get_count_time_display()} "
            f"({site.time_zone}). Ketamine and esketamine, DEA Schedule III (21 CFR 1308.13(c)). Every quantity was "
            "counted or measured (mL measured, devices and tablets counted), not estimated.",
            BODY,
        ),
        Spacer(1, 4),
    ]
    if len(rows) == 1:
        story.append(_p(f"No ketamine or esketamine on hand at {site.name} on this date.", BODY))
    else:
        story.append(
            _table(
                rows,
                [
                    16 * mm,
                    24 * mm,
                    46 * mm,
                    24 * mm,
                    20 * mm,
                    18 * mm,
                    20 * mm,
                    16 * mm,
                    30 * mm,
                    WIDTH - 214 * mm,
                ],
            )
        )
    story += [
        Spacer(1, 6),
        _p(
            f"Taken by {_who(inventory.taken_by)} ({inventory.taken_by.get_role_display()}) and "
            f"{_who(inventory.witness)} ({inventory.witness.get_role_display()}), who signed by re-authenticating "
            f"with password and authenticator code at {signed:%Y-%m-%d %H:%M}.",
            BODY,
        ),
        _p(
            f"Next inventory due by {status(site).due_by or '—'}. {INVENTORY_SOURCE}. Keep this "
            "record at the location for at least 2 years (21 CFR 1304.04). The counts are entries of the "
            "hash-chained register (numbers above).",
            SMALL,
        ),
        Paragraph(
            f"Printed {timezone.localtime(now, zone):%Y-%m-%d %H:%M} by {_who(printed_by)}",
            SMALL,
        ),
    ]
    return _build(story, f"Controlled-substance inventory {site.code} {inventory.taken_on.isoformat()}")
