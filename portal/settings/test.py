"""Settings for the test suite: the same services as production (a real
database and Redis), quicker password hashing, a file SMS outbox per run."""

import os

from portal.settings.base import *  # noqa: F403
from portal.settings.base import DATABASES, VAR_DIR, celery_broker_url

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SMS_BACKEND = os.environ.get("SMS_BACKEND", "file")
SMS_OUTBOX = os.environ.get("SMS_OUTBOX", str(VAR_DIR / "test-sms-outbox.jsonl"))
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so that a real daphne started by end-to-end tests
    # sees the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

if IS_EMBEDDED_REDIS:  # noqa: F405
    # Its own embedded server, so a running `make run` is never touched.
    EMBEDDED_REDIS_SOCKET = os.environ.get("EMBEDDED_REDIS_SOCKET_TEST", str(VAR_DIR / "test-redis.sock"))
    REDIS_URL = "unix://" + EMBEDDED_REDIS_SOCKET + "?db=0"
    CACHES["default"]["LOCATION"] = REDIS_URL  # noqa: F405
    CHANNEL_LAYERS = {
        "default": {**CHANNEL_LAYERS["default"], "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": None}]}}  # noqa: F405
    }
    CELERY_BROKER_URL = celery_broker_url(REDIS_URL)
CACHES["default"]["KEY_PREFIX"] = "parta-test"  # noqa: F405
