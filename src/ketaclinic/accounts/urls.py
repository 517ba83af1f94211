from django.urls import path

from ketaclinic.accounts import calendar_views, staff_views, views

app_name = "accounts"
urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("mfa/", views.mfa_view, name="mfa"),
    path("mfa/setup/", views.mfa_setup_view, name="mfa_setup"),
    path("logout/", views.logout_view, name="logout"),
    path("users/", staff_views.users_view, name="users"),
    path("users/invite/", staff_views.invite_view, name="user_invite"),
    path("users/<int:user_id>/", staff_views.user_edit_view, name="user_edit"),
    path("link/", staff_views.link_password_view, name="link_password"),
    path("link/<str:token>/", staff_views.link_open_view, name="link_open"),
    path("sites/", views.sites_view, name="sites"),
    path("sites/<int:site_id>/", views.site_edit_view, name="site_edit"),
    path("sites/<int:site_id>/identifiers/", staff_views.site_identifiers_view, name="site_identifiers"),
    path("sites/<int:site_id>/closures/", calendar_views.site_closures, name="site_closures"),
    path("alerts/", views.alerts_index, name="alerts"),
    path("sites/<int:site_id>/alerts/", views.site_alerts_view, name="site_alerts"),
    path("sites/<int:site_id>/alerts/change/", views.site_alerts_change, name="site_alerts_change"),
]
