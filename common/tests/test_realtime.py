"""The real-time Hub over a real Redis: delivery, leaving, and what happens
when Redis goes away and comes back."""

import asyncio

from asgiref.sync import sync_to_async

from common import realtime
from common.testing import Inbox


async def test_a_published_frame_reaches_every_listener_of_its_topic_once():
    hub = realtime.hub()
    first, second, other = Inbox(), Inbox(), Inbox()
    await hub.join(first, ["chat.1"])
    await hub.join(second, ["chat.1", "user.7"])
    await hub.join(other, ["chat.2"])

    await sync_to_async(realtime.publish_many)([("chat.1", '{"n":1}'), ("user.7", '{"n":2}')])

    assert await first.next_text() == '{"n":1}'
    assert await second.next_text() == '{"n":1}'
    assert await second.next_text() == '{"n":2}'
    await asyncio.sleep(0.2)
    assert first.frames.empty() and second.frames.empty() and other.frames.empty()
    await hub.close()


async def test_a_listener_that_left_gets_nothing_and_the_others_still_do():
    hub = realtime.hub()
    staying, leaving = Inbox(), Inbox()
    await hub.join(staying, ["chat.1"])
    await hub.join(leaving, ["chat.1"])

    await hub.leave(leaving, ["chat.1"])
    await sync_to_async(realtime.publish)("chat.1", "after")

    assert await staying.next_text() == "after"
    await asyncio.sleep(0.2)
    assert leaving.frames.empty()
    assert hub.listeners == {b"parta.rt.chat.1": {staying}}
    await hub.leave(staying, ["chat.1"])
    assert hub.listeners == {}
    await hub.close()


async def test_a_frame_published_with_skip_reaches_everyone_but_that_listener():
    hub = realtime.hub()
    sender, other = Inbox(), Inbox()
    await hub.join(sender, ["chat.1"])
    await hub.join(other, ["chat.1"])

    await hub.publish("chat.1", "typing", skip=sender)

    assert await other.next_text() == "typing"
    await asyncio.sleep(0.2)
    assert sender.frames.empty()
    await hub.close()


async def test_frames_of_one_topic_arrive_in_the_order_published():
    hub = realtime.hub()
    inbox = Inbox()
    await hub.join(inbox, ["chat.1"])

    await sync_to_async(realtime.publish_many)([("chat.1", str(number)) for number in range(500)])

    assert [await inbox.next_text() for _number in range(500)] == [str(number) for number in range(500)]
    await hub.close()


async def test_after_redis_comes_back_listeners_are_told_and_hear_again(private_redis, caplog):
    hub = realtime.hub()
    inbox = Inbox()
    await hub.join(inbox, ["chat.1"])
    await sync_to_async(realtime.publish)("chat.1", "before")
    assert await inbox.next_text() == "before"

    private_redis.stop()
    # Another thread's publish is handed to the loop and returns at once;
    # the Hub logs what it could not send.
    await sync_to_async(realtime.publish)("chat.1", "lost")
    for _attempt in range(100):
        if "real-time frames not published" in caplog.text:
            break
        await asyncio.sleep(0.05)
    assert "1 real-time frames not published" in caplog.text
    private_redis.start()

    for _attempt in range(100):
        if inbox.resumed:
            break
        await asyncio.sleep(0.05)
    assert inbox.resumed == 1
    await sync_to_async(realtime.publish)("chat.1", "after")
    assert await inbox.next_text() == "after"
    await hub.close()
