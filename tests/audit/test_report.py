"""The audit report: admins filter and sort by user, patient, action and date, and export CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.test import Client

from ketaclinic.audit.models import AuditEntry


def test_admin_filters_by_patient_and_action(
    admin: Any, nurse: Any, patient: Any, make_patient: Any, sign_in: Any
) -> None:
    other = make_patient(nurse, given_name="Second", family_name="Person")
    client = sign_in(Client(), admin)
    page = client.post("/audit/", {"patient_mrn": patient.mrn, "action": "add", "sort": "-seq"})
    assert page.status_code == 200
    rows = page.context["page"].object_list
    assert [e.patient_id for e in rows] == [patient.pk]
    assert other.mrn.encode() not in page.content.split(b"<tbody>")[1]


def test_admin_filters_by_user_and_sorts(
    admin: Any, nurse: Any, front_desk: Any, make_patient: Any, sign_in: Any
) -> None:
    make_patient(nurse, mrn="A1")
    make_patient(front_desk, given_name="Fd", family_name="Made", mrn="A2")
    client = sign_in(Client(), admin)
    rows = client.post("/audit/", {"user": "frontdesk1", "sort": "seq"}).context["page"].object_list
    assert rows and all(e.username == "frontdesk1" for e in rows)
    seqs = [e.seq for e in client.post("/audit/", {"sort": "seq"}).context["page"].object_list]
    assert seqs == sorted(seqs)
    seqs = [e.seq for e in client.post("/audit/", {"sort": "-seq"}).context["page"].object_list]
    assert seqs == sorted(seqs, reverse=True)


def test_admin_does_not_see_another_organizations_entries(
    admin: Any, outsider_patient: Any, sign_in: Any
) -> None:
    client = sign_in(Client(), admin)
    rows = client.post("/audit/", {"sort": "-seq"}).context["page"].object_list
    assert all(e.organization_id == admin.organization_id for e in rows)


def test_csv_export_contains_the_filtered_entries_and_is_audited(
    admin: Any, patient: Any, sign_in: Any
) -> None:
    client = sign_in(Client(), admin)
    response = client.post("/audit/export.csv", {"patient_mrn": patient.mrn, "sort": "seq"})
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert table[0][:3] == ["seq", "occurred_at_utc", "user"]
    assert len(table) >= 2 and all(row[4] == patient.mrn for row in table[1:])
    assert AuditEntry.objects.filter(user=admin, action="export", category="audit-report").exists()


def test_csv_export_never_carries_a_live_formula(admin: Any, patient: Any, sign_in: Any) -> None:
    """Issue 15 M4: payloads in any text column come out as text (a leading apostrophe), not formulas."""
    from ketaclinic.audit import services as audit

    payloads = ["=cmd|' /C calc'!A0", "+SUM(1+1)", "-2+3", "@SUM(1)", "\t=1+1", "\r=1+1", '=HYPERLINK("x")']
    for text in payloads:
        audit.record(user=admin, action="query", category="probe", object_id=text, client=text, detail=text)
    client = sign_in(Client(), admin)
    response = client.post("/audit/export.csv", {"category": "probe", "sort": "seq"})
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode(), newline="")))
    cells = [cell for row in table[1:] for cell in row]
    live = [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert live == [] and len(table) >= len(payloads) + 1
    assert "'=cmd|' /C calc'!A0" in cells and "'@SUM(1)" in cells


def test_mrn_filters_never_travel_in_the_url(admin: Any, sign_in: Any) -> None:
    client = sign_in(Client(), admin)
    page = client.get("/audit/")
    assert b'method="post"' in page.content
