from django.urls import path

from ketaclinic.assessment import views

app_name = "assessment"
urlpatterns = [
    path("patients/<uuid:patient_id>/intake/", views.intake_page, name="intake"),
    path("patients/<uuid:patient_id>/intake/edit/", views.intake_edit, name="intake_edit"),
    path("patients/<uuid:patient_id>/screening/run/", views.screening_run, name="screening_run"),
    path("intakes/<uuid:intake_id>/", views.intake_version, name="intake_version"),
    path("intakes/<uuid:intake_id>/sign/", views.intake_sign, name="intake_sign"),
    path("screenings/<uuid:screening_id>/", views.screening_page, name="screening"),
    path("screenings/<uuid:screening_id>/sign/", views.screening_sign, name="screening_sign"),
    path("screenings/<uuid:screening_id>/override/", views.screening_override, name="screening_override"),
]
