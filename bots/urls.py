"""HTML pages of the bots app."""

from django.urls import path  # noqa: F401

app_name = "bots"
urlpatterns: list = []
