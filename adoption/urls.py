"""HTML pages of the adoption app."""

from django.urls import path  # noqa: F401

app_name = "adoption"
urlpatterns: list = []
