from django.apps import AppConfig


class MeasuresConfig(AppConfig):
    name = "ketaclinic.measures"
    label = "measures"
    verbose_name = "Rating scales and self-report"

    def ready(self) -> None:
        from ketaclinic.measures import jobs  # noqa: F401  (registers job handlers)
