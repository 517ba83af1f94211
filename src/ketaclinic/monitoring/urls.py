app_name = "monitoring"
urlpatterns: list[object] = []
