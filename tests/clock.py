"""The calendar day as the clinic sees it. The fixture sites sit in America/New_York (tests/conftest.py); the
server runs in UTC, so between 19:00 and midnight in New York ``date.today()`` is already tomorrow and a
test that types it as "today" would be refused as a future date."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from django.utils import timezone

CLINIC_ZONE = ZoneInfo("America/New_York")


def clinic_today() -> date:
    """Today at the fixture clinic's main site."""
    return timezone.localdate(timezone.now(), CLINIC_ZONE)
