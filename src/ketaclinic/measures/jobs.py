"""Background jobs of the rating-scale app (run by ``ketaclinic worker``)."""

from __future__ import annotations

from typing import Any

from ketaclinic.core import jobs


@jobs.handler("measures.pre_session_link")
def pre_session_link(payload: dict[str, Any]) -> None:
    from ketaclinic.measures.services import send_pre_session_link

    send_pre_session_link(
        patient_id=payload["patient_id"],
        instruments=list(payload["instruments"]),
        purpose=str(payload.get("purpose", "before session")),
    )
