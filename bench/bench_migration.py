"""Import of old-messenger exports (issue 6): the time to import N chats and
10 N chats (30 members and 100 messages each by default), measured in the
same run on the same database; the figure is their ratio, which must stay
within 12 (linear: 10).

Default N = 100, so the larger run is the issue's 1,000 chats × 30 members ×
100 messages. BENCH_MIGRATION_CHATS sets N (e.g. 10 for a quick look),
BENCH_MIGRATION_MEMBERS and BENCH_MIGRATION_MESSAGES the sizes of a chat.
Each size runs in its own child process against a fresh organisation; the
accounts (70 % of the people; the rest are invited by SMS) are created
before the clock starts."""

import json
import os
import sys
import time

from bench.core import BENCH_DIR, Result, Services, bench_environment, child_json

GOAL_RATIO = 12


def _sizes() -> tuple[int, int, int]:
    return (
        int(os.environ.get("BENCH_MIGRATION_CHATS", "100")),
        int(os.environ.get("BENCH_MIGRATION_MEMBERS", "30")),
        int(os.environ.get("BENCH_MIGRATION_MESSAGES", "100")),
    )


def _environment() -> dict[str, str]:
    environment = bench_environment()
    if "DATABASE_URL" not in environment:
        # A database of its own: other benchmarks may run meanwhile.
        environment["SQLITE_PATH"] = str(BENCH_DIR / "bench-migration.sqlite3")
    environment["EMBEDDED_REDIS_SOCKET_TEST"] = str(BENCH_DIR / "redis-migration.sock")
    environment["LEGACY_API_URL"] = ""
    return environment


def run() -> list[Result]:
    chats, members, messages = _sizes()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    environment = _environment()
    database = BENCH_DIR / "bench-migration.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        if "DATABASE_URL" not in environment and os.path.exists(str(database) + suffix):
            os.remove(str(database) + suffix)
    services = Services(environment)
    try:
        run_id = int(time.time()) % 1000
        # Phone numbers of the two runs must not overlap: offsets far apart.
        small = child_json("bench.bench_migration", environment, chats, members, messages, run_id * 10_000)
        large = child_json("bench.bench_migration", environment, 10 * chats, members, messages, 5_000_000 + run_id)
    finally:
        services.close()
    print(
        f"  {chats} chats: {small['seconds']:.2f} s ({small['messages']} messages); "
        f"{10 * chats} chats: {large['seconds']:.2f} s ({large['messages']} messages)",
        flush=True,
    )
    ratio = large["seconds"] / small["seconds"]
    return [
        Result(
            "migration.import_scaling",
            large["seconds"],
            "s",
            small["seconds"],
            f"ratio <= {GOAL_RATIO}",
            ratio <= GOAL_RATIO,
        )
    ]


def _child_main(chats: int, members: int, messages: int, offset: int) -> None:
    """In the child process: set up a school and its accounts, then time
    parsing and importing the export (what `import_legacy_chats` does)."""
    import django

    django.setup()
    from chats.models import Message
    from migration.export import export_parse
    from migration.sample import sample_accounts_create, sample_export
    from migration.services import export_import
    from organisations.services import organisation_create, regions_ensure
    from organisations.tests.factories import next_inn

    regions_ensure()
    inn = str(int(next_inn()) + offset % 10_000_000).zfill(10)[:10]
    organisation = organisation_create(
        actor=None, kind="school", short_name=f"Бенч-школа {offset}", full_name="Школа для замеров", inn=inn
    )
    data = sample_export(inn=inn, chats=chats, members=members, messages=messages, seed=offset, phone_offset=offset)
    sample_accounts_create(export=data, organisation=organisation)
    raw = json.dumps(data, ensure_ascii=False).encode()
    before = Message.objects.count()
    started = time.perf_counter()
    results = export_import(export=export_parse(raw))
    seconds = time.perf_counter() - started
    migrated = sum(1 for result in results if result.status == "migrated")
    if migrated != chats:
        raise RuntimeError(f"{migrated} of {chats} chats migrated")
    print(json.dumps({"seconds": seconds, "messages": Message.objects.count() - before}))


if __name__ == "__main__":
    _child_main(*(int(value) for value in sys.argv[1:5]))
