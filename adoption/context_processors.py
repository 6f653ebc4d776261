"""What every page's menu needs of the adoption app."""

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from adoption.selectors import territory_of


def navigation(request: HttpRequest) -> dict[str, Any]:
    """`is_education_official`: whether the menu shows the adoption figures
    (read, with one query, only when a page's template asks)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"is_education_official": False}
    return {"is_education_official": SimpleLazyObject(lambda: territory_of(user=user).is_official)}
