"""Celery tasks of lessons: thin, each calls one service.

Beat schedule (portal/settings/base.py CELERY_BEAT_SCHEDULE):
- lessons.tasks.reminders_send: every 60 s
"""

from celery import shared_task

from lessons import services


@shared_task(name="lessons.tasks.reminders_send")
def reminders_send() -> int:
    """Reminders due now, the day before and 15 minutes before. Safe to run
    twice at once and to retry: each is sent exactly once (see the service)."""
    return services.reminders_send()


@shared_task(name="lessons.tasks.meeting_reminders_send")
def meeting_reminders_send(meeting_id: int) -> int:
    """The due reminders of one meeting, enqueued after a meeting close to
    its start was scheduled or changed; the beat would send them too."""
    return services.reminders_send(meeting_id=meeting_id)
