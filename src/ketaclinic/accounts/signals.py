"""Failed sign-ins and lockouts go into the audit log (HIPAA 164.308(a)(5)(ii)(C) log-in monitoring)."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver


@receiver(user_login_failed)
def _failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    from ketaclinic.accounts.services import record_failed_login

    record_failed_login(request, str(credentials.get("username", ""))[:150], step="password")


@receiver(user_locked_out)
def _locked(
    sender: Any,
    request: Any = None,
    username: str | None = None,
    ip_address: str | None = None,
    **kwargs: Any,
) -> None:
    from ketaclinic.accounts.services import record_failed_login

    record_failed_login(request, str(username or "")[:150], step="locked out after repeated failures")
