from celery import shared_task

from chats.services import messages


@shared_task
def scheduled_messages_deliver() -> int:
    return messages.scheduled_messages_deliver()
