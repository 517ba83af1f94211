from django.urls import path

from ketaclinic.measures import views

app_name = "measures"
urlpatterns = [
    path("patients/<uuid:patient_id>/scales/", views.scales, name="scales"),
    path("patients/<uuid:patient_id>/scales/new/<str:instrument>/", views.enter, name="enter"),
    path("patients/<uuid:patient_id>/scales/link/", views.create_link, name="create_link"),
    path("alerts/<int:alert_id>/acknowledge/", views.acknowledge, name="acknowledge"),
    path("on-duty/", views.on_duty, name="on_duty"),
    path("r/<str:token>/", views.self_report, name="self_report"),
    path("outcomes/", views.outcomes, name="outcomes"),
]
