from celery import shared_task

from accounts.services import login_codes_purge as login_codes_purge_service


@shared_task(name="accounts.tasks.login_codes_purge")
def login_codes_purge() -> int:
    """Hourly: forget sign-in codes older than a day."""
    return login_codes_purge_service()
