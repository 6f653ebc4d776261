"""Settings of the chats benchmark's servers: the bench settings with the
per-person send budget (CHAT_SEND_RATE, 30/minute in production) out of the
way, as the sign-in benchmark raises the sign-in limits. The per-socket
frame limit of the chat WebSocket stays as it is: the load spreads its
sends over every member of a chat, as a class does."""

from bench.settings import *  # noqa: F403

CHAT_SEND_RATE = "100000000/minute"

# Warnings and errors of the server go to its log (var/bench/daphne-<port>.log).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"django.channels.server": {"level": "ERROR"}},
}
