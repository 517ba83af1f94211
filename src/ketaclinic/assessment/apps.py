from django.apps import AppConfig


class AssessmentConfig(AppConfig):
    name = "ketaclinic.assessment"
    label = "assessment"
