"""The controlled-substance register as a PDF (1304.04: readily retrievable, printable per location)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from django.utils import timezone
from reportlab.lib.pagesizes import landscape, letter
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

from ketaclinic.accounts.models import Site, User
from ketaclinic.chairside.reports import BODY, H1, SMALL, _p, _table
from ketaclinic.ledger.models import LedgerEntry
from ketaclinic.ledger.services import qty

PAGE = landscape(letter)
WIDTH = PAGE[0] - 24 * mm


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
        if e.witness_id:
            text += f"; waste witnessed by {_who(e.witness)}, signed {timezone.localtime(e.witness_signed_at, e.lot.site.zone):%Y-%m-%d %H:%M}"
        return text
    if e.kind == "count":
        assert e.counted is not None  # services.count always stores it
        return f"Counted {qty(e.counted)} {unit} at {e.count_time} of business" + (
            f": {e.reason}" if e.reason else ""
        )
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
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=PAGE,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"Controlled-substance register {site.code} {since.isoformat()}–{until.isoformat()}",
    )
    doc.build(story)
    return buffer.getvalue()
