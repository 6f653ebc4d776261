"""Bots for tests, and a client that speaks the Bot API."""

import itertools
from typing import Any

from rest_framework.test import APIClient

from bots import services
from bots.models import Bot
from organisations.models import Organisation

_numbers = itertools.count(1)


def make_bot(*, organisation: Organisation | None = None, name: str = "Дежурный бот", **fields: Any) -> Bot:
    username = fields.pop("username", None) or f"duty{next(_numbers)}_bot"
    return services.bot_create(username=username, name=name, organisation=organisation, **fields)


def make_bot_with_token(**fields: Any) -> tuple[Bot, str]:
    bot = make_bot(**fields)
    return bot, services.bot_token_issue(bot=bot)


def bot_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bot " + token)
    return client


def call(client: APIClient, method: str, body: dict[str, Any] | None = None) -> Any:
    """POST /api/v1/bot/<method>/ with a JSON body (GET for getMe)."""
    url = "/api/v1/bot/" + method + "/"
    if method == "getMe":
        return client.get(url)
    return client.post(url, body or {}, format="json")
