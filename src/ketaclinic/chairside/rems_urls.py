"""REMS form, REMS queue and session PDFs (included at the root by chairside/urls.py: full paths)."""

from __future__ import annotations

from django.urls import path

from ketaclinic.chairside import rems_views as views

urlpatterns: list[object] = [
    path("sessions/<uuid:session_id>/rems/", views.rems_form, name="rems_form"),
    path("sessions/<uuid:session_id>/rems/assemble/", views.rems_assemble, name="rems_assemble"),
    path("sessions/<uuid:session_id>/rems/sign-off/", views.rems_sign_off, name="rems_sign_off"),
    path("sessions/<uuid:session_id>/rems/pdf/", views.rems_pdf, name="rems_pdf"),
    path("sessions/<uuid:session_id>/rems/submitted/", views.rems_submitted, name="rems_submitted"),
    path("sessions/<uuid:session_id>/report/pdf/", views.session_report_pdf, name="session_report_pdf"),
    path("rems/queue/", views.rems_queue, name="rems_queue"),
]
