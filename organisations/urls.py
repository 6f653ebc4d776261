from django.urls import path

from organisations import views

app_name = "organisations"
urlpatterns = [
    path("directory/", views.directory_view, name="directory"),
    path("directory/<int:organisation_id>/", views.organisation_detail_view, name="detail"),
    path("users/<int:user_id>/photo/", views.user_photo_view, name="user_photo"),
]
