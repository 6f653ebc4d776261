"""python manage.py legacy_export_sample OUT.json --inn INN [--chats N] [--members M] [--messages K]
[--seed S] [--create-accounts]: a realistic sample export of the old messenger."""

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from migration.sample import sample_accounts_create, sample_export
from migration.selectors import organisation_by_inn


class Command(BaseCommand):
    help = "Write a realistic sample export of the old messenger (SPEC §9.1) for an organisation."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("output", help="where to write the export (JSON)")
        parser.add_argument("--inn", required=True, help="the organisation's INN")
        parser.add_argument("--chats", type=int, default=10)
        parser.add_argument("--members", type=int, default=30)
        parser.add_argument("--messages", type=int, default=100)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--phone-offset", type=int, default=0, help="first phone number +7997NNNNNNN")
        parser.add_argument(
            "--create-accounts",
            action="store_true",
            help="also create accounts for the teachers and 70%% of the others in the organisation",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if min(options["chats"], options["members"], options["messages"] + 1) < 1 or options["members"] < 2:
            raise CommandError("--chats and --members (at least 2) must be positive, --messages not negative.")
        export = sample_export(
            inn=options["inn"],
            chats=options["chats"],
            members=options["members"],
            messages=options["messages"],
            seed=options["seed"],
            phone_offset=options["phone_offset"],
        )
        Path(options["output"]).write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
        self.stdout.write(f"{options['output']}: {len(export['conversations'])} conversations.")
        if options["create_accounts"]:
            organisation = organisation_by_inn(inn=options["inn"])
            if organisation is None:
                raise CommandError(f"No organisation with INN {options['inn']}.")
            created = sample_accounts_create(export=export, organisation=organisation)
            self.stdout.write(f"{created} accounts created in {organisation}.")
