"""Real-time chats (issue 3) against a bare baseline measured in the same
run: a minimal `websockets` server broadcasting through raw Redis pub/sub
(bench/baseline_ws.py), driven by the same load generator (bench/chats_load.py).

- chats.fanout_p99: 20 class chats × 30 connected members, each chat sending
  1 message/s for BENCH_CHATS_SECONDS (60): p99 from "send" to the last
  member's receipt; zero lost, zero duplicated, order kept per chat.
- chats.throughput: deliveries per second of one server process under a
  saturating load (BENCH_CHATS_THROUGHPUT_SECONDS, 15).
- chats.daphne_floor (reported): the throughput of the baseline's protocol
  as a bare ASGI application under daphne (bench/baseline_daphne.py), no
  Django and no database: what daphne itself allows, as a share of the bare
  `websockets` baseline. It tells the server's floor from the portal's work.
- chats.daphne_floor_memory (reported): the same bare application's idle
  socket, as a share of the baseline's.
- chats.idle_memory: resident memory per idle authenticated socket, with
  BENCH_CHATS_IDLE (2,000) sockets held open past the 5 s idle trap.
- chats.chaos_lost: BENCH_CHATS_CHAOS_MESSAGES (10,000) messages while Redis
  is killed and restarted and clients drop and reconnect (bench/chats_chaos.py):
  messages lost + duplicated after catch-up.

The load generator (one asyncio loop in this process) and the servers share
the machine's cores; the output says so, with the load average."""

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from typing import Any

from bench import chats_chaos
from bench.chats_load import Account, Client, Delivery, close_all, connect_all
from bench.core import (
    BENCH_DIR,
    ROOT,
    Daphne,
    Result,
    Services,
    cpu_seconds,
    fd_limit_raise,
    percentile,
    process_stop,
    rss_bytes,
)
from tests.live import free_port

CHATS = 20
MEMBERS = 30
SECONDS = int(os.environ.get("BENCH_CHATS_SECONDS", "60"))
THROUGHPUT_SECONDS = float(os.environ.get("BENCH_CHATS_THROUGHPUT_SECONDS", "15"))
THROUGHPUT_WINDOW = 8  # messages per chat on their way (sent, not yet received by every member)
IDLE = int(os.environ.get("BENCH_CHATS_IDLE", "2000"))
BODY = "Завтра контрольная по алгебре, повторите параграфы 12–14 и возьмите калькуляторы. Спасибо!"


def chats_environment(services: Services, **extra: str) -> dict[str, str]:
    """The environment of the chat servers and the seeding process."""
    return {**services.environment, "DJANGO_SETTINGS_MODULE": "bench.chats_settings", **extra}


def world_seed(services: Services, chat_count: int) -> list[dict[str, Any]]:
    """The seeded world (bench/chats_seed.py), made in a child process."""
    out = BENCH_DIR / "chats-world.json"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bench.chats_seed", str(out), str(chat_count), str(MEMBERS)],
        cwd=ROOT,
        env=chats_environment(services),
        check=True,
    )
    world = json.loads(out.read_text())
    out.unlink()
    made = world["chats_made_by_bench"]
    print(
        f"  world: {len(world['chats'])} class chats × {MEMBERS} members"
        f" seeded in {time.perf_counter() - started:.1f} s"
        + (f" ({made} chats made by the bench: no directory sync registered)" if made else ""),
        flush=True,
    )
    chats: list[dict[str, Any]] = world["chats"]
    return chats


def redis_url(services: Services) -> str:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    return "unix://" + services.environment["EMBEDDED_REDIS_SOCKET_TEST"] + "?db=0"


class Baseline:
    """bench/baseline_ws.py as a child process."""

    def __init__(self, world: list[dict[str, Any]], url_of_redis: str) -> None:
        self.tokens_path = BENCH_DIR / "baseline-tokens.json"
        baseline_tokens(world, self.tokens_path)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(BENCH_DIR / "baseline-ws.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.baseline_ws",
                "--port",
                str(self.port),
                "--redis-url",
                url_of_redis,
                "--tokens",
                str(self.tokens_path),
            ],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while b"listening" not in (BENCH_DIR / "baseline-ws.log").read_bytes():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the baseline server did not start; see var/bench/baseline-ws.log")
            time.sleep(0.05)

    def stop(self) -> None:
        process_stop(self.process)
        self.log.close()
        self.tokens_path.unlink(missing_ok=True)


def baseline_tokens(world: list[dict[str, Any]], path: Any) -> None:
    """The baselines' token file: {key: {"user": id, "chats": [ids]}}."""
    tokens = {
        member["token"]: {"user": member["user"], "chats": [chat["id"]]} for chat in world for member in chat["members"]
    }
    path.write_text(json.dumps(tokens))


class Floor:
    """bench/baseline_daphne.py under daphne."""

    def __init__(self, services: Services, world: list[dict[str, Any]]) -> None:
        self.tokens_path = BENCH_DIR / "floor-tokens.json"
        baseline_tokens(world, self.tokens_path)
        environment = {"BASELINE_TOKENS": str(self.tokens_path), "BASELINE_REDIS_URL": redis_url(services)}
        self.server = Daphne(
            chats_environment(services, **environment), free_port(), application="bench.baseline_daphne:application"
        )
        self.url = self.server.url
        self.process = self.server.process

    def stop(self) -> None:
        self.server.stop()
        self.tokens_path.unlink(missing_ok=True)


def run_tag() -> str:
    return f"b{int(time.time())}"


async def sleep_until(moment: float) -> None:
    delay = moment - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


async def fanout_and_throughput(url: str, world: list[dict[str, Any]], pid: int, tag: str) -> dict[str, Any]:
    """Both loads on one set of sockets: first 1 message/s per chat (latency,
    lost, duplicated, order), then as fast as the server delivers. A chat's
    messages are sent by its members in turn, as in a class."""
    delivery = Delivery()
    clients: list[Client] = []
    members_of: dict[int, list[Client]] = {}
    for chat in world[:CHATS]:
        members = members_of[chat["id"]] = [
            Client(delivery, Account(member["user"], member["token"], (chat["id"],)), url)
            for member in chat["members"][:MEMBERS]
        ]
        clients.extend(members)
        delivery.receivers[chat["id"]] = len(members)
    connect_seconds = await connect_all(clients)
    # Warm-up: a few messages per chat, not counted.
    for number in range(3):
        for chat_id, members in members_of.items():
            await members[number].send(chat_id, f"{tag}-w-{chat_id}-{number}", BODY)
        await asyncio.sleep(0.3)
    await asyncio.sleep(2.0)
    run = Delivery()
    run.receivers = delivery.receivers
    for client in clients:
        client.delivery = run
        client.last_seq.clear()
        client.seen.clear()

    # The fan-out run: every chat sends once a second, staggered over the second.
    started = time.perf_counter() + 0.5
    client_ids: list[str] = []

    async def chat_sender(index: int, chat_id: int, members: list[Client]) -> None:
        for second in range(SECONDS):
            await sleep_until(started + second + index / len(members_of))
            client_id = f"{tag}-f-{chat_id}-{second}"
            client_ids.append(client_id)
            await members[second % len(members)].send(chat_id, client_id, BODY)

    await asyncio.gather(
        *(chat_sender(index, chat_id, members) for index, (chat_id, members) in enumerate(members_of.items()))
    )
    expected = sum(run.receivers[run.chat_of[client_id]] for client_id in client_ids)
    deadline = time.perf_counter() + 15
    while time.perf_counter() < deadline and run.lost(client_ids) > 0:
        await asyncio.sleep(0.2)
    fanout = {
        "connect_seconds": connect_seconds,
        "messages": len(client_ids),
        "acked": sum(1 for client_id in client_ids if client_id in run.acked),
        "expected": expected,
        "lost": run.lost(client_ids),
        "duplicates": run.duplicates,
        "out_of_order": run.out_of_order,
        "latencies": list(run.latencies),
        "closed": sum(1 for client in clients if client.closed_early or not client.is_open),
        "errors": run.errors[:3],
    }

    # Throughput: each chat keeps THROUGHPUT_WINDOW messages on their way
    # (sent, not yet received by every member).
    running = True
    for chat_id in members_of:
        run.progress[chat_id] = asyncio.Event()

    async def pump(chat_id: int, members: list[Client]) -> None:
        sent = 0
        done = run.completed.get(chat_id, 0)
        progress = run.progress[chat_id]
        while running:
            while running and sent - (run.completed.get(chat_id, 0) - done) >= THROUGHPUT_WINDOW:
                progress.clear()
                try:
                    await asyncio.wait_for(progress.wait(), 5)
                except TimeoutError:
                    done -= 1  # a delivery went missing: do not stall on it
            if running:
                await members[sent % len(members)].send(chat_id, f"{tag}-t-{chat_id}-{sent}", BODY)
                sent += 1

    pumps = [asyncio.create_task(pump(chat_id, members)) for chat_id, members in members_of.items()]
    await asyncio.sleep(2.0)  # reach the steady state
    deliveries, server_cpu, client_cpu = run.deliveries, cpu_seconds(pid), time.process_time()
    measured = time.perf_counter()
    await asyncio.sleep(THROUGHPUT_SECONDS)
    elapsed = time.perf_counter() - measured
    rate = (run.deliveries - deliveries) / elapsed
    server_busy = (cpu_seconds(pid) - server_cpu) / elapsed
    client_busy = (time.process_time() - client_cpu) / elapsed
    running = False
    for event in run.progress.values():
        event.set()
    await asyncio.gather(*pumps)
    await asyncio.sleep(1.0)
    await close_all(clients)
    return {
        "fanout": fanout,
        "throughput": {
            "rate": rate,
            "server_cpu": server_busy,
            "client_cpu": client_busy,
            "errors": run.errors[:3],
        },
    }


async def idle_memory(url: str, accounts: list[Account], pid: int) -> dict[str, Any]:
    """Resident memory growth of the server per idle authenticated socket."""
    delivery = Delivery()
    warm_up = [Client(delivery, account, url) for account in accounts[:20]]
    await connect_all(warm_up)
    await asyncio.sleep(1.0)
    await close_all(warm_up)
    await asyncio.sleep(2.0)
    before = rss_bytes(pid)
    clients = [Client(delivery, account, url) for account in accounts]
    connect_seconds = await connect_all(clients)
    await asyncio.sleep(7.0)  # idle for longer than redis-py's 5 s default socket timeout
    after = rss_bytes(pid)
    still_open = sum(1 for client in clients if client.is_open)
    await close_all(clients)
    return {
        "per_connection_kb": (after - before) / len(clients) / 1024,
        "before_mb": before / 2**20,
        "after_mb": after / 2**20,
        "open": still_open,
        "connect_seconds": connect_seconds,
    }


def _fanout_line(name: str, figures: dict[str, Any]) -> str:
    fanout = figures["fanout"]
    latencies = [value * 1000 for value in fanout["latencies"]]
    return (
        f"  {name:8} fan-out: {fanout['messages']} messages ({fanout['acked']} acked) → {fanout['expected']} deliveries"
        f" expected; lost {fanout['lost']}, duplicated {fanout['duplicates']}, out of order {fanout['out_of_order']},"
        f" sockets closed {fanout['closed']}; last receipt p50 {percentile(latencies, 0.5):.1f} ms,"
        f" p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies, default=float('nan')):.1f} ms"
        f" (connect {fanout['connect_seconds']:.1f} s)" + (f"; errors: {fanout['errors']}" if fanout["errors"] else "")
    )


def run() -> list[Result]:
    fd_limit = fd_limit_raise()
    services = Services()
    tag = run_tag()
    try:
        chat_count = max(CHATS, math.ceil(IDLE / MEMBERS))
        world = world_seed(services, chat_count)
        accounts = [
            Account(member["user"], member["token"], (chat["id"],)) for chat in world for member in chat["members"]
        ][:IDLE]
        load = os.getloadavg()[0]
        print(
            f"  client and servers share this machine ({os.cpu_count()} cores, load average {load:.1f} at the start);"
            f" open-files limit {fd_limit}",
            flush=True,
        )
        if load > 1.0:
            print("  WARNING: other processes are using the CPU; the timings below are not reliable", flush=True)

        daphne = Daphne(chats_environment(services), free_port())
        try:
            ours = asyncio.run(fanout_and_throughput(daphne.url, world, daphne.process.pid, tag + "d"))
        finally:
            daphne.stop()
        print(_fanout_line("daphne", ours), flush=True)
        baseline = Baseline(world, redis_url(services))
        try:
            bare = asyncio.run(fanout_and_throughput(baseline.url, world, baseline.process.pid, tag + "b"))
        finally:
            baseline.stop()
        print(_fanout_line("baseline", bare), flush=True)
        floor_server = Floor(services, world)
        try:
            floor = asyncio.run(fanout_and_throughput(floor_server.url, world, floor_server.process.pid, tag + "f"))
        finally:
            floor_server.stop()
        print(_fanout_line("floor", floor), flush=True)
        for name, figures in (("daphne", ours), ("baseline", bare), ("floor", floor)):
            throughput = figures["throughput"]
            print(
                f"  {name:8} throughput: {throughput['rate']:.0f} deliveries/s;"
                f" server CPU {throughput['server_cpu']:.0%},"
                f" client CPU {throughput['client_cpu']:.0%}"
                + (" (client-bound: the figure is a lower bound)" if throughput["client_cpu"] > 0.9 else ""),
                flush=True,
            )

        daphne = Daphne(chats_environment(services), free_port())
        try:
            ours_idle = asyncio.run(idle_memory(daphne.url, accounts, daphne.process.pid))
        finally:
            daphne.stop()
        baseline = Baseline(world, redis_url(services))
        try:
            bare_idle = asyncio.run(idle_memory(baseline.url, accounts, baseline.process.pid))
        finally:
            baseline.stop()
        floor_server = Floor(services, world)
        try:
            floor_idle = asyncio.run(idle_memory(floor_server.url, accounts, floor_server.process.pid))
        finally:
            floor_server.stop()
        for name, figures in (("daphne", ours_idle), ("baseline", bare_idle), ("floor", floor_idle)):
            print(
                f"  {name:8} idle: {len(accounts)} sockets in {figures['connect_seconds']:.1f} s,"
                f" {figures['open']} open"
                f" after 7 s idle; RSS {figures['before_mb']:.0f} → {figures['after_mb']:.0f} MB,"
                f" {figures['per_connection_kb']:.1f} KB per socket",
                flush=True,
            )

        chaos = chats_chaos.run(services, world, tag + "c", chats_environment(services))
    finally:
        services.close()

    fanout_ok = all(
        figures["fanout"][key] == 0
        for figures in (ours, bare)
        for key in ("lost", "duplicates", "out_of_order", "closed")
    )
    if not fanout_ok:
        print("  FAILED: the fan-out lost, duplicated or reordered messages, or sockets closed (see above)", flush=True)
    p99 = percentile(ours["fanout"]["latencies"], 0.99) * 1000
    bare_p99 = percentile(bare["fanout"]["latencies"], 0.99) * 1000
    rate, bare_rate = ours["throughput"]["rate"], bare["throughput"]["rate"]
    floor_rate = floor["throughput"]["rate"]
    print(
        f"  daphne's own floor: a bare ASGI app under daphne delivers {floor_rate / bare_rate:.2f} x the baseline;"
        f" the portal delivers {rate / floor_rate:.2f} x that floor",
        flush=True,
    )
    memory, bare_memory = ours_idle["per_connection_kb"], bare_idle["per_connection_kb"]
    floor_memory = floor_idle["per_connection_kb"]
    print(
        f"  daphne's own floor: an idle socket of a bare ASGI app under daphne takes {floor_memory / bare_memory:.2f} x"
        f" the baseline's memory; the portal's {memory / floor_memory:.2f} x that floor",
        flush=True,
    )
    idle_ok = ours_idle["open"] == bare_idle["open"] == len(accounts)
    if not idle_ok:
        print("  FAILED: idle sockets were closed (see above)", flush=True)
    return [
        Result("chats.fanout_p99", p99, "ms", bare_p99, "ratio <= 3", fanout_ok and p99 <= 3 * bare_p99),
        Result("chats.throughput", rate, "deliveries/s", bare_rate, "ratio >= 0.3", rate >= 0.3 * bare_rate),
        Result("chats.daphne_floor", floor_rate, "deliveries/s", bare_rate, "reported", True),
        Result("chats.daphne_floor_memory", floor_memory, "KB", bare_memory, "reported", True),
        Result("chats.idle_memory", memory, "KB", bare_memory, "ratio <= 1.5", idle_ok and memory <= 1.5 * bare_memory),
        Result("chats.chaos_lost", chaos["value"], "messages", 0, "= 0", chaos["value"] == 0 and chaos["complete"]),
    ]
