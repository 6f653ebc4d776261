"""Suite-wide set-up: the embedded Redis of the default set-up is started for
the run (unless REDIS_URL points at a real server) and emptied between tests."""

import os
from pathlib import Path
from collections.abc import Iterator

import pytest
from django.conf import settings

from common import embedded_redis

_started: list = []


def pytest_configure(config: pytest.Config) -> None:
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    if getattr(settings, "IS_EMBEDDED_REDIS", False):
        process = embedded_redis.start(settings.EMBEDDED_REDIS_SOCKET)
        if process is not None:
            _started.append(process)


def pytest_unconfigure(config: pytest.Config) -> None:
    for process in _started:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def sms_outbox(tmp_path, settings):
    """The file SMS backend writing to a fresh outbox; returns its path."""
    path = tmp_path / "sms-outbox.jsonl"
    settings.SMS_BACKEND = "file"
    settings.SMS_OUTBOX = str(path)
    os.environ["SMS_OUTBOX"] = str(path)
    return path
