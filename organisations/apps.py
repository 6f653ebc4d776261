from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrganisationsConfig(AppConfig):
    name = "organisations"
    verbose_name = _("Organisations")

    def ready(self) -> None:
        from accounts.extensions import user_summary_provider_register
        from organisations.selectors import user_memberships_summary

        user_summary_provider_register(user_memberships_summary)
