from django.urls import path

from ketaclinic.ledger import views

app_name = "ledger"
urlpatterns = [
    path("ledger/", views.stock, name="stock"),
    path("ledger/receive/", views.receive, name="receive"),
    path("ledger/register/", views.register, name="register"),
    path("ledger/lots/<uuid:lot_id>/", views.lot, name="lot"),
    path("ledger/lots/<uuid:lot_id>/use/", views.use, name="use"),
    path("ledger/lots/<uuid:lot_id>/count/", views.count, name="count"),
    path("ledger/lots/<uuid:lot_id>/loss/", views.loss, name="loss"),
    path("ledger/entries/<int:entry_id>/correct/", views.correct, name="correct"),
    path("ledger/sessions/<uuid:session_id>/use/", views.session_use, name="session_use"),
]
