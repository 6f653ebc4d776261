from collections.abc import Iterator

import pytest

from chats.tests.factories import directory_changes_forget
from portal.celery import app as celery_app


@pytest.fixture(autouse=True)
def _forget_directory_changes() -> Iterator[None]:
    directory_changes_forget()
    yield
    directory_changes_forget()


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Tasks run at once, in the test (a countdown is ignored: a webhook
    retry finds its time not come yet and waits for the beat)."""
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous
