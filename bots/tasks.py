"""Celery tasks of the bots app: thin, take ids, safe to run twice."""

from celery import shared_task

from bots import services


@shared_task
def webhook_deliver(delivery_id: int) -> str:
    """One attempt at one webhook delivery (the service schedules the next
    one on failure, and parks it after the last)."""
    return services.webhook_deliver(delivery_id=delivery_id)


@shared_task
def builtin_update_process(update_pk: int) -> bool:
    """Hand an update of a built-in bot (the help bot…) to its handler."""
    return services.builtin_update_process(update_pk=update_pk)


@shared_task
def webhook_deliveries_sweep() -> int:
    """Celery beat, every minute: deliveries whose attempt is overdue."""
    return services.webhook_deliveries_sweep()


@shared_task
def updates_purge() -> int:
    """Celery beat, hourly: updates confirmed long ago."""
    return services.updates_purge()
