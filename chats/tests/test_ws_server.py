"""The portal's daphne (chats/ws_server.py): a connection's input queue that
holds nothing while idle, with asyncio.Queue's behaviour for daphne's use."""

import asyncio

from chats.ws_server import LazyQueue


def test_messages_come_out_in_the_order_they_were_put_whether_or_not_someone_waits():
    async def scenario() -> list[str]:
        queue = LazyQueue()
        received: list[str] = []

        async def application() -> None:
            while len(received) < 4:
                received.append((await queue.get())["type"])

        reader = asyncio.ensure_future(application())
        await asyncio.sleep(0)  # the application waits for its first message
        queue.put_nowait({"type": "websocket.connect"})
        queue.put_nowait({"type": "websocket.receive"})
        await asyncio.sleep(0)
        queue.put_nowait({"type": "websocket.receive"})
        queue.put_nowait({"type": "websocket.disconnect"})
        await asyncio.wait_for(reader, 5)
        assert queue.items is None  # empty again: nothing kept
        return received

    assert asyncio.run(scenario()) == [
        "websocket.connect",
        "websocket.receive",
        "websocket.receive",
        "websocket.disconnect",
    ]


def test_a_cancelled_wait_loses_no_message():
    async def scenario() -> dict:
        queue = LazyQueue()
        waiting = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        queue.put_nowait({"type": "websocket.receive", "text": "{}"})
        return await asyncio.wait_for(queue.get(), 5)

    assert asyncio.run(scenario()) == {"type": "websocket.receive", "text": "{}"}
