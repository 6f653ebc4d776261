"""REST API of the miniapps app, under /api/v1/: the routes live beside their views."""

from miniapps.apis import urlpatterns

__all__ = ["urlpatterns"]
