from celery import shared_task

from chats.services import content, messages


@shared_task
def scheduled_messages_deliver() -> int:
    """Celery beat, every minute: messages held for teachers' office hours
    whose time has come. Safe to retry and to run twice at once: each held
    message is delivered exactly once (see the service)."""
    return messages.scheduled_messages_deliver()


@shared_task
def attachments_unbound_purge() -> int:
    """Files uploaded but never sent with a message."""
    return content.attachments_unbound_purge()
