from django.urls import path

from ketaclinic.ledger import inventory_views, views

app_name = "ledger"
urlpatterns = [
    path("ledger/", views.stock, name="stock"),
    path("ledger/receive/", views.receive, name="receive"),
    path("ledger/register/", views.register, name="register"),
    path("ledger/lots/<uuid:lot_id>/", views.lot, name="lot"),
    path("ledger/lots/<uuid:lot_id>/count/", views.count, name="count"),
    path("ledger/lots/<uuid:lot_id>/loss/", views.loss, name="loss"),
    path("ledger/entries/<int:entry_id>/correct/", views.correct, name="correct"),
    path("ledger/sessions/<uuid:session_id>/use/", views.session_use, name="session_use"),
    path("ledger/inventories/", inventory_views.inventory_list, name="inventories"),
    path("ledger/inventories/take/", inventory_views.take, name="take_inventory"),
    path("ledger/inventories/<uuid:inventory_id>/", inventory_views.inventory, name="inventory"),
    path("ledger/inventories/<uuid:inventory_id>/pdf/", inventory_views.inventory_pdf, name="inventory_pdf"),
]
