app_name = "fhir"
urlpatterns: list[object] = []
