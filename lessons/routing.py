"""WebSocket routes of lessons: the signalling socket of a lesson's call."""

from django.urls import path

from lessons.consumers import CallConsumer

websocket_urlpatterns: list = [path("ws/lessons/<int:occurrence_id>/", CallConsumer.as_asgi())]
