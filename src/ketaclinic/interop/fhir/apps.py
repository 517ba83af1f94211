from django.apps import AppConfig


class FhirConfig(AppConfig):
    name = "ketaclinic.interop.fhir"
    label = "fhir"
    verbose_name = "FHIR R4 API"

    def ready(self) -> None:
        # Registers the "fhir.export" job handler for `ketaclinic worker`.
        from ketaclinic.interop.fhir import export  # noqa: F401
