"""Celery tasks of the adoption app: thin, each calls one service.

Beat schedule (portal/settings/base.py CELERY_BEAT_SCHEDULE):
- adoption.tasks.weekly_figures_refresh: every hour
"""

from celery import shared_task

from adoption import services


@shared_task(name="adoption.tasks.weekly_figures_refresh")
def weekly_figures_refresh() -> int:
    """Rebuild this week's and last week's figures of every organisation.
    Idempotent: a run replaces the weeks' rows, so a retry or two runs at
    once leave the same figures."""
    return len(services.weekly_figures_refresh())
