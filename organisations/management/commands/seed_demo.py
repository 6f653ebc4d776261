from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import translation
from django.utils.translation import gettext as _

from organisations.demo import demo_logins_table, seed_demo_data


class Command(BaseCommand):
    help = "Create the demo organisations, classes and people (idempotent) and print the demo logins."

    def handle(self, *args: Any, **options: Any) -> None:
        with translation.override(settings.LANGUAGE_CODE):
            data = seed_demo_data()
            self.stdout.write(_("Demo logins (sign in with a code sent by SMS):"))
            self.stdout.write(demo_logins_table(data.logins))
