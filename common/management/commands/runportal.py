"""`make run`: start every process of the portal under one supervisor.

On the embedded default it first starts the embedded Redis, then migrates,
loads the demo data, prints the URL, the demo logins and the SMS outbox, and
supervises daphne, a Celery worker, Celery beat and the lessons' media
worker(s) with honcho. Ctrl-C stops them all.
"""

import os
import re
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from honcho.manager import Manager  # type: ignore[import-untyped]

from common import embedded_redis

# The shape of a media worker id (lessons.media.protocol.identifier).
MEDIA_WORKER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Command(BaseCommand):
    help = "Start daphne, Celery worker and beat, the media worker (and the embedded Redis) under one supervisor."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--no-seed", action="store_true", help="Skip loading the demo data.")

    def handle(self, *args: Any, **options: Any) -> None:
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        manager = Manager()
        environment = dict(os.environ)
        environment.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
        environment["PYTHONUNBUFFERED"] = "1"
        python = sys.executable

        redis_process = None
        if settings.IS_EMBEDDED_REDIS:
            # Started before the others (migrations and the demo data use it)
            # and stopped after them, so that nothing loses its broker.
            redis_process = embedded_redis.start(settings.EMBEDDED_REDIS_SOCKET, new_session=True)

        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        if not options["no_seed"]:
            call_command("seed_demo")

        host, port = options["host"], options["port"]
        manager.add_process(
            "web",
            f"exec {python} -m daphne -b {host} -p {port} --proxy-headers portal.asgi:application",
            env=environment,
        )
        manager.add_process(
            "worker",
            f"exec {python} -m celery -A portal worker --loglevel=INFO --concurrency=2 --without-gossip",
            env=environment,
        )
        manager.add_process(
            "beat",
            f"exec {python} -m celery -A portal beat --loglevel=INFO --schedule={settings.VAR_DIR}/celerybeat-schedule",
            env=environment,
        )
        # One media worker of the lessons per id the web processes place
        # lessons on (LESSONS_MEDIA_WORKERS, "main" by default); an id is a
        # plain name before it reaches the command line.
        media_workers = list(settings.LESSONS_MEDIA_WORKERS)
        for worker_id in media_workers:
            if not MEDIA_WORKER_ID.match(worker_id):
                raise CommandError("LESSONS_MEDIA_WORKERS: " + repr(worker_id) + " is not 1-64 of A-Z a-z 0-9 - _")
            manager.add_process(
                "media" if len(media_workers) == 1 else "media-" + worker_id,
                f"exec {python} -m lessons.media --worker-id {worker_id}",
                env=environment,
            )
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Parta is starting at http://{host}:{port}/"))
        self.stdout.write(f"  Admin:       http://{host}:{port}/admin/")
        self.stdout.write(f"  API docs:    http://{host}:{port}/api/docs/")
        self.stdout.write(f"  SMS outbox:  {settings.SMS_OUTBOX}  (sign-in codes land here)")
        self.stdout.write(f"  Database:    {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
        self.stdout.write(f"  Redis:       {settings.REDIS_URL}")
        self.stdout.write(f"  Media:       {', '.join(media_workers)}  (lessons' media workers)")
        self.stdout.write("Press Ctrl-C to stop every process.")
        self.stdout.write("")
        try:
            manager.loop()
        finally:
            if redis_process is not None:
                redis_process.terminate()
                redis_process.wait(timeout=30)
        sys.exit(manager.returncode or 0)
