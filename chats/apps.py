from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChatsConfig(AppConfig):
    name = "chats"
    verbose_name = _("Chats and channels")

    def ready(self) -> None:
        from chats.services.channels import channels_directory_hook, organisation_channels_list
        from chats.services.sync import directory_changed_hook
        from organisations.extensions import directory_hook_register, organisation_channels_provider_register

        # Class and staff chats, and the subscriptions of organisations'
        # channels, follow every committed change of the directory.
        directory_hook_register(directory_changed_hook)
        directory_hook_register(channels_directory_hook)
        # The organisation's page lists its channels.
        organisation_channels_provider_register(organisation_channels_list)
        from accounts.merge import merge_mover_register
        from chats.merge import chats_merge_move

        # Merging two accounts of one person folds their chat memberships.
        merge_mover_register(chats_merge_move)
