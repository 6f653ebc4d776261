"""Factories of the miniapps tests: apps through the registry service, a
school with a class whose teacher teaches it, and a diary helper."""

from typing import Any

from miniapps import services
from miniapps.models import MiniApp
from organisations.models import Organisation


def make_app(
    *,
    slug: str = "events",
    audience: tuple[str, ...] = ("student",),
    organisation: Organisation | None = None,
    url: str | None = None,
    **fields: Any,
) -> MiniApp:
    return services.miniapp_create(
        name=fields.pop("name", "Мероприятия"),
        slug=slug,
        url=url or f"https://{slug}.example.org/launch",
        audience=list(audience),
        organisation=organisation,
        **fields,
    )
