"""A patient's monitor readings by reading set: one message at one observation time is one set; the
patient index holds only each set's first row (five times fewer entries per monitor message), and the
patient page still shows every value of each of the latest sets, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from .conftest import register_monitor


def _message(mrn: str, cid: str, at: datetime, sbp: int) -> bytes:
    from ketaclinic.interop.hl7.simulator import make_vitals_message

    return make_vitals_message(
        device_eui64="0123456789ABCDEF", bed="", patient_id=mrn, at=at,
        sbp=sbp, dbp=80, hr=70, spo2=97, rr=14, control_id=cid,
    ).encode()  # fmt: skip


def test_latest_sets_show_every_value_newest_first(
    db: Any, org: Any, site: Any, nurse: Any, make_patient: Any
) -> None:
    from ketaclinic.interop.hl7.er7 import format_dtm
    from ketaclinic.monitoring.feed import FeedStore
    from ketaclinic.monitoring.models import VitalReading
    from ketaclinic.monitoring.prepare import Inbound
    from ketaclinic.monitoring.services import recent_for_patient

    patient = make_patient(nurse, mrn="M1")
    register_monitor(org, "0123456789ABCDEF")
    t0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    # The third message carries its respiratory rate measured a minute after the rest: two sets.
    late = _message("M1", "C3", t0 + timedelta(minutes=10), 141)
    lines = late.split(b"\r")
    rr = next(i for i, line in enumerate(lines) if line.startswith(b"OBX") and b"MDC_RESP_RATE" in line)
    stamp = format_dtm(t0 + timedelta(minutes=10)).encode()
    assert stamp in lines[rr]
    lines[rr] = lines[rr].replace(stamp, format_dtm(t0 + timedelta(minutes=11)).encode())
    store = FeedStore(organization=org, default_site=site)
    outcomes = store.process(
        [
            Inbound(_message("M1", "C1", t0, 121)),
            Inbound(_message("M1", "C2", t0 + timedelta(minutes=5), 131)),
            Inbound(b"\r".join(lines)),
        ]
    )
    assert [o.code.value for o in outcomes] == ["AA", "AA", "AA"]

    rows = VitalReading.objects.filter(patient=patient)
    assert rows.count() == 15
    assert rows.filter(first_of_set=True).count() == 4  # one per message and observation time

    sets, _alerts = recent_for_patient(patient=patient, sets=3)
    assert [s.observed_at for s in sets] == [
        t0 + timedelta(minutes=11),
        t0 + timedelta(minutes=10),
        t0 + timedelta(minutes=5),
    ]
    assert [len(s.values) for s in sets] == [1, 4, 5]
    assert any(v.startswith("RR 14") for v in sets[0].values)
    assert any(v.startswith("SBP 141") for v in sets[1].values)
    assert any(v.startswith("SBP 131") for v in sets[2].values)


def test_migration_marks_the_first_row_of_each_stored_set(
    db: Any, org: Any, site: Any, nurse: Any, make_patient: Any
) -> None:
    """Rows stored before the index changed (all marked as firsts by the new column's default) are
    narrowed to one first row per (message, observation time) by the migration's data step."""
    from django.apps import apps

    from ketaclinic.monitoring.feed import FeedStore
    from ketaclinic.monitoring.models import VitalReading
    from ketaclinic.monitoring.prepare import Inbound

    make_patient(nurse, mrn="M1")
    register_monitor(org, "0123456789ABCDEF")
    t0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    store = FeedStore(organization=org, default_site=site)
    store.process([Inbound(_message("M1", f"C{i}", t0 + timedelta(minutes=i), 120 + i)) for i in range(3)])
    VitalReading.objects.update(first_of_set=True)  # as right after the column was added

    migration = __import__(
        "ketaclinic.monitoring.migrations.0004_patient_index_per_reading_set", fromlist=["mark_reading_sets"]
    )
    migration.mark_reading_sets(apps, None)

    firsts = VitalReading.objects.filter(first_of_set=True)
    assert firsts.count() == 3
    assert sorted(r.message_id for r in firsts) == sorted(
        set(VitalReading.objects.values_list("message_id", flat=True))
    )
    for r in firsts:
        assert r.pk == min(VitalReading.objects.filter(message_id=r.message_id).values_list("id", flat=True))
