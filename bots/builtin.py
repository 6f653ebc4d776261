"""Built-in bots: bots whose program runs inside the portal (the help bot;
the migration bot of the migration app). Their updates are made and queued
exactly like an external bot's; instead of waiting for getUpdates or a
webhook, a Celery task hands each one to the handler registered for the
bot's username, and the handler answers through the same services as the
Bot API (bots.services.bot_message_send and friends).

Register in AppConfig.ready():

    from bots.builtin import builtin_handler_register
    builtin_handler_register("chat_migration_bot", handle)

where `handle(bot, update)` takes the Bot and the Update (update.kind,
update.payload as the Bot API shows it) and must be safe to run twice for
one update (a retried task)."""

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bots.models import Bot, Update

BuiltinHandler = Callable[["Bot", "Update"], None]
_handlers: dict[str, BuiltinHandler] = {}
# Used for bots that have help settings (HelpBotSettings) but no handler of
# their own: any bot an administrator sets up as a help bot.
_fallback: dict[str, BuiltinHandler] = {}


def builtin_handler_register(username: str, handler: BuiltinHandler) -> None:
    _handlers[username] = handler


def help_handler_register(handler: BuiltinHandler) -> None:
    _fallback["help"] = handler


def builtin_handler_for(bot: "Bot") -> BuiltinHandler | None:
    """The in-process handler of the bot, or None for an external bot."""
    handler = _handlers.get(bot.username)
    if handler is not None:
        return handler
    if "help" in _fallback and bot.has_help_settings:
        return _fallback["help"]
    return None
