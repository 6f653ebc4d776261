"""HTML pages of the migration app."""

from django.urls import path

from migration import views

app_name = "migration"
urlpatterns = [
    path("migration/invitations/<str:token>/", views.invitation_view, name="invitation"),
]
