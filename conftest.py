"""Suite-wide set-up: the embedded Redis of the default set-up is started for
the run (unless REDIS_URL points at a real server) and emptied between tests."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from common import embedded_redis
from tests.live import LiveServer

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


@pytest.fixture(autouse=True)
def _rate_windows_do_not_roll(monkeypatch) -> None:
    """Rate-limit windows are fixed (a minute, an hour…): a test that counts
    hits up to a limit would pass one extra hit whenever the wall clock
    crossed a window's end during it. The clock of this process's rate
    limits is pinned at the start of a day, one window for every period."""
    import time

    pinned = time.time() // 86400 * 86400 + 0.25
    monkeypatch.setattr("common.ratelimit.clock", lambda: pinned)


class PrivateRedis:
    """A Redis server of one test alone, to stop and start again."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.processes: list = []
        self.start()

    @property
    def url(self) -> str:
        return "unix://" + self.socket_path + "?db=0"

    def start(self) -> None:
        process = embedded_redis.start(self.socket_path)
        assert process is not None
        self.processes.append(process)

    def stop(self) -> None:
        process = self.processes[-1]
        process.kill()
        process.wait()


@pytest.fixture
def private_redis(tmp_path, settings) -> Iterator[PrivateRedis]:
    """A Redis of this test alone as settings.REDIS_URL (the real-time Hub and
    publishers use it; the cache keeps the suite's Redis)."""
    server = PrivateRedis(str(tmp_path / "redis.sock"))
    settings.REDIS_URL = server.url
    yield server
    for process in server.processes:
        process.kill()
        process.wait()


@pytest.fixture
def sms_outbox(tmp_path, settings):
    """The file SMS backend writing to a fresh outbox; returns its path."""
    path = tmp_path / "sms-outbox.jsonl"
    settings.SMS_BACKEND = "file"
    settings.SMS_OUTBOX = str(path)
    os.environ["SMS_OUTBOX"] = str(path)
    return path


# --- End-to-end: a real daphne, and Debian's Chromium through Playwright ---------

ARTIFACTS = Path(__file__).resolve().parent / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def live_daphne(transactional_db, sms_outbox) -> Iterator[LiveServer]:
    """A real daphne serving the test database; SMS go to `sms_outbox`."""
    server = LiveServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser(monkeypatch):
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is required for browser tests: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's own
    # ORM calls are still synchronous, so Django's guard would misfire.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="ru-RU", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
