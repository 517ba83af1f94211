from typing import Any

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "ketaclinic.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        _local_time_of_any_stored_time()


def _local_time_of_any_stored_time() -> None:
    """Pages, PDFs and services show a time in a site's zone through ``django.utils.timezone.localtime``
    (templates too, via ``template_localtime``, and ``localdate``). A time near year 1 or 9999 — stored
    before core/moments.py refused them (issue 15 H2) — cannot be converted: it made the session page, its
    PDF and the whole session list fail for everyone, with no way to reach the row. Such a time is given
    back as stored (UTC) instead, so the page answers and staff can see the row. A plausible time (every
    time recorded since) converts exactly as before."""
    from django.utils import timezone

    original = timezone.localtime
    if original.__name__ == "localtime_of_any_time":
        return

    def localtime_of_any_time(value: Any = None, timezone: Any = None) -> Any:
        try:
            return original(value, timezone)
        except OverflowError:
            return value

    timezone.localtime = localtime_of_any_time
