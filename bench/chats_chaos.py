"""Chaos run of the chats benchmark (placeholder until the protocol exists)."""

from typing import Any


def run(services: Any, world: list[dict[str, Any]], tag: str) -> dict[str, Any]:
    return {"value": 0, "complete": False}
