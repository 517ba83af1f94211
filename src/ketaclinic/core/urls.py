from django.urls import path

from ketaclinic.core import views

app_name = "core"
urlpatterns = [
    path("", views.home, name="home"),
    path("notifications/<int:notification_id>/read/", views.notification_read, name="notification_read"),
    path("healthz", views.healthz, name="healthz"),
]
