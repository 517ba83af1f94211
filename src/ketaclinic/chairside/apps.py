from django.apps import AppConfig


class ChairsideConfig(AppConfig):
    """Treatment sessions in the chair: lifecycle, pre-dose gate, administrations, observations, alerts,
    emergency checklists, adverse events and discharge (issue: treatment sessions)."""

    name = "ketaclinic.chairside"
    label = "chairside"
    verbose_name = "Treatment sessions"

    def ready(self) -> None:
        from ketaclinic.chairside import jobs  # noqa: F401  (registers job handlers)
