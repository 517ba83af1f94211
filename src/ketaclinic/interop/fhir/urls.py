"""FHIR routes, mounted at /fhir/ (ketaclinic.urls). Literal routes come before ``<type>/<id>``."""

from django.urls import path, re_path

from ketaclinic.interop.fhir import views

app_name = "fhir"
urlpatterns = [
    path("metadata", views.metadata, name="metadata"),
    path(".well-known/smart-configuration", views.smart_configuration, name="smart-configuration"),
    path("token", views.token, name="token"),
    path("introspect", views.introspect, name="introspect"),
    path("$export", views.export_system, name="export"),
    path("$export-status/<uuid:export_id>", views.export_status, name="export-status"),
    path("$export-file/<uuid:export_id>/<str:rtype>.ndjson", views.export_file, name="export-file"),
    path("Patient/$export", views.export_patients, name="patient-export"),
    path("Patient/<str:fhir_id>/$everything", views.everything, name="everything"),
    path("<str:rtype>/_search", views.search_post, name="search-post"),
    path("<str:rtype>/<str:fhir_id>", views.read, name="read"),
    path("<str:rtype>", views.search_type, name="search"),
    re_path(r"^(?P<rest>.*)$", views.not_found, name="not-found"),
]
