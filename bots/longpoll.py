"""Waking long polls. A getUpdates with a timeout that finds nothing waits
on a Redis list of its bot (BLPOP, in the event loop, holding no database
connection and no thread); every new update of the bot pushes to that list
after commit. The list is emptied before the database is read, so an update
committed between the read and the wait still wakes the poll."""

import contextlib
import logging

import redis
import redis.asyncio
from django.conf import settings

logger = logging.getLogger(__name__)

_clients: dict[str, redis.Redis] = {}


def max_timeout() -> int:
    return int(getattr(settings, "BOT_LONG_POLL_MAX_SECONDS", 25))


def wake_key(bot_id: int) -> str:
    return "parta:bots:wake:" + str(bot_id)


def _client() -> redis.Redis:
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        _clients[url] = client
    return client


def wake(bot_id: int) -> None:
    """Wake the bot's waiting poll (after commit). A Redis failure loses
    nothing: the poll finds the update at its next request."""
    try:
        pipeline = _client().pipeline(transaction=False)
        pipeline.rpush(wake_key(bot_id), b"1")
        pipeline.expire(wake_key(bot_id), max_timeout() + 5)
        pipeline.execute()
    except (redis.RedisError, OSError) as error:
        logger.warning("bots: long poll not woken (Redis unavailable: %s)", type(error).__name__)


def forget(bot_id: int) -> None:
    """Drop earlier wake-ups, before the database is read."""
    with contextlib.suppress(redis.RedisError, OSError):
        _client().delete(wake_key(bot_id))


async def wait(bot_id: int, timeout: float) -> bool:
    """Wait up to `timeout` seconds for a new update of the bot; True when
    woken. A Redis failure ends the wait early (the client asks again)."""
    client = redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
    try:
        found = await client.blpop([wake_key(bot_id)], timeout=max(1, int(timeout)))
        return found is not None
    except (redis.RedisError, OSError) as error:
        logger.warning("bots: long poll wait failed (%s)", type(error).__name__)
        return False
    finally:
        await client.aclose()
