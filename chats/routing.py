"""WebSocket routes of chats: one socket per client for all its chats."""

from django.urls import path

from chats.consumers import ChatConsumer

websocket_urlpatterns: list = [path("ws/", ChatConsumer.as_asgi())]
