"""Fixed-window rate limits kept in the shared cache (Redis), so that every
daphne process and worker counts against the same budget."""

import dataclasses
import functools
import hashlib
import math
import re
import time
from collections.abc import Callable, Sequence

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


@dataclasses.dataclass(frozen=True)
class _Window:
    cache_key: str
    timeout: int
    limit: int
    seconds_left: int

    def check(self, count: int) -> None:
        if count > self.limit:
            raise RateLimited(
                _("Too many requests. Try again in %(seconds)s s.") % {"seconds": max(1, self.seconds_left)},
                retry_after=self.seconds_left,
            )


def clock() -> float:
    """The time the windows are counted in (the tests pin it, so that a
    window never rolls over in the middle of a test)."""
    return time.time()


def _window(*, scope: str, key: str, rate: str) -> _Window:
    """The counter of this window. The key is hashed so that no IP address
    or phone number lands in Redis key names."""
    limit, period = rate_parse(rate)
    now = clock()
    window_start = int(now // period) * period
    window_end = window_start + period
    key_digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    # The key lives a little past its window so that an increment late in
    # the window never recreates it without an expiry.
    return _Window(
        cache_key="ratelimit:" + scope + ":" + key_digest + ":" + str(window_start),
        timeout=math.ceil(window_end - now) + 5,
        limit=limit,
        seconds_left=math.ceil(window_end - now),
    )


def rate_limit_hit(*, scope: str, key: str, rate: str) -> None:
    """Count one hit of `key` (an IP address, a user id…) in `scope` and
    raise RateLimited with the seconds until the window ends once the count
    passes the rate."""
    [check] = rate_limit_hit_many([(scope, key, rate)])
    check()


def rate_limit_hit_many(hits: Sequence[tuple[str, str, str]]) -> list[Callable[[], None]]:
    """rate_limit_hit for several (scope, key, rate) hits in one round trip
    to Redis (the chat sockets' writer counts a batch of sends so). Returns
    a check per hit, to call where its refusal belongs: it raises
    RateLimited, worded in the language active then."""
    windows = [_window(scope=scope, key=key, rate=rate) for scope, key, rate in hits]
    counts = _count_hits([(window.cache_key, window.timeout) for window in windows])
    return [functools.partial(window.check, count) for window, count in zip(windows, counts, strict=True)]


def _count_hits(windows: Sequence[tuple[str, int]]) -> list[int]:
    """Add one to each (cache key, timeout) window's counter and return the
    counts: on Redis one round trip for all (SET NX with the expiry, then
    INCR, pipelined; this runs for every chat message), elsewhere the
    cache's add-then-incr."""
    backend = caches["default"]
    if isinstance(backend, RedisCache) and windows:
        client = backend._cache.get_client(write=True)  # type: ignore[attr-defined]
        pipeline = client.pipeline(transaction=False)
        for cache_key, timeout in windows:
            key = backend.make_and_validate_key(cache_key)
            pipeline.set(key, 0, ex=timeout, nx=True)
            pipeline.incr(key)
        results = pipeline.execute()
        return [int(count) for count in results[1::2]]
    return [_cache_count_hit(cache_key, timeout) for cache_key, timeout in windows]


def _cache_count_hit(cache_key: str, timeout: int) -> int:
    if cache.add(cache_key, 1, timeout=timeout):
        return 1
    try:
        return int(cache.incr(cache_key))
    except ValueError:
        # Expired between add and incr: this hit starts a fresh count.
        cache.add(cache_key, 1, timeout=timeout)
        return 1
