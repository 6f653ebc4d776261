from collections.abc import Iterator

import pytest
from django.utils import translation

from portal.celery import app as celery_app


@pytest.fixture(autouse=True)
def english(settings) -> Iterator[None]:
    """The messages these tests read are asserted in English (the msgids),
    so that they hold before and after the Russian catalogue is merged."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Celery runs the tasks in the test's thread (unit tests only). Errors
    do not propagate: with propagation on, an eager task's retry would
    escape as an exception instead of running again."""
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture
def no_follow_ups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The notice and SMS tasks are not queued; returns the old chats they
    would have been queued for."""
    from migration import services

    queued: list[int] = []

    def queue(legacy_chat_id: int) -> bool:
        queued.append(legacy_chat_id)
        return True

    monkeypatch.setattr(services, "_follow_up_queue", queue)
    return queued
