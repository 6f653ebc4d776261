"""The media worker's wire format: channel names, placement of rooms on
workers, and the shapes of commands and events (docs/protocol.md, "Media
worker"). Imports nothing heavy, so the signalling consumer can use it
without loading aiortc."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

# Every worker listens on its own channel and on this shared one, which
# (the channel layer being Redis pub/sub) reaches all workers at once.
ROOMS_CHANNEL = "media.rooms"
EVENT_TYPE = "media.event"
COMMAND_TYPE = "media.command"

COMMANDS = (
    "room.open",
    "room.close",
    "peer.join",
    "peer.publish",
    "peer.answer",
    "peer.ice",
    "peer.mute",
    "peer.leave",
    "subscribe",
    "unsubscribe",
    "stats",
    "workers.ping",
    "recording.start",
    "recording.video",
    "recording.stop",
)
KINDS = ("audio", "video")

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CHANNEL = re.compile(r"^[A-Za-z0-9_.!-]{1,99}$")
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,100}$")


class CommandError(Exception):
    """A command the worker refuses; `code` is one of the error codes of the
    protocol, `message` says why in plain English."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def worker_channel_name(worker_id: str) -> str:
    """The channel one media worker listens on."""
    return "media.worker." + identifier(worker_id, "worker")


def worker_for_room(room: str, workers: Sequence[str]) -> str:
    """The worker a room is placed on: rendezvous hashing, so every process
    that knows the same worker list picks the same one, and adding or
    removing a worker moves only the rooms that must move."""
    if not workers:
        raise ValueError("no media workers configured")

    def weight(worker: str) -> bytes:
        return hashlib.sha256((worker + "\x00" + room).encode()).digest()

    return max(workers, key=weight)


def identifier(value: Any, field: str) -> str:
    """A room, peer or worker id: 1–64 ASCII letters, digits, "-" or "_"."""
    if not isinstance(value, str) or not _ID.match(value):
        raise CommandError("invalid-command", field + " must be 1-64 characters of A-Z, a-z, 0-9, - or _")
    return value


def channel_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _CHANNEL.match(value):
        raise CommandError("invalid-command", field + " must be a channel layer name")
    return value


def optional_channel_name(message: dict[str, Any], field: str) -> str | None:
    value = message.get(field)
    return None if value is None else channel_name(value, field)


def request_id(message: dict[str, Any]) -> str | None:
    value = message.get("request_id")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not _REQUEST_ID.match(value):
        raise CommandError("invalid-command", "request_id must be printable ASCII up to 100 characters")
    return value


def kinds(message: dict[str, Any], field: str, default: Sequence[str]) -> frozenset[str]:
    value = message.get(field)
    if value is None:
        return frozenset(default)
    if not isinstance(value, list) or any(item not in KINDS for item in value):
        raise CommandError("invalid-command", field + ' must be a list of "audio" and "video"')
    return frozenset(value)


def boolean(message: dict[str, Any], field: str, default: bool) -> bool:
    value = message.get(field, default)
    if not isinstance(value, bool):
        raise CommandError("invalid-command", field + " must be true or false")
    return value


def description(message: dict[str, Any], field: str, expected_type: str, *, max_bytes: int) -> str:
    """The SDP of {"type": ..., "sdp": ...}; its type must be expected_type."""
    value = message.get(field)
    if not isinstance(value, dict):
        raise CommandError("invalid-sdp", field + ' must be {"type": "' + expected_type + '", "sdp": "..."}')
    if value.get("type") != expected_type:
        raise CommandError("invalid-sdp", field + ' must have type "' + expected_type + '"')
    sdp = value.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        raise CommandError("invalid-sdp", field + ".sdp must be a non-empty string")
    if len(sdp.encode()) > max_bytes:
        raise CommandError("invalid-sdp", field + ".sdp is larger than " + str(max_bytes) + " bytes")
    return sdp


def event(name: str, **fields: Any) -> dict[str, Any]:
    """An event as the worker sends it (a channel-layer message)."""
    return {"type": EVENT_TYPE, "event": name, **fields}


def command(name: str, **fields: Any) -> dict[str, Any]:
    """A command as a client of the worker sends it."""
    if name not in COMMANDS:
        raise ValueError("unknown media command " + name)
    return {"type": COMMAND_TYPE, "command": name, **{key: value for key, value in fields.items() if value is not None}}
