"""HTML pages of the miniapps app."""

from django.urls import path  # noqa: F401

app_name = "miniapps"
urlpatterns: list = []
