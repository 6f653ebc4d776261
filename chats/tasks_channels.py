"""Celery tasks of the broadcast channels: thin, each calls one service.

Beat schedule (added by the lead to CELERY_BEAT_SCHEDULE):
- chats.tasks_channels.channel_escalations_run: every 60 s
- chats.tasks_channels.channel_subscriptions_resync: every 24 h
Queued by the services:
- chats.tasks_channels.channel_subscriptions_fill: after a big channel is created
"""

from celery import shared_task
from django.db import DatabaseError

from chats.services import channels


@shared_task
def channel_escalations_run() -> int:
    """SMS to guardians about posts not acknowledged in time (exactly once per post)."""
    return channels.escalations_run()


@shared_task
def channel_subscriptions_resync() -> int:
    """Repair the automatic subscriptions of every channel (the directory hook
    keeps them in step; this catches what it cannot see)."""
    return channels.channels_resync_all()


@shared_task(autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def channel_subscriptions_fill(chat_id: int, after_user_id: int = 0) -> None:
    """Subscribe a new channel's audience, one batch per run: each run queues
    the next, so a region's channel never holds a worker for long. Safe to
    retry and to run twice (the service is idempotent); returns quietly when
    the channel is gone."""
    last_user_id = channels.channel_subscriptions_fill(chat_id=chat_id, after_user_id=after_user_id)
    if last_user_id is not None:
        channel_subscriptions_fill.delay(chat_id, last_user_id)
