"""Issue 15 H4: opening "Unbound readings" after one huge message took 45 s and grew the web server from
180 MB to 2.3 GB (every reading row carried its message's text). The page is now paginated and reads
one page of messages and their values only — never a message's text — however much waits."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from ketaclinic.monitoring.models import HL7Message, VitalReading
from ketaclinic.monitoring.rows import MessageRow, ReadingRow, insert_messages, insert_readings

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
MESSAGES = 2_000


def waiting(org: Any, site: Any) -> int:
    """2,000 monitor messages of five unbound readings each, and one of 200 readings whose text is 250 kB
    (the most a message may carry), stored as the feed stores them."""
    kinds = [
        ("sbp", 121.0, "mm[Hg]"),
        ("dbp", 79.0, "mm[Hg]"),
        ("hr", 64.0, "/min"),
        ("spo2", 98.0, "%"),
        ("rr", 14.0, "/min"),
    ]
    messages = [
        MessageRow(org.pk, "SIM", f"U{i}", f"{i:064d}", "ORU^R01", T0 + timedelta(seconds=i), "127.0.0.1:1", "MSH|x",
                   "AA", "", True, None, "C1", [])
        for i in range(MESSAGES)
    ]  # fmt: skip
    big = MessageRow(org.pk, "SIM", "BIG", "f" * 64, "ORU^R01", T0 + timedelta(hours=2), "127.0.0.1:1",
                     "MSH|" + "x" * 250_000, "AA", "", True, None, "C1", [])  # fmt: skip
    with transaction.atomic():
        ids = insert_messages([*messages, big])
        rows = [
            ReadingRow(org.pk, site.pk, None, None, None, message_id, T0 + timedelta(seconds=i), T0, "OBX-14",
                       kind, value, unit, "hl7", False, True, "", "", n == 0)
            for i, message_id in enumerate(ids[:-1])
            for n, (kind, value, unit) in enumerate(kinds)
        ]  # fmt: skip
        rows += [
            ReadingRow(org.pk, site.pk, None, None, None, ids[-1], T0 + timedelta(hours=2), T0, "OBX-14",
                       "sbp", 100.0 + n, "mm[Hg]", "hl7", False, True, "", "", n == 0)
            for n in range(200)
        ]  # fmt: skip
        insert_readings(rows)
    return ids[-1]


def test_a_large_backlog_is_paged_fast_without_reading_message_text(
    org: Any, site: Any, nurse: Any, make_patient: Any, sign_in: Any
) -> None:
    big_id = waiting(org, site)
    patient = make_patient(nurse)
    client = sign_in(Client(enforce_csrf_checks=True), nurse)
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/monitoring/unbound/")
    took = time.perf_counter() - started
    assert page.status_code == 200
    text = page.content.decode()
    assert "2001 messages waiting · page 1 of 41, newest first, 50 per page" in text
    # The newest first: the 200-value message, shown with a dozen values and the rest counted.
    assert "and 188 more values" in text and text.count('name="message"') == 50
    assert 'href="?page=2">Older</a>' in text
    # Never the message text: no query selects the raw column, and the page is a handful of queries.
    raw = connection.ops.quote_name("raw")
    assert not [q["sql"] for q in queries if raw in q["sql"] or ".raw" in q["sql"]]
    assert len(queries) < 25
    assert took < 5.0, f"the page took {took:.1f} s"

    last = client.get("/monitoring/unbound/?page=41").content.decode()
    assert "page 41 of 41" in last and last.count('name="message"') == 1 and "Newer</a>" in last
    assert client.get("/monitoring/unbound/?page=9999").status_code == 200  # the last page
    assert client.get("/monitoring/unbound/?page=abc").status_code == 404
    assert client.get("/monitoring/unbound/?page=-1").status_code == 404
    assert client.get("/monitoring/unbound/?page=²").status_code == 404  # a digit to isdigit, not to int

    # Attaching from a later page keeps working (with the page's CSRF token) and comes back to it.
    page2 = client.get("/monitoring/unbound/?page=2").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page2)
    first = re.search(r'name="message" value="(\d+)"', page2)
    assert token and first
    done = client.post(
        "/monitoring/unbound/?page=2",
        {"message": first.group(1), "mrn": patient.mrn, "csrfmiddlewaretoken": token.group(1)},
    )
    assert done.status_code == 302 and done["Location"].endswith("?page=2")
    assert VitalReading.objects.filter(message_id=int(first.group(1)), bound=True).count() == 5
    assert HL7Message.objects.filter(pk=big_id).exists()
