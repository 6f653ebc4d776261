import redis
from django.conf import settings
from django.db import DatabaseError, connection


def health_checks() -> dict[str, str]:
    """The state of each dependency: "ok" or "error: <kind of failure>"."""
    return {"database": _database_state(), "redis": _redis_state()}


def _database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        return "error: " + type(error).__name__
    return "ok"


def _redis_state() -> str:
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError) as error:
        return "error: " + type(error).__name__
    return "ok"
