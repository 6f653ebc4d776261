"""Bring every class and staff chat in line with the directory (repairs:
after a failed sync, a restore, or a change made outside the services)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chats.services.sync import chats_sync, chats_sync_all


class Command(BaseCommand):
    help = "Sync class and staff chats with the organisation directory (all organisations, or the given ones)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("organisation_ids", nargs="*", type=int, help="Only these organisations.")

    def handle(self, *args: Any, **options: Any) -> None:
        ids = options["organisation_ids"]
        result = chats_sync(organisation_ids=ids) if ids else chats_sync_all()
        self.stdout.write(
            f"chats created: {result.chats_created}, archived: {result.chats_archived}, "
            f"members added: {result.members_added}, removed: {result.members_removed}, "
            f"roles changed: {result.roles_changed}"
        )
