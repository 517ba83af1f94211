from django.urls import include, path

from ketaclinic.chairside import views

app_name = "chairside"
urlpatterns: list[object] = [
    path("sessions/", views.session_list, name="list"),
    path("patients/<uuid:patient_id>/sessions/new/", views.schedule, name="schedule"),
    path("sessions/<uuid:session_id>/", views.session_page, name="session"),
    path("sessions/<uuid:session_id>/transition/", views.transition, name="transition"),
    path("sessions/<uuid:session_id>/gate/", views.gate, name="gate"),
    path("sessions/<uuid:session_id>/gate/override/", views.gate_override, name="gate_override"),
    path("sessions/<uuid:session_id>/administer/", views.administer, name="administer"),
    path("sessions/<uuid:session_id>/observe/", views.observe, name="observe"),
    path(
        "sessions/<uuid:session_id>/alerts/<int:alert_id>/acknowledge/", views.acknowledge, name="acknowledge"
    ),
    path("sessions/<uuid:session_id>/checklist/", views.checklist, name="checklist"),
    path("sessions/<uuid:session_id>/adverse-event/", views.adverse_event, name="adverse_event"),
    path("sessions/<uuid:session_id>/discharge/", views.discharge, name="discharge"),
    path("", include("ketaclinic.chairside.board_urls")),
    path("", include("ketaclinic.chairside.rems_urls")),
]
