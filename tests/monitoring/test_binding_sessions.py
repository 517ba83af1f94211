"""The listener's batch lookup of active treatment sessions (BindingCache.load_sessions, one query per
batch) answers exactly what the per-message query (_active_session) answers."""

from __future__ import annotations

import uuid
from typing import Any

from ketaclinic.accounts.models import Chair
from ketaclinic.monitoring.binding import BindingCache, _active_session

from .conftest import register_monitor
from .test_session_feed import _dosing_session


def test_batch_session_lookup_matches_the_per_message_query(
    db: Any, org: Any, site: Any, nurse: Any, prescriber: Any, patient: Any, make_patient: Any
) -> None:
    chair = Chair.objects.create(organization=org, site=site, label="Chair 4")
    other = Chair.objects.create(organization=org, site=site, label="Chair 5")
    session = _dosing_session(nurse, prescriber, patient, chair)
    stranger = make_patient(nurse, given_name="Other")
    cache = BindingCache()
    cache.load_sessions(org.pk)
    cases = [
        (chair.pk, None),  # the session in the chair
        (None, patient.pk),  # the identified patient's session
        (other.pk, patient.pk),  # empty chair: falls back to the patient
        (other.pk, stranger.pk),  # nothing
        (None, None),
        (chair.pk, stranger.pk),  # the chair wins
        (None, uuid.uuid4()),
    ]
    for chair_id, patient_id in cases:
        assert cache.active_session(org.pk, chair_id, patient_id) == _active_session(
            org.pk, chair_id, patient_id
        )
    assert cache.active_session(org.pk, chair.pk, None) == (session.pk, patient.pk, site.pk, chair.pk)
    cache.forget_sessions()
    session.status = "discharged"
    session.save(update_fields=["status"])
    cache.load_sessions(org.pk)  # the next batch sees the change at once
    assert cache.active_session(org.pk, chair.pk, patient.pk) is None


def test_alerts_of_one_batch_point_at_their_own_readings(
    db: Any, org: Any, site: Any, nurse: Any, make_patient: Any
) -> None:
    """Two messages stored in one batch, both raising alerts: each alert names the reading (message, kind)
    that raised it (the reading ids are looked up once per batch, alerts._reading_ids)."""
    from datetime import UTC, datetime

    from ketaclinic.interop.hl7.simulator import make_vitals_message
    from ketaclinic.monitoring.feed import FeedStore
    from ketaclinic.monitoring.models import MonitoringAlert
    from ketaclinic.monitoring.prepare import Inbound

    make_patient(nurse, mrn="M1")
    make_patient(nurse, mrn="M2", given_name="Other")
    register_monitor(org, "0123456789ABCDEF")
    at = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def msg(mrn: str, cid: str, sbp: int, spo2: int) -> bytes:
        text = make_vitals_message(
            device_eui64="0123456789ABCDEF", bed="", patient_id=mrn, at=at,
            sbp=sbp, dbp=80, hr=70, spo2=spo2, rr=14, control_id=cid,
        )  # fmt: skip
        return text.encode()

    store = FeedStore(organization=org, default_site=site)
    # M1: SBP 200 (>= 180: sbp_high); M2: SpO2 80 (< 92: spo2_low). Both in ONE batch.
    outcomes = store.process([Inbound(msg("M1", "A1", 200, 98)), Inbound(msg("M2", "A2", 120, 80))])
    assert [o.code.value for o in outcomes] == ["AA", "AA"]
    by_code = {a.code: a for a in MonitoringAlert.objects.select_related("reading__message")}
    assert by_code["sbp_high"].reading.kind == "sbp"
    assert by_code["sbp_high"].reading.message.control_id == "A1"
    assert by_code["spo2_low"].reading.kind == "spo2"
    assert by_code["spo2_low"].reading.message.control_id == "A2"


def test_prefetch_refreshes_the_working_set_ahead(db: Any, org: Any, site: Any) -> None:
    """Refresh-ahead: a key asked for within ``ttl`` and older than ``ttl / 2`` is reloaded with the next
    load, so a monitor that keeps sending never meets an expired entry; a key nobody asked for within
    ``ttl`` is dropped, not reloaded."""
    import time

    from ketaclinic.monitoring.models import MonitorDevice

    for ident in ("D1", "D2", "D3"):
        MonitorDevice.objects.create(organization=org, site=site, identifier=ident)
    cache = BindingCache(ttl=0.4)
    cache.refresh_slice = 2  # a slice's worth: refreshed together ahead of time
    cache.prefetch(org.pk, ["D1", "D3"], [])
    time.sleep(0.1)
    cache.prefetch(org.pk, ["D3"], [])  # cached and fresh: no load, but D3 counts as asked for
    time.sleep(0.15)  # D1 and D3 are 0.25 s old: >= ttl/2
    cache.prefetch(org.pk, ["D2"], [])  # D2 unknown -> a load, which takes D1 and D3 along
    stamp = cache._devices[(org.pk, "D2")][0]
    assert cache._devices[(org.pk, "D1")][0] == stamp
    assert cache._devices[(org.pk, "D3")][0] == stamp
    assert cache.device(org.pk, "D1") is not None
    time.sleep(0.45)  # now nobody has asked for D1 within ttl
    cache.prefetch(org.pk, ["D2"], [])
    later = cache._devices[(org.pk, "D2")][0]
    assert later > stamp and (org.pk, "D1") not in cache._devices


def test_prefetch_refreshes_a_bounded_slice_per_batch(db: Any, org: Any, site: Any) -> None:
    """However many monitors there are, one batch reloads at most ``refresh_slice`` entries ahead of
    time (the oldest first), so no batch pays for the whole working set at once; fewer than a slice
    wait until there is a slice's worth or the oldest nears expiry."""
    import time

    from ketaclinic.monitoring.models import MonitorDevice

    idents = [f"M{i:03d}" for i in range(30)]
    MonitorDevice.objects.bulk_create(
        MonitorDevice(organization=org, site=site, identifier=ident) for ident in [*idents, "NEW"]
    )
    cache = BindingCache(ttl=0.4)
    cache.refresh_slice = 10
    cache.prefetch(org.pk, idents[:15], [])
    time.sleep(0.05)
    cache.prefetch(org.pk, idents[15:], [])
    time.sleep(0.2)  # the first 15 are 0.25 s old (due), the last 15 0.2 s (not yet)
    cache.prefetch(org.pk, [*idents, "NEW"], [])  # everything asked for again; NEW needs a load
    stamp = cache._devices[(org.pk, "NEW")][0]
    refreshed = [i for i in idents if cache._devices[(org.pk, i)][0] == stamp]
    assert len(refreshed) == 10 and set(refreshed) <= set(idents[:15])  # ten of the oldest, no more
    # Five of the first fifteen are still due: not a slice's worth and not near expiry: no query now.
    cache.prefetch(org.pk, idents, [])
    assert [i for i in idents if cache._devices[(org.pk, i)][0] == stamp] == refreshed
    time.sleep(0.1)  # the five are now 0.35 s old: >= 0.8 x ttl: refreshed with the next batch
    cache.prefetch(org.pk, idents, [])
    assert all(time.monotonic() - cache._devices[(org.pk, i)][0] < 0.3 for i in idents[:15])
    assert all(cache.device(org.pk, i) is not None for i in idents)
