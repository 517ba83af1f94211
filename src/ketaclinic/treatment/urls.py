app_name = "treatment"
urlpatterns: list[object] = []
