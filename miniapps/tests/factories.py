"""Factories of the miniapps tests: apps through the registry service, a
school with a class whose teacher teaches it, a diary helper, and clients
signed in as a person."""

from typing import Any

from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
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


def api_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client
