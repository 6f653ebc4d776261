from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrganisationsConfig(AppConfig):
    name = "organisations"
    verbose_name = _("Organisations")

    def ready(self) -> None:
        from accounts.extensions import (
            account_deletion_hook_register,
            personal_data_provider_register,
            user_summary_provider_register,
        )
        from organisations.personal_data import account_links_end, personal_data_sections
        from organisations.selectors import user_memberships_summary

        user_summary_provider_register(user_memberships_summary)
        personal_data_provider_register(personal_data_sections)
        account_deletion_hook_register(account_links_end)
        from accounts.merge import merge_finisher_register, merge_mover_register
        from organisations.merge import organisations_merge_finish, organisations_merge_move

        # Merging two accounts of one person folds their memberships and guardianships.
        merge_mover_register(organisations_merge_move)
        merge_finisher_register(organisations_merge_finish)
