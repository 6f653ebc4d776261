"""Celery tasks of the migration: thin, idempotent, safe to retry.

Beat schedule (portal/settings/base.py CELERY_BEAT_SCHEDULE):
- migration.tasks.legacy_notices_resend: every 300 s
"""

import datetime

from celery import shared_task

from migration import services

# Backoff of the notice: 30 s, 1, 2, 4 … minutes, capped at an hour; after
# NOTICE_RETRIES temporary failures the notice is marked failed (admin can
# send it again).
NOTICE_RETRIES = 10
NOTICE_BACKOFF_BASE = 30
NOTICE_BACKOFF_MAX = 3600


def notice_backoff(retries: int) -> int:
    return int(min(NOTICE_BACKOFF_MAX, NOTICE_BACKOFF_BASE * 2**retries))


@shared_task(bind=True, max_retries=NOTICE_RETRIES)
def legacy_notice_send(self, legacy_chat_id: int) -> str:  # type: ignore[no-untyped-def]
    """Post the notice of one migrated old chat; retried with backoff on
    temporary errors. Returns the outcome (services.NoticeOutcome)."""
    outcome = services.legacy_notice_attempt(
        legacy_chat_id=legacy_chat_id, final=self.request.retries >= NOTICE_RETRIES
    )
    if outcome == services.NoticeOutcome.RETRY:
        raise self.retry(countdown=notice_backoff(self.request.retries))
    return outcome


@shared_task
def invitations_sms_send(legacy_chat_id: int) -> int:
    return services.invitations_sms_send(legacy_chat_id=legacy_chat_id)


@shared_task
def import_run_execute(run_id: int) -> None:
    services.import_run_execute(run_id=run_id)


@shared_task
def legacy_notices_resend() -> int:
    """Celery beat, every five minutes: notices, invitations and admin
    uploads whose task was lost (a broker outage) are queued again; a notice
    still in its backoff is left alone (it was touched recently)."""
    notices, invitations = services.legacy_follow_ups_pending(older_than=datetime.timedelta(hours=2))
    for legacy_chat_id in notices:
        legacy_notice_send.delay(legacy_chat_id)
    for legacy_chat_id in invitations:
        invitations_sms_send.delay(legacy_chat_id)
    # An upload claims its run before importing, so queuing it twice is harmless.
    runs = services.import_runs_stalled(older_than=datetime.timedelta(minutes=10))
    for run_id in runs:
        import_run_execute.delay(run_id)
    return len(notices) + len(invitations) + len(runs)
