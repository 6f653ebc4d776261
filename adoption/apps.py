from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AdoptionConfig(AppConfig):
    name = "adoption"
    verbose_name = _("Roadmaps and adoption")

    def ready(self) -> None:
        from accounts.merge import merge_check_register, merge_mover_register
        from adoption.services import adoption_merge_move, bot_accounts_merge_check, message_hook, read_hook
        from chats.extensions import message_hook_register, read_hook_register

        # Reading and writing days for the adoption dashboard, counted after
        # the commit of every message and read.
        message_hook_register(message_hook)
        read_hook_register(read_hook)
        merge_mover_register(adoption_merge_move)
        merge_check_register(bot_accounts_merge_check)
