from django.urls import path

from ketaclinic.monitoring import views

app_name = "monitoring"
urlpatterns = [
    path("monitoring/unbound/", views.unbound, name="unbound"),
    path("monitoring/devices/", views.devices, name="devices"),
    path("monitoring/senders/", views.senders, name="senders"),
]
