"""HTML pages of the migration app."""

from django.urls import path  # noqa: F401

app_name = "migration"
urlpatterns: list = []
