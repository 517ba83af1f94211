from django.urls import path

from ketaclinic.treatment import desk_views, views

app_name = "treatment"
urlpatterns = [
    path("protocols/", views.protocol_list, name="protocols"),
    path("protocols/<slug:key>/", views.protocol_detail, name="protocol"),
    path("protocols/<slug:key>/copy/", views.protocol_copy, name="protocol_copy"),
    path("protocols/<slug:key>/edit/", views.protocol_edit, name="protocol_edit"),
    path(
        "protocols/<slug:key>/session-settings/",
        views.protocol_session_settings,
        name="protocol_session_settings",
    ),
    path("patients/<uuid:patient_id>/plans/new/", views.plan_new, name="plan_new"),
    path("plans/<uuid:plan_id>/", views.plan_detail, name="plan"),
    path("plans/<uuid:plan_id>/verify/", views.plan_verify, name="plan_verify"),
    path("plans/<uuid:plan_id>/stop/", views.plan_stop, name="plan_stop"),
    path("plans/<uuid:plan_id>/review/", views.plan_review, name="plan_review"),
    path("calendar/", views.site_calendar, name="calendar"),
    path("calendar/book/", desk_views.book, name="book"),
    path("arrivals/<str:kind>/<uuid:booking_id>/", desk_views.mark_arrived, name="mark_arrived"),
    path("plan-sessions/<uuid:session_id>/missed/", views.plan_session_missed, name="plan_session_missed"),
    path("plan-sessions/<uuid:session_id>/move/", views.plan_session_move, name="plan_session_move"),
    path("plan-sessions/<uuid:session_id>/start/", views.plan_session_start, name="plan_session_start"),
    path("plan-sessions/<uuid:session_id>/dose/", views.plan_session_dose, name="plan_session_dose"),
]
