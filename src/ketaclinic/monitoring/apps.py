from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "ketaclinic.monitoring"
    label = "monitoring"
