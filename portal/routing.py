"""WebSocket routes of every app, gathered in one list."""

from chats.routing import websocket_urlpatterns as chats_websocket_urlpatterns
from lessons.routing import websocket_urlpatterns as lessons_websocket_urlpatterns

websocket_urlpatterns: list = [*chats_websocket_urlpatterns, *lessons_websocket_urlpatterns]
