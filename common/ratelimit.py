"""Fixed-window rate limits kept in the shared cache (Redis), so that every
daphne process and worker counts against the same budget."""

import hashlib
import math
import re
import time

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.utils.translation import gettext as _

from common.errors import RateLimited

PERIOD_SECONDS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}

_RATE_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+?)s?\s*$")


def rate_parse(rate: str) -> tuple[int, int]:
    """ "30/hour" → (30, 3600); "5/10m" → (5, 600). Raises ValueError on
    anything else, so that a typo in a setting fails loudly."""
    match = _RATE_PATTERN.match(rate.lower())
    if match is None or match.group(3) not in PERIOD_SECONDS:
        raise ValueError("Invalid rate " + repr(rate) + ', expected "<count>/<period>" like "30/hour".')
    count = int(match.group(1))
    multiplier = int(match.group(2) or 1)
    period = PERIOD_SECONDS[match.group(3)] * multiplier
    if period <= 0:
        raise ValueError("Invalid rate " + repr(rate) + ": the period must be positive.")
    return count, period


def rate_limit_hit(*, scope: str, key: str, rate: str) -> None:
    """Count one hit of `key` (an IP address, a user id…) in `scope` and
    raise RateLimited with the seconds until the window ends once the count
    passes the rate. The key is hashed so that no IP address or phone number
    lands in Redis key names."""
    limit, period = rate_parse(rate)
    now = time.time()
    window_start = int(now // period) * period
    window_end = window_start + period
    key_digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    cache_key = "ratelimit:" + scope + ":" + key_digest + ":" + str(window_start)
    # The key lives a little past its window so that an increment late in
    # the window never recreates it without an expiry.
    timeout = math.ceil(window_end - now) + 5
    count = _count_hit(cache_key, timeout)
    if count > limit:
        raise RateLimited(
            _("Too many requests. Try again in %(seconds)s s.") % {"seconds": max(1, math.ceil(window_end - now))},
            retry_after=math.ceil(window_end - now),
        )


def _count_hit(cache_key: str, timeout: int) -> int:
    """Add one to the window's counter and return it: on Redis one round
    trip (SET NX with the expiry, then INCR, pipelined; this runs on every
    chat message), elsewhere the cache's add-then-incr."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        key = backend.make_and_validate_key(cache_key)
        client = backend._cache.get_client(key, write=True)  # type: ignore[attr-defined]
        pipeline = client.pipeline(transaction=False)
        pipeline.set(key, 0, ex=timeout, nx=True)
        pipeline.incr(key)
        _created, count = pipeline.execute()
        return int(count)
    if cache.add(cache_key, 1, timeout=timeout):
        return 1
    try:
        return int(cache.incr(cache_key))
    except ValueError:
        # Expired between add and incr: this hit starts a fresh count.
        cache.add(cache_key, 1, timeout=timeout)
        return 1
