from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BotsConfig(AppConfig):
    name = "bots"
    verbose_name = _("Bots")

    def ready(self) -> None:
        from bots import helpbot
        from bots.builtin import help_handler_register
        from bots.services import bot_owner_of_user, message_hook
        from chats.extensions import message_hook_register
        from organisations.extensions import bot_owner_resolver_register

        # Every new chat message reaches the bots of its chat as an update
        # (one cache read for chats without bots).
        message_hook_register(message_hook)
        # The contact rule judges a bot's account by the bot's organisation.
        bot_owner_resolver_register(bot_owner_of_user)
        # Bots set up as help bots (HelpBotSettings) answer from their
        # knowledge base.
        help_handler_register(helpbot.help_bot_handle)
