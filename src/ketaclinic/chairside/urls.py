from django.urls import include, path

app_name = "chairside"
urlpatterns: list[object] = [
    path("", include("ketaclinic.chairside.board_urls")),
    path("", include("ketaclinic.chairside.rems_urls")),
]
