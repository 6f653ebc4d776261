"""`manage.py media_worker [--worker-id ID]`: run one media worker of the
lessons (the same as `python -m lessons.media`)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run a media worker of the lessons (selective forwarding unit)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--worker-id", help="this worker's id (default: MEDIA_WORKER_ID or LESSONS_MEDIA_WORKER_ID)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        import asyncio

        from lessons.media.worker import default_worker_id, serve

        asyncio.run(serve(worker_id=options["worker_id"] or default_worker_id()))
