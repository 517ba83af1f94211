"""A JSON API client that works as an integration would: signed in, CSRF enforced with the real token."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from tests.conftest import PASSWORD

#: A calm reading: inside every alert limit and every discharge criterion.
CALM = {
    "sbp_mmhg": 124,
    "dbp_mmhg": 78,
    "hr_bpm": 72,
    "spo2_pct": 98,
    "rr_per_min": 14,
    "moaas": 5,
    "cadss_total": 0,
}


class Api:
    def __init__(self, user: Any, sign_in: Any) -> None:
        self.user, self._sign_in = user, sign_in
        self.client = Client(enforce_csrf_checks=True)
        self.refresh()

    def refresh(self) -> None:
        """Sign in again (after the test's clock jumps past the idle time-out) and take the CSRF cookie."""
        self.signed_at = timezone.now()
        self._sign_in(self.client, self.user)
        self.client.get("/")
        self.token = self.client.cookies[settings.CSRF_COOKIE_NAME].value

    def _awake(self) -> None:
        if timezone.now() - self.signed_at > timedelta(minutes=10):
            self.refresh()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        self._awake()
        return self.client.post(
            f"/api{path}",
            data=json.dumps(body, default=str),
            content_type="application/json",
            HTTP_X_CSRFTOKEN=self.token,
        )

    def get(self, path: str) -> Any:
        self._awake()
        return self.client.get(f"/api{path}")

    def ok(self, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        response = self.post(path, body)
        assert response.status_code == status, (path, response.status_code, response.content.decode()[:2000])
        return response.json()  # type: ignore[no-any-return]

    def reading(self, session_id: str, at: Any, key: str, **values: Any) -> None:
        """One reading (calm unless ``values`` say otherwise) at ``at``, in its own idempotent batch."""
        self.ok(
            f"/sessions/{session_id}/observations",
            {
                "idempotency_key": f"{session_id}-{key}",
                "readings": [CALM | values | {"observed_at": at.isoformat()}],
            },
            status=201,
        )

    def start_infusion(self, session_id: str, verifier: Any, *, dose: str, rate: str, lot: Any) -> Any:
        """``dose`` mg from ``lot`` (a 10 mg/mL stock lot) diluted to 100 mL, at ``rate`` mL/h, checked by
        ``verifier``; the volume put into the bag is the dose ÷ 10 mg/mL."""
        return self.ok(
            f"/sessions/{session_id}/administrations",
            {
                "kind": "infusion_start",
                "lot_id": str(lot.pk),
                "given": str(Decimal(dose) / lot.mg_per_unit),
                "container_volume_ml": "100",
                "dose_mg": dose,
                "rate_ml_per_h": rate,
                "verifier": signature(verifier),
            },
            status=201,
        )

    def refused(self, path: str, body: dict[str, Any]) -> dict[str, str]:
        """A 422: {field: reason}."""
        response = self.post(path, body)
        assert response.status_code == 422, (path, response.status_code, response.content.decode()[:2000])
        return {str(d["loc"][-1]): d["msg"] for d in response.json()["detail"]}


def signature(user: Any) -> dict[str, Any]:
    """``user`` signs now: password and a current authenticator code (earlier uses forgotten)."""
    device = TOTPDevice.objects.get(user=user)
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)
    return {"user_id": user.pk, "password": PASSWORD, "code": f"{TOTP(device.bin_key).token():06d}"}
