"""Channel names, room placement and command validation."""

import collections

import pytest

from lessons.media import protocol
from lessons.media.protocol import CommandError


def test_worker_channel_names():
    assert protocol.worker_channel_name("main") == "media.worker.main"
    assert protocol.worker_channel_name("eu-2") == "media.worker.eu-2"
    with pytest.raises(CommandError):
        protocol.worker_channel_name("two words")


def test_placement_is_stable_and_spreads_rooms():
    workers = ["a", "b", "c"]
    placed = {room: protocol.worker_for_room(room, workers) for room in (f"lesson-{n}" for n in range(300))}
    assert placed == {room: protocol.worker_for_room(room, list(reversed(workers))) for room in placed}
    counts = collections.Counter(placed.values())
    assert set(counts) == {"a", "b", "c"}
    assert min(counts.values()) > 60


def test_adding_a_worker_moves_only_rooms_to_it():
    rooms = [f"lesson-{n}" for n in range(300)]
    before = {room: protocol.worker_for_room(room, ["a", "b"]) for room in rooms}
    after = {room: protocol.worker_for_room(room, ["a", "b", "c"]) for room in rooms}
    moved = [room for room in rooms if before[room] != after[room]]
    assert moved
    assert {after[room] for room in moved} == {"c"}


def test_placement_needs_a_worker():
    with pytest.raises(ValueError):
        protocol.worker_for_room("r", [])


def test_identifiers():
    assert protocol.identifier("lesson-42_b", "room") == "lesson-42_b"
    for bad in ("", "a" * 65, "with space", "dot.ted", "ünï", 42, None):
        with pytest.raises(CommandError) as caught:
            protocol.identifier(bad, "room")
        assert caught.value.code == "invalid-command"


def test_descriptions():
    sdp = protocol.description({"offer": {"type": "offer", "sdp": "v=0"}}, "offer", "offer", max_bytes=10)
    assert sdp == "v=0"
    for value, in_message in (
        ({"type": "answer", "sdp": "v=0"}, "type"),
        ({"type": "offer", "sdp": ""}, "non-empty"),
        ({"type": "offer", "sdp": "v=0" * 10}, "larger"),
        ("v=0", "must be"),
    ):
        with pytest.raises(CommandError) as caught:
            protocol.description({"offer": value}, "offer", "offer", max_bytes=10)
        assert caught.value.code == "invalid-sdp"
        assert in_message in caught.value.message


def test_kinds_and_commands():
    assert protocol.kinds({}, "kinds", protocol.KINDS) == {"audio", "video"}
    assert protocol.kinds({"kinds": []}, "kinds", protocol.KINDS) == frozenset()
    with pytest.raises(CommandError):
        protocol.kinds({"kinds": ["screen"]}, "kinds", ())
    assert protocol.command("peer.leave", room="r", peer="p", offer=None) == {
        "type": "media.command",
        "command": "peer.leave",
        "room": "r",
        "peer": "p",
    }
    with pytest.raises(ValueError):
        protocol.command("peer.teleport")
    assert protocol.event("peer.left", room="r") == {"type": "media.event", "event": "peer.left", "room": "r"}
