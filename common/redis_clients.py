"""Async Redis clients of the event loop (the chat sockets' real-time
publishing and send budget)."""

import redis.asyncio

AsyncRedis = redis.asyncio.Redis
# Connections a process's loop opens to one Redis server at most; a command
# beyond them waits (up to the timeout) for one to be free. Hundreds of
# sockets sending at once would otherwise each open a connection, and a
# plain pool refuses past its size (MaxConnectionsError).
POOL_SIZE = 16
POOL_WAIT_SECONDS = 2.0


def async_redis(url: str) -> AsyncRedis:
    """A client with a blocking pool of POOL_SIZE connections and short
    timeouts: a Redis outage must not hold a socket's turn for long."""
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=POOL_WAIT_SECONDS,
        socket_timeout=2,
        socket_connect_timeout=2,
    )
    return redis.asyncio.Redis(connection_pool=pool)
