"""`Authorization: Bot <token>`: the Bot API's only credential. The token is
never part of a URL, so it does not land in access logs."""

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from bots.models import Bot, BotToken
from bots.services import token_hash

TOKEN_MAX_LENGTH = 100


class BotTokenAuthentication(authentication.BaseAuthentication):
    """The bot's account becomes request.user and the Bot request.auth. An
    unknown or revoked token answers 401; a disabled bot 403."""

    keyword = "Bot"

    def authenticate(self, request: Request) -> tuple[Any, Bot] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2 or len(parts[1]) > TOKEN_MAX_LENGTH:
            raise exceptions.AuthenticationFailed(_("Invalid bot token header."), code="invalid_token")
        try:
            key = parts[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(_("Invalid bot token header."), code="invalid_token") from None
        token = (
            BotToken.objects.select_related("bot", "bot__user", "bot__organisation")
            .filter(key_hash=token_hash(key))
            .first()
        )
        if token is None or token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked bot token."), code="invalid_token")
        bot = token.bot
        if not bot.is_active or not bot.user.is_active:
            raise exceptions.PermissionDenied(_("This bot is disabled."), code="bot_disabled")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 300:
            BotToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return bot.user, bot

    def authenticate_header(self, request: Request) -> str:
        return 'Bot realm="api"'


class BotTokenScheme(OpenApiAuthenticationExtension):
    target_class = "bots.authentication.BotTokenAuthentication"
    name = "BotToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'A bot token: "Authorization: Bot <token>". See docs/bots.md.',
        }
