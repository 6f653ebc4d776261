"""REST API of the bots app, under /api/v1/."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
