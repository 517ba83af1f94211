"""Issue 16 point 7: the R4 date-search table (search.html §3.1.1.4.3) as tests, on points, closed periods
and ongoing periods: once against the pure rule (params.date_matches) and once through HTTP on Encounter
(whose ``date`` is the session's period), so the database translation (resources/base.date_q) is held to
the same table on SQLite and on PostgreSQL.

Targets, as the server writes them (instants to the second; a stored moment is the second it shows):

* ``P``  a point at 12:30:00 (a period starting and ending then: [12:30:00, 12:30:01));
* ``P6`` a point stored at 12:30:00.6, shown as 12:30:00 — the same second, so it matches like ``P``;
* ``C``  closed 12:02:00 – 13:10:00 on 7 December;
* ``O``  ongoing since 12:02:00 (no end: +infinity) — the issue's session still running;
* ``D``  closed from 22:00 on 6 December to 02:00 on 8 December.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from tests.fhir.conftest import ids

from ketaclinic.interop.fhir.params import date_matches, parse_date


def t(day: int, hour: int, minute: int, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, micro, tzinfo=UTC)


SECOND = timedelta(seconds=1)
# name -> (stored start, stored end or None (ongoing)); the rendered interval is [start, end + 1 s) at
# whole seconds.
TARGETS: dict[str, tuple[datetime, datetime | None]] = {
    "P": (t(7, 12, 30), t(7, 12, 30)),
    "P6": (t(7, 12, 30, 0, 600000), t(7, 12, 30, 0, 600000)),
    "C": (t(7, 12, 2), t(7, 13, 10)),
    "O": (t(7, 12, 2), None),
    "D": (t(6, 22, 0), t(8, 2, 0)),
}

DAY = "2026-12-07"
MIN_1247 = "2026-12-07T12:47"
NOON_MIN = "2026-12-07T12:00"
SEC_1230 = "2026-12-07T12:30:00Z"

TABLE: list[tuple[str, str, bool]] = [
    # eq: the search range fully contains the target
    ("P", DAY, True),
    ("P", SEC_1230, True),
    ("P6", SEC_1230, True),  # stored 12:30:00.6, written 12:30:00: that second
    ("P", MIN_1247, False),
    ("C", DAY, True),
    ("C", MIN_1247, False),  # overlaps, but is not contained
    ("O", DAY, False),  # ongoing: never contained
    ("D", DAY, False),
    ("P6", "eq2026-12-07T12:30:00.600Z", False),  # a millisecond does not contain the whole second
    # ne: not eq
    ("P", f"ne{DAY}", False),
    ("O", f"ne{DAY}", True),
    ("C", f"ne{MIN_1247}", True),
    # gt: the range above the search value overlaps the target
    ("P", f"gt{MIN_1247}", False),
    ("P", f"gt{NOON_MIN}", True),
    ("P", f"gt{DAY}", False),
    ("C", f"gt{MIN_1247}", True),
    ("C", f"gt{DAY}", False),
    ("O", f"gt{MIN_1247}", True),
    ("O", "gt2026-12-08", True),
    ("D", f"gt{DAY}", True),
    ("P6", "gt2026-12-07T12:30:00.300Z", True),  # the second runs past .300
    # lt: the range below the search value overlaps the target
    ("P", f"lt{MIN_1247}", True),
    ("P", f"lt{NOON_MIN}", False),
    ("C", f"lt{MIN_1247}", True),
    ("C", f"lt{DAY}", False),
    ("O", f"lt{DAY}", False),
    ("O", "lt2026-12-08", True),
    ("D", f"lt{DAY}", True),
    ("P6", "lt2026-12-07T12:30:00.700Z", True),
    # ge: gt or eq — the issue: a session that began at 12:02 and is still running
    ("O", f"ge{MIN_1247}", True),
    ("C", f"ge{MIN_1247}", True),
    ("P", f"ge{MIN_1247}", False),
    ("P", f"ge{SEC_1230}", True),
    ("P", f"ge{NOON_MIN}", True),
    ("C", f"ge{DAY}", True),
    ("D", f"ge{DAY}", True),
    ("P", "ge2026-12-08", False),
    # le: lt or eq
    ("P", f"le{SEC_1230}", True),
    ("P", f"le{NOON_MIN}", False),
    ("C", f"le{MIN_1247}", True),
    ("O", f"le{DAY}", False),  # starts within the day, never contained in it
    ("O", "le2026-12-08", True),
    ("D", f"le{DAY}", True),
    # sa: starts after the search range
    ("P", f"sa{NOON_MIN}", True),
    ("C", f"sa{NOON_MIN}", True),
    ("O", f"sa{NOON_MIN}", True),
    ("C", f"sa{MIN_1247}", False),
    ("D", f"sa{DAY}", False),
    ("P", f"sa{DAY}", False),
    ("O", "sa2026-12-06", True),
    ("P6", "sa2026-12-07T12:30:00.300Z", False),  # its second began before .300
    # eb: ends before the search range
    ("P", f"eb{MIN_1247}", True),
    ("C", f"eb{MIN_1247}", False),
    ("O", "eb2026-12-08", False),  # ongoing: never ends before anything
    ("D", "eb2026-12-08", False),
    ("C", "eb2026-12-08", True),
    ("P", f"eb{SEC_1230}", False),
    # ap: the ranges overlap
    ("P", f"ap{DAY}", True),
    ("P", f"ap{MIN_1247}", False),
    ("C", f"ap{MIN_1247}", True),
    ("O", "ap2026-12-08", True),
    ("D", f"ap{DAY}", True),
    ("C", "ap2026-12-06", False),
    ("P6", "ap2026-12-07T12:30:00.600Z", True),
]


def rendered(name: str) -> tuple[datetime, datetime | None]:
    """The target's interval as written: whole seconds, the end second included."""
    start, end = TARGETS[name]
    low = start.replace(microsecond=0)
    return low, None if end is None else end.replace(microsecond=0) + SECOND


@pytest.mark.parametrize("target,search,expected", TABLE)
def test_the_pure_rule_follows_the_r4_table(target: str, search: str, expected: bool) -> None:
    value = parse_date(search)
    assert date_matches(value.prefix, value.start, value.end, *rendered(target)) is expected


def test_the_table_covers_every_prefix_and_target() -> None:
    prefixes = {parse_date(s).prefix for _t, s, _e in TABLE}
    assert prefixes == {"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}
    assert {name for name, _s, _e in TABLE} == set(TARGETS)
    assert {e for _t, _s, e in TABLE} == {True, False}


@pytest.fixture
def encounters(org: Any, site: Any, nurse: Any, make_patient: Any) -> dict[str, str]:
    """One Encounter per target: checked in at its start, discharged at its end (or still monitoring)."""
    from ketaclinic.chairside.models import SessionEvent, Status, TreatmentSession

    patient = make_patient(nurse, given_name="Tabula")
    found = {}
    for name, (start, end) in TARGETS.items():
        session = TreatmentSession.objects.create(
            organization=org,
            patient=patient,
            site=site,
            protocol_id="iv-trd-elektd",
            drug="ketamine",
            route="iv",
            planned_dose_mg=Decimal("35"),
            scheduled_at=start - timedelta(hours=1),
            status=Status.MONITORING if end is None else Status.DISCHARGED,
            status_changed_at=end or start,
            discharged_at=end,
            created_by=nurse,
        )
        SessionEvent.objects.create(
            organization=org,
            session=session,
            from_status=Status.SCHEDULED,
            to_status=Status.CHECKED_IN,
            at=start,
            by=nurse,
        )
        found[name] = str(session.pk)
    return found


def test_the_encounters_show_the_targets(encounters: dict[str, str], org: Any, bearer: Any) -> None:
    from tests.fhir.conftest import read

    h = bearer(org)
    assert read(h, f"Encounter/{encounters['O']}")["period"] == {"start": "2026-12-07T12:02:00Z"}
    assert read(h, f"Encounter/{encounters['P6']}")["period"] == {
        "start": "2026-12-07T12:30:00Z",
        "end": "2026-12-07T12:30:00Z",
    }


def test_the_table_through_http(encounters: dict[str, str], org: Any, bearer: Any) -> None:
    """Every row of the table as ``Encounter?date=<value>``: the target is found exactly when expected."""
    h = bearer(org)
    wrong = []
    for target, search, expected in TABLE:
        found = ids(h, f"/fhir/Encounter?{urlencode({'date': search, '_count': '100'})}")
        if (encounters[target] in found) is not expected:
            wrong.append((target, search, expected))
    assert wrong == []


def test_the_issue_example(encounters: dict[str, str], org: Any, bearer: Any) -> None:
    """``Encounter?date=ge2026-12-07T12:47``: the running session (from 12:02) and the closed one reaching
    13:10 and the one ending on the 8th; not the point at 12:30."""
    found = ids(bearer(org), "/fhir/Encounter?date=ge2026-12-07T12:47&_sort=date")
    assert found[0] == encounters["D"] and sorted(found[1:]) == sorted(encounters[n] for n in ("C", "O"))
