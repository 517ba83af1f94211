"""Monitor messages for the device-data tests (issue 16 point 3), fed in-process through the feed store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

EUI = "0123456789ABCDEF"
MMHG = "266016^MDC_DIM_MMHG^MDC"
BPM = "264864^MDC_DIM_BEAT_PER_MIN^MDC"
PCT = "262688^MDC_DIM_PERCENT^MDC"
# (OBX-3, OBX-5, OBX-6) of the full set: every stored kind a ketamine chair's monitor sends, with values
# that have decimals (full precision) and one implausible diastolic pressure.
FULL = (
    ("150021^MDC_PRESS_BLD_NONINV_SYS^MDC", "121", MMHG),
    ("150022^MDC_PRESS_BLD_NONINV_DIA^MDC", "400", MMHG),
    ("150023^MDC_PRESS_BLD_NONINV_MEAN^MDC", "93.3", MMHG),
    ("147842^MDC_ECG_HEART_RATE^MDC", "72.5", BPM),
    ("150456^MDC_PULS_OXIM_SAT_O2^MDC", "96.6", PCT),
    ("149530^MDC_PULS_OXIM_PULS_RATE^MDC", "71", BPM),
    ("150488^MDC_BLD_PERF_INDEX^MDC", "2.35", PCT),
)


def message(
    *,
    at: datetime,
    mrn: str = "",
    cid: str = "D1",
    obx: tuple[tuple[str, str, str], ...] = FULL,
    version: str = "2.6",
    eui: str = EUI,
) -> str:
    from ketaclinic.interop.hl7.er7 import format_dtm

    t = format_dtm(at)
    lines = [
        f"MSH|^~\\&|MON^{eui}^EUI-64||||{t}||ORU^R01^ORU_R01|{cid}|P|{version}|||NE|AL",
        f"PID|||{mrn}^^^^MR" if mrn else "PID|||",
        f"OBR|1|||182777000^monitoring of patient^SCT|||{t}",
    ]
    lines += [
        f"OBX|{n}|NM|{code}|1.0.{n}|{value}|{unit}|||||R" for n, (code, value, unit) in enumerate(obx, 1)
    ]
    return "\r".join(lines)


def feed(org: Any, site: Any, *texts: str) -> list[Any]:
    """Store the messages as the listener would (no sender address: the address check is skipped)."""
    from ketaclinic.monitoring.feed import FeedStore
    from ketaclinic.monitoring.prepare import Inbound

    return FeedStore(organization=org, default_site=site).process([Inbound(t.encode()) for t in texts])
