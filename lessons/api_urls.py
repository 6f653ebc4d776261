"""The lessons REST API: the routes live beside their views."""

from lessons.apis import urlpatterns

__all__ = ["urlpatterns"]
