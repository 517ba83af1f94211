from django.urls import path

from ketaclinic.patients import views

app_name = "patients"
urlpatterns = [
    path("", views.patient_list, name="list"),
    path("new/", views.patient_create, name="create"),
    path("<uuid:patient_id>/", views.patient_chart, name="chart"),
    path("<uuid:patient_id>/edit/", views.patient_edit, name="edit"),
    path("<uuid:patient_id>/break-glass/", views.break_glass, name="break_glass"),
]
