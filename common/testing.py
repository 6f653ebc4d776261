"""Helpers for tests of real-time delivery (common.realtime)."""

import asyncio
import json
from typing import Any


class Inbox:
    """A Hub listener that keeps what arrives."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[str] = asyncio.Queue()
        self.resumed = 0

    async def realtime_deliver(self, text: str) -> None:
        self.frames.put_nowait(text)

    async def realtime_resumed(self) -> None:
        self.resumed += 1

    async def next_text(self, timeout: float = 5) -> str:
        return await asyncio.wait_for(self.frames.get(), timeout)

    async def next(self, timeout: float = 5) -> Any:
        return json.loads(await self.next_text(timeout))
