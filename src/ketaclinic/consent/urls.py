from django.urls import path

from ketaclinic.consent import views

app_name = "consent"
urlpatterns = [
    path("patients/<uuid:patient_id>/consents/sign/<int:template_id>/", views.sign, name="sign"),
    path("patients/<uuid:patient_id>/consents/upload/", views.upload, name="upload"),
    path("patients/<uuid:patient_id>/consents/<int:consent_id>/", views.consent_page, name="consent"),
    path("patients/<uuid:patient_id>/consents/<int:consent_id>/document/", views.document, name="document"),
    path("patients/<uuid:patient_id>/consents/<int:consent_id>/withdraw/", views.withdraw, name="withdraw"),
    path("consent-forms/", views.forms, name="forms"),
    path("consent-forms/<int:template_id>/", views.form, name="form"),
    path("consent-forms/<str:drug>/<str:route>/new/", views.publish, name="publish"),
]
