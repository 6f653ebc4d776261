"""Celery tasks of the broadcast channels: thin, each calls one service.

Beat schedule (added by the lead to CELERY_BEAT_SCHEDULE):
- chats.tasks_channels.channel_escalations_run: every 60 s
- chats.tasks_channels.channel_subscriptions_resync: every 24 h
"""

from celery import shared_task

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
