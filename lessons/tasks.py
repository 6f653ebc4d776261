"""Celery tasks of lessons: thin, each calls one service.

Beat schedule (portal/settings/base.py CELERY_BEAT_SCHEDULE):
- lessons.tasks.reminders_send: every 60 s

Recordings (lessons.recordings): recording_post after a recording is
ready, recording_complete after one was stopped or its call ended.
"""

from typing import Any

from celery import shared_task

from lessons import recordings, services


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


@shared_task(
    name="lessons.tasks.recording_post",
    autoretry_for=(Exception,),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=8,
)
def recording_post(recording_id: int) -> None:
    """Post a finished recording to its class chat. Enqueued after the
    commit that marked it ready; safe to run twice (posted exactly once)."""
    recordings.recording_post(recording_id=recording_id)


@shared_task(bind=True, name="lessons.tasks.recording_complete", max_retries=30, default_retry_delay=10)
def recording_complete(self: Any, recording_id: int) -> None:
    """Make sure a stopped recording is collected when the worker's
    `recording.finished` reached nobody: wait for the report it writes next
    to the file (5 minutes), then give the recording up as failed."""
    if recordings.recording_complete(recording_id=recording_id):
        return
    if self.request.retries >= self.max_retries:
        recordings.recording_fail(recording_id=recording_id)
        return
    raise self.retry()
