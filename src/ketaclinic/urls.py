"""URL map. Every view declares its access (ketaclinic.core.access); the API's operations declare theirs."""

from django.urls import include, path

from ketaclinic.core.access import delegated
from ketaclinic.core.api import api

api_patterns, api_app, api_namespace = api.urls
for pattern in api_patterns:
    # Operations authorise themselves through RoleAuth; the docs views carry their own declaration.
    callback = pattern.callback
    if callback is not None and getattr(callback, "access", None) is None:
        delegated(callback)

urlpatterns = [
    path("", include("ketaclinic.core.urls")),
    path("accounts/", include("ketaclinic.accounts.urls")),
    path("patients/", include("ketaclinic.patients.urls")),
    path("audit/", include("ketaclinic.audit.urls")),
    path("", include("ketaclinic.measures.urls")),
    path("", include("ketaclinic.assessment.urls")),
    path("", include("ketaclinic.treatment.urls")),
    path("", include("ketaclinic.monitoring.urls")),
    path("", include("ketaclinic.consent.urls")),
    path("", include("ketaclinic.chairside.urls")),
    path("", include("ketaclinic.ledger.urls")),
    path("fhir/", include("ketaclinic.interop.fhir.urls")),
    path("api/", (api_patterns, api_app, api_namespace)),
]
