from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MigrationConfig(AppConfig):
    name = "migration"
    verbose_name = _("Migration from the old messenger")

    def ready(self) -> None:
        from bots.builtin import builtin_handler_register
        from migration import bot

        # The migration bot «Перенос чатов» runs in the portal (bots.builtin).
        builtin_handler_register(bot.USERNAME, bot.migration_bot_handle)
