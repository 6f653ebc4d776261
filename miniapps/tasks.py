"""Celery tasks of the diary: thin, each calls one service.

Beat schedule (portal/settings/base.py CELERY_BEAT_SCHEDULE):
- miniapps.tasks.homework_reminders_send: every 600 s
"""

from celery import shared_task

from miniapps import services


@shared_task(name="miniapps.tasks.homework_reminders_send")
def homework_reminders_send() -> int:
    """Reminders of homework due tomorrow, from the evening before. Safe to
    run twice at once and to retry: each is sent exactly once (see the service)."""
    return services.homework_reminders_send()
