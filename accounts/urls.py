from django.urls import path

from accounts import merge_views, views

app_name = "accounts"
urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("profile/", views.profile_view, name="profile"),
    path("profile/logout-everywhere/", views.logout_everywhere_view, name="logout_everywhere"),
    path("profile/photo/", views.profile_photo_view, name="profile_photo"),
    path("profile/photo/remove/", views.profile_photo_remove_view, name="profile_photo_remove"),
    path("profile/delete/code/", views.account_delete_code_view, name="delete_code"),
    path("profile/delete/", views.account_delete_view, name="delete"),
    path("profile/merge/", merge_views.merge_view, name="merge"),
    path("profile/merge/confirm/", merge_views.merge_confirm_view, name="merge_confirm"),
]
