"""Settings of the benchmark servers: the test settings, the bench URLconf
(which adds the bare baseline views) and limits raised out of the way."""

from portal.settings.test import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
LOGIN_IP_CODE_RATE = "100000000/hour"
LOGIN_IP_TOKEN_RATE = "100000000/hour"
LOGIN_CODE_DAILY_LIMIT = 100000000
LOGGING = {"version": 1, "disable_existing_loggers": True, "root": {"handlers": [], "level": "CRITICAL"}}
