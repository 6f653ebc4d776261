from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MiniappsConfig(AppConfig):
    name = "miniapps"
    verbose_name = _("Mini-apps and the diary")
