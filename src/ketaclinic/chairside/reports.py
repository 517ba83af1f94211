"""PDFs of a treatment session (reportlab): the REMS Patient Monitoring Form and the session report.

Both identify the patient and the session on every page, say who printed them and when, and are built in
memory (nothing touches the disk). Times are shown in the site's time zone. The REMS form lists every field
of clinical.md §2.4 with its label; while a field is missing or a rule is broken it is marked
"DRAFT — incomplete" with the reasons. The session report holds the lifecycle, the pre-dose gate, the dose
timeline (devices, infusion start/stop and rate changes), a vitals plot (SBP, DBP, HR, SpO2 against minutes
from the first dose) and table, the scales given in the session, alerts with their acknowledgements,
emergency checklists, adverse events and the discharge criteria with any overrides.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from django.utils import timezone
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors
from reportlab.lib.pagesizes import letter
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from ketaclinic.accounts.models import User
from ketaclinic.chairside import rems_fields
from ketaclinic.chairside.models import RemsMonitoringForm, TreatmentSession
from ketaclinic.clinical import rems
from ketaclinic.core.labels import label

# --- fonts and styles ----------------------------------------------------------------------------------


def _register_fonts() -> tuple[str, str]:
    """DejaVu Sans where installed (covers every Latin, Greek and Cyrillic name), else reportlab's own Vera,
    else the built-in Helvetica (Latin-1 only)."""
    import reportlab

    candidates = [
        (
            Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
            Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
        ),
        (
            Path(reportlab.__file__).parent / "fonts/Vera.ttf",
            Path(reportlab.__file__).parent / "fonts/VeraBd.ttf",
        ),
    ]
    for regular, bold in candidates:
        if regular.exists() and bold.exists():
            if "KcSans" not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont("KcSans", str(regular)))
                pdfmetrics.registerFont(TTFont("KcSans-Bold", str(bold)))
            return "KcSans", "KcSans-Bold"
    return "Helvetica", "Helvetica-Bold"


FONT, BOLD = _register_fonts()
BODY = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=11.5)
CELL = ParagraphStyle("cell", fontName=FONT, fontSize=8, leading=10)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7.5, leading=9, textColor=colors.HexColor("#444444"))
H1 = ParagraphStyle("h1", fontName=BOLD, fontSize=15, leading=19, spaceAfter=4)
H2 = ParagraphStyle("h2", fontName=BOLD, fontSize=11, leading=14, spaceBefore=8, spaceAfter=3)
DRAFT = ParagraphStyle("draft", fontName=BOLD, fontSize=14, leading=18, textColor=colors.HexColor("#b3261e"))
OK = ParagraphStyle("ok", fontName=BOLD, fontSize=11, leading=14, textColor=colors.HexColor("#1e6b35"))
GRID = colors.HexColor("#b8c2cc")
HEAD_BG = colors.HexColor("#e8edf3")
MISSING_BG = colors.HexColor("#fde8e6")
NOT_ANSWERED = "— not answered —"


def _p(text: Any, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(escape("" if text is None else str(text)).replace("\n", "<br/>"), style)


def _b(text: str) -> Paragraph:
    return Paragraph(f"<b>{escape(text)}</b>", BODY)


def _table(
    rows: Sequence[Sequence[Any]], widths: Sequence[float], *, header: bool = True, shade: Iterable[int] = ()
) -> Table:
    cells = [[c if isinstance(c, Paragraph) else _p(c, CELL) for c in row] for row in rows]
    table = Table(cells, colWidths=list(widths), repeatRows=1 if header else 0, hAlign="LEFT", splitInRow=1)
    style = [
        ("GRID", (0, 0), (-1, -1), 0.4, GRID),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), HEAD_BG))
    style += [("BACKGROUND", (0, r), (-1, r), MISSING_BG) for r in shade]
    table.setStyle(TableStyle(style))
    return table


def _local(session: TreatmentSession, moment: datetime | None, fmt: str = "%H:%M") -> str:
    if moment is None:
        return ""
    return timezone.localtime(moment, session.site.zone).strftime(fmt)


def _who(user: User | None) -> str:
    return user.display_name if user is not None else ""


def _identity(session: TreatmentSession) -> list[list[Any]]:
    patient = session.patient
    return [
        [_b("Patient"), f"{patient.family_name}, {patient.given_name}", _b("MRN"), patient.mrn],
        [_b("Birthdate"), patient.date_of_birth.isoformat(), _b("Site"), session.site.name],
        [
            _b("Session"),
            f"{_local(session, session.dose_started_at or session.scheduled_at, '%Y-%m-%d')} · "
            f"{session.get_drug_display()} · {session.get_route_display()}",
            _b("Session id"),
            str(session.pk),
        ],
    ]


def _build(
    story: list[Any],
    *,
    title: str,
    session: TreatmentSession,
    printed_by: User,
    now: datetime,
    watermark: str = "",
) -> bytes:
    buffer = io.BytesIO()
    patient = session.patient
    footer_left = (
        f"{patient.family_name}, {patient.given_name} · MRN {patient.mrn} · session {str(session.pk)[:8]} · "
        f"printed {_local(session, now, '%Y-%m-%d %H:%M')} by {printed_by.display_name} · contains PHI"
    )

    def decorate(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColor(colors.HexColor("#555555"))
        canvas.drawString(15 * mm, 10 * mm, footer_left)
        canvas.drawRightString(letter[0] - 15 * mm, 10 * mm, f"Page {doc.page}")
        if watermark:
            canvas.setFont(BOLD, 60)
            canvas.setFillColor(colors.Color(0.8, 0.1, 0.1, alpha=0.12))
            canvas.translate(letter[0] / 2, letter[1] / 2)
            canvas.rotate(40)
            canvas.drawCentredString(0, 0, watermark)
        canvas.restoreState()

    doc = SimpleDocTemplate(
        buffer,
        pagesize=letter,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=14 * mm,
        bottomMargin=16 * mm,
        title=title,
        author="ketaclinic",
        subject=title,
    )
    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buffer.getvalue()


WIDTH = letter[0] - 30 * mm

# --- the REMS Patient Monitoring Form ------------------------------------------------------------------


def rems_form_pdf(*, row: RemsMonitoringForm, printed_by: User, now: datetime | None = None) -> bytes:
    """Every field of the form with its label; 'DRAFT — incomplete' and the reasons while it is not complete."""
    now = now or timezone.now()
    session = row.session
    values = row.data.get("fields", {})
    result = rems.check_form(rems_fields.unflatten(values), version=rems.FormVersion.NEWER)
    missing = set(result.missing)
    story: list[Any] = [
        _p("SPRAVATO® REMS Patient Monitoring Form — clinic worksheet", H1),
        _p(
            "Assembled by ketaclinic from the session record (clinical.md §2.4, form version 11/2021 and the "
            "newer form's questions). Submit within 7 days of the session at SPRAVATOrems.com or by fax "
            "1-877-778-0091.",
            SMALL,
        ),
        Spacer(1, 4),
        _table(_identity(session), [22 * mm, 62 * mm, 22 * mm, WIDTH - 106 * mm], header=False),
        Spacer(1, 6),
    ]
    if not result.complete:
        story.append(_p("DRAFT — incomplete: not signed off, do not submit", DRAFT))
        if result.missing:
            story.append(_p("Missing: " + "; ".join(rems_fields.label(n) for n in result.missing)))
        for problem in result.violations:
            story.append(_p(f"Problem: {problem}"))
    elif row.signed_off_at is None:
        story.append(_p("Complete — awaiting sign-off", OK))
    else:
        signature = row.data.get("signature", {})
        story.append(
            _p(
                f"Signed off by {_who(row.signed_off_by)} on {_local(session, row.signed_off_at, '%Y-%m-%d %H:%M')}"
                f" — {signature.get('meaning', 'attested')}",
                OK,
            )
        )
    status = f"Due by {row.due_on.isoformat()}"
    if row.submitted_at is not None:
        status += (
            f" · submitted {_local(session, row.submitted_at, '%Y-%m-%d %H:%M')} by {_who(row.submitted_by)},"
            f" confirmation number {row.confirmation_number}"
        )
    else:
        status += " · not yet submitted"
    story += [_p(status), Spacer(1, 4)]
    for title, items in rems_fields.SECTIONS:
        rows: list[list[Any]] = [[_b("Question"), _b("Answer")]]
        shade = []
        for name, text in items:
            shown = rems_fields.display(name, values.get(name))
            optional = name in ("patient.middle_initial", "setting.address2", "dose_other_mg")
            if not shown:
                shown = "(optional, blank)" if optional and name not in missing else NOT_ANSWERED
            if name in missing:
                shade.append(len(rows))
                shown = f"MISSING {shown}"
            rows.append([_p(text), _p(shown)])
        story.append(KeepTogether([_p(title, H2), _table(rows, [110 * mm, WIDTH - 110 * mm], shade=shade)]))
    story.append(Spacer(1, 8))
    story.append(
        _p(f"Form record version {row.version}. Printed copies are not tracked after printing.", SMALL)
    )
    return _build(
        story,
        title="REMS Patient Monitoring Form",
        session=session,
        printed_by=printed_by,
        now=now,
        watermark="" if result.complete else "DRAFT",
    )


# --- the session report --------------------------------------------------------------------------------


def _minutes(session: TreatmentSession, start: datetime | None, moment: datetime) -> str:
    if start is None:
        return ""
    minutes = int((moment - start).total_seconds() // 60)
    return f"{minutes:+d}"


def vitals_drawing(points: Sequence[tuple[float, dict[str, int | None]]], width: float = WIDTH) -> Drawing:
    """A line chart of SBP, DBP, HR and SpO2 against minutes from the first dose."""
    series_def = (
        ("sbp", "SBP mmHg", colors.HexColor("#b3261e")),
        ("dbp", "DBP mmHg", colors.HexColor("#e07b00")),
        ("hr", "HR bpm", colors.HexColor("#1f5fa8")),
        ("spo2", "SpO2 %", colors.HexColor("#1e6b35")),
    )
    drawing = Drawing(width, 200)
    data, shown = [], []
    for key, name, color in series_def:
        line = [(x, float(y)) for x, v in points if (y := v.get(key)) is not None]
        if line:
            data.append(line)
            shown.append((color, name))
    if not data:
        drawing.add(String(10, 100, "No vital signs recorded.", fontName=FONT, fontSize=9))
        return drawing
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 36, 32, width - 140, 150
    plot.data = data
    for i, (color, _name) in enumerate(shown):
        plot.lines[i].strokeColor = color
        plot.lines[i].strokeWidth = 1.4
        plot.lines[i].symbol = makeMarker("FilledCircle", size=3, fillColor=color, strokeColor=color)
    xs = [x for line in data for x, _ in line]
    ys = [y for line in data for _, y in line]
    plot.xValueAxis.valueMin = min(min(xs), 0) - 5
    plot.xValueAxis.valueMax = max(xs) + 5
    plot.yValueAxis.valueMin = max(0, (min(ys) // 20) * 20 - 10)
    plot.yValueAxis.valueMax = (max(ys) // 20) * 20 + 30
    for axis in (plot.xValueAxis, plot.yValueAxis):
        axis.labels.fontName = FONT
        axis.labels.fontSize = 7
    plot.xValueAxis.labelTextFormat = "%d"
    plot.yValueAxis.labelTextFormat = "%d"
    drawing.add(plot)
    drawing.add(
        String(
            plot.x + plot.width / 2,
            6,
            "minutes from first dose",
            fontName=FONT,
            fontSize=8,
            textAnchor="middle",
        )
    )
    legend = Legend()
    legend.x, legend.y = plot.x + plot.width + 14, plot.y + plot.height
    legend.fontName, legend.fontSize = FONT, 8
    legend.alignment = "right"
    legend.columnMaximum = len(shown)
    legend.colorNamePairs = shown
    drawing.add(legend)
    return drawing


def _or(value: Any, missing: str) -> str:
    """A number as recorded (0 is a value, shown as 0), or ``missing`` when none was recorded."""
    return missing if value is None else str(value)


def _status(code: str) -> str:
    return label(code, "session_status")


def _override_text(what: str, override: dict[str, Any], *, by: str) -> str:
    """'Override of Pre-dose vitals by Dr A: BP rechecked' (a stored override, in words)."""
    who = f" by {override[by]}" if override.get(by) else ""
    return f"Override of {what}{who}: {override.get('reason', '')}"


def _generic(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items() if v not in (None, ""))
    return str(value)


def session_report_pdf(*, session: TreatmentSession, printed_by: User, now: datetime | None = None) -> bytes:
    from ketaclinic.measures.models import ScaleAdministration

    now = now or timezone.now()
    first = session.dose_started_at
    administrations = list(session.administrations.select_related("given_by", "verified_by"))
    if first is None and administrations:
        first = administrations[0].at
    story: list[Any] = [
        _p("Treatment session report", H1),
        _table(_identity(session), [22 * mm, 62 * mm, 22 * mm, WIDTH - 106 * mm], header=False),
        Spacer(1, 4),
        _table(
            [
                [
                    _b("Protocol"),
                    f"{session.protocol_id} v{session.protocol_version}",
                    _b("Planned dose"),
                    f"{session.planned_dose_mg} mg",
                ],
                [
                    _b("Status"),
                    session.get_status_display()
                    + (f" — {session.stop_reason}" if session.stop_reason else ""),
                    _b("Chair"),
                    str(session.chair.label) if session.chair else "",
                ],
                [
                    _b("First dose"),
                    _local(session, first, "%Y-%m-%d %H:%M"),
                    _b("Discharged"),
                    _local(session, session.discharged_at, "%Y-%m-%d %H:%M"),
                ],
            ],
            [22 * mm, 62 * mm, 26 * mm, WIDTH - 110 * mm],
            header=False,
        ),
    ]

    events = list(session.events.select_related("by"))
    story.append(_p("Lifecycle", H2))
    rows: list[list[Any]] = [["Time", "Change", "By", "Reason"]]
    rows += [
        [_local(session, e.at), f"{_status(e.from_status)} → {_status(e.to_status)}", _who(e.by), e.reason]
        for e in events
    ]
    story.append(
        _table(rows, [18 * mm, 50 * mm, 40 * mm, WIDTH - 108 * mm])
        if events
        else _p("No transitions recorded.")
    )

    gate = session.gate_checks.select_related("by").first()
    story.append(_p("Pre-dose gate", H2))
    if gate is None:
        story.append(_p("No gate evaluation recorded."))
    else:
        story.append(
            _p(
                f"Evaluated {_local(session, gate.evaluated_at)} by {_who(gate.by)}: "
                f"{'open' if gate.passed else 'closed'}"
            )
        )
        rows = [["Item", "Status", "Reason"]]
        rows += [
            [i.get("title", i.get("key", "")), label(i.get("status", ""), "gate_status"), i.get("reason", "")]
            if isinstance(i, dict)
            else [str(i), "", ""]
            for i in gate.items
        ]
        story.append(_table(rows, [50 * mm, 26 * mm, WIDTH - 76 * mm]))
        titles = {i.get("key"): i.get("title") for i in gate.items if isinstance(i, dict)}
        for override in gate.overrides:
            what = titles.get(override.get("item_key")) or label(override.get("item_key"), "gate_status")
            story.append(_p(_override_text(what, override, by="prescriber")))

    story.append(_p("Doses", H2))
    if administrations:
        rows = [
            [
                "Time",
                "Min",
                "Event",
                "Product · lot (expiry)",
                "Dose / rate",
                "Given by · verified by",
                "Note",
            ]
        ]
        for a in administrations:
            amount = f"{a.dose_mg} mg" if a.dose_mg is not None else ""
            if a.rate_ml_per_h is not None or a.rate_mg_per_h is not None:
                amount = " · ".join(
                    x
                    for x in (
                        amount,
                        f"{a.rate_ml_per_h} mL/h" if a.rate_ml_per_h is not None else "",
                        f"{a.rate_mg_per_h} mg/h" if a.rate_mg_per_h is not None else "",
                    )
                    if x
                )
            kind = a.get_kind_display() + (f" #{a.device_number}" if a.device_number else "")
            conc = f" {a.concentration_mg_ml} mg/mL" if a.concentration_mg_ml is not None else ""
            rows.append(
                [
                    _local(session, a.at),
                    _minutes(session, first, a.at),
                    kind,
                    f"{a.product}{conc} · {a.lot} ({a.expiry.isoformat()})",
                    amount,
                    _who(a.given_by) + (f" · {_who(a.verified_by)}" if a.verified_by else ""),
                    " ".join(x for x in (a.warning, a.note) if x),
                ]
            )
        story.append(_table(rows, [14 * mm, 11 * mm, 36 * mm, 42 * mm, 26 * mm, 32 * mm, WIDTH - 161 * mm]))
    else:
        story.append(_p("No doses recorded."))

    observations = list(session.observations.select_related("entered_by"))
    story.append(_p("Vital signs", H2))
    origin = first or (observations[0].observed_at if observations else None)
    points = [
        (
            (o.observed_at - origin).total_seconds() / 60 if origin else 0.0,
            {"sbp": o.sbp_mmhg, "dbp": o.dbp_mmhg, "hr": o.hr_bpm, "spo2": o.spo2_pct},
        )
        for o in observations
    ]
    story.append(vitals_drawing(points))
    if observations:
        rows = [["Time", "Min", "BP", "HR", "SpO2", "RR", "Temp °C", "MOAA/S", "CADSS", "Mental status · by"]]
        for o in observations:
            bp = (
                f"{_or(o.sbp_mmhg, '?')}/{_or(o.dbp_mmhg, '?')}"
                if o.sbp_mmhg is not None or o.dbp_mmhg is not None
                else ""
            )
            rows.append(
                [
                    _local(session, o.observed_at),
                    _minutes(session, first, o.observed_at),
                    bp,
                    o.hr_bpm,
                    o.spo2_pct,
                    o.rr_per_min,
                    o.temp_c,
                    o.moaas,
                    o.cadss_total,
                    " · ".join(x for x in (o.mental_status, _who(o.entered_by)) if x),
                ]
            )
        rows = [[("" if c is None else c) for c in r] for r in rows]
        widths = [14 * mm, 11 * mm, 18 * mm, 11 * mm, 11 * mm, 9 * mm, 13 * mm, 14 * mm, 13 * mm]
        story.append(_table(rows, [*widths, WIDTH - sum(widths)]))
    from ketaclinic.chairside.reading_services import temperature_rules

    story.append(
        _p(
            "Temperature alerts: "
            + "; ".join(f"{text} ({source})" for text, source, _ in temperature_rules(session)),
            SMALL,
        )
    )

    scales = list(ScaleAdministration.objects.filter(session_id=session.pk, patient=session.patient))
    story.append(_p("Rating scales in this session", H2))
    if scales:
        rows = [["Time", "Instrument", "Total", "Band", "Flags"]]
        rows += [
            [
                _local(session, s.administered_at),
                label(s.instrument, "instrument"),
                f"{s.total:g}" if s.total is not None else "",
                s.band,
                "; ".join(_generic(f) for f in s.flags),
            ]
            for s in scales
        ]
        story.append(_table(rows, [16 * mm, 30 * mm, 16 * mm, 40 * mm, WIDTH - 102 * mm]))
    else:
        story.append(_p("No scales recorded for this session."))

    alerts = sorted(session.alerts.select_related("acknowledged_by"), key=lambda a: a.raised_at)
    story.append(_p("Alerts and acknowledgements", H2))
    if alerts:
        rows = [["Raised", "Severity", "Alert", "Acknowledged", "Note"]]
        for al in alerts:
            ack = (
                f"{_local(session, al.acknowledged_at)} by {_who(al.acknowledged_by)}"
                if al.acknowledged_at
                else "NOT acknowledged"
            )
            if al.escalated_at:
                ack += f"; escalated {_local(session, al.escalated_at)}"
            rows.append([_local(session, al.raised_at), al.severity, al.message, ack, al.note])
        story.append(_table(rows, [14 * mm, 18 * mm, 64 * mm, 40 * mm, WIDTH - 136 * mm]))
    else:
        story.append(_p("No alerts raised."))

    checklists = list(session.checklists.select_related("started_by"))
    story.append(_p("Emergency checklists", H2))
    if not checklists:
        story.append(_p("None started."))
    for run in checklists:
        story.append(_p(f"{run.title} — started {_local(session, run.started_at)} by {_who(run.started_by)}"))
        rows = [["Step", "Done", "By"]]
        for step in run.steps:
            done = step.get("done_at")
            when = _local(session, datetime.fromisoformat(done)) if done else "not done"
            rows.append([step.get("text", ""), when, step.get("by") or ""])
        story.append(_table(rows, [WIDTH - 62 * mm, 22 * mm, 40 * mm]))

    adverse = list(session.adverse_events.select_related("recorded_by"))
    story.append(_p("Adverse events", H2))
    if adverse:
        rows = [["Onset", "Event", "Severity", "Serious", "Action taken", "Outcome", "Recorded by"]]
        rows += [
            [
                _local(session, e.onset_at),
                e.term + (f": {e.description}" if e.description else ""),
                e.severity,
                "Yes" if e.serious else "No",
                e.action_taken,
                e.outcome,
                _who(e.recorded_by),
            ]
            for e in adverse
        ]
        story.append(_table(rows, [14 * mm, 40 * mm, 18 * mm, 14 * mm, 40 * mm, 20 * mm, WIDTH - 146 * mm]))
    else:
        story.append(_p("No adverse events recorded."))

    story.append(_p("Discharge", H2))
    record = getattr(session, "discharge", None)
    if record is None:
        story.append(_p("Not discharged."))
    else:
        ready = _local(session, session.ready_at) if session.ready_at else "not determined"
        story.append(
            _p(
                f"Decided {_local(session, record.decided_at, '%Y-%m-%d %H:%M')} by {_who(record.by)}. "
                f"Escort present: {'yes' if record.escort_present else 'no'}. Driving advice given: "
                f"{'yes' if record.driving_advice_given else 'no'}. Would have been ready at: {ready}."
            )
        )
        rows = [["Criterion", "Met", "Reason"]]
        rows += [
            [
                label(c.get("criterion", ""), "discharge_criterion"),
                "Yes" if c.get("met") else "No",
                c.get("reason", ""),
            ]
            if isinstance(c, dict)
            else [str(c), "", ""]
            for c in record.criteria
        ]
        story.append(_table(rows, [36 * mm, 12 * mm, WIDTH - 48 * mm]))
        for override in record.overrides:
            what = label(override.get("criterion"), "discharge_criterion")
            story.append(_p(_override_text(what, override, by="by")))

    form = getattr(session, "rems_form", None)
    if form is not None:
        state = "submitted" if form.submitted_at else ("signed off" if form.signed_off_at else "draft")
        story.append(_p("REMS Patient Monitoring Form", H2))
        story.append(
            _p(
                f"{state}; due by {form.due_on.isoformat()}"
                + (f"; confirmation number {form.confirmation_number}" if form.confirmation_number else "")
            )
        )
    return _build(story, title="Treatment session report", session=session, printed_by=printed_by, now=now)
