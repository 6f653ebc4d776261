"""What every benchmark shares: the result record of SPEC §10, the servers
it measures against, and small statistics."""

import dataclasses
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# BENCH_DIR moves the run's files (databases, sockets, logs, results.json)
# elsewhere, so that two runs on one machine do not share them.
BENCH_DIR = Path(os.environ.get("BENCH_DIR") or ROOT / "var" / "bench")


@dataclasses.dataclass
class Result:
    name: str
    value: float
    unit: str
    baseline: float
    goal: str
    met: bool

    @property
    def ratio(self) -> float:
        if not self.baseline:
            # A figure whose baseline is zero (e.g. messages lost): equal when
            # both are zero, otherwise infinitely worse.
            return 1.0 if not self.value else float("inf")
        return round(self.value / self.baseline, 3)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "value": round(self.value, 4),
            "unit": self.unit,
            "baseline": round(self.baseline, 4),
            "ratio": self.ratio if math.isfinite(self.ratio) else None,  # JSON has no Infinity
            "goal": self.goal,
            "met": self.met,
        }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def bench_environment() -> dict[str, str]:
    """Child processes of a benchmark: the bench settings, its own SQLite file
    (or BENCH_DATABASE_URL) and its own embedded Redis (or REDIS_URL)."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    environment = dict(os.environ)
    environment["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    environment["PYTHONUNBUFFERED"] = "1"
    environment["SMS_BACKEND"] = "file"
    environment["SMS_OUTBOX"] = str(BENCH_DIR / "sms-outbox.jsonl")
    environment.pop("DATABASE_URL", None)
    if os.environ.get("BENCH_DATABASE_URL"):
        environment["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
    else:
        environment["SQLITE_PATH"] = str(BENCH_DIR / "bench.sqlite3")
    if not os.environ.get("REDIS_URL"):
        environment["EMBEDDED_REDIS_SOCKET_TEST"] = str(BENCH_DIR / "redis.sock")
    return environment


def child_json(module: str, environment: dict[str, str], *arguments: object) -> dict:
    """Run a benchmark's measuring child, `python -m <module> <arguments>`,
    and return the JSON object it prints as its last line."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *(str(argument) for argument in arguments)],
        cwd=ROOT,
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


class Services:
    """The embedded Redis (unless REDIS_URL) and a migrated database, for
    `environment` (a benchmark's own database and socket) or the default one."""

    def __init__(self, environment: dict[str, str] | None = None) -> None:
        self.environment = environment if environment is not None else bench_environment()
        self.redis = None
        if not os.environ.get("REDIS_URL"):
            sys.path.insert(0, str(ROOT))
            from common import embedded_redis

            self.redis = embedded_redis.start(self.environment["EMBEDDED_REDIS_SOCKET_TEST"])
        try:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                cwd=ROOT,
                env=self.environment,
                check=True,
            )
        except BaseException:
            # The caller gets no object to close: the Redis stops here.
            self.close()
            raise

    def close(self) -> None:
        if self.redis is not None:
            process_stop(self.redis, timeout=10)


class Daphne:
    def __init__(self, environment: dict[str, str], port: int, application: str = "portal.asgi:application") -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(BENCH_DIR / f"daphne-{port}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), application],
            cwd=ROOT,
            env=environment,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait()

    def _wait(self) -> None:
        import urllib.request

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("daphne did not start")

    def stop(self) -> None:
        process_stop(self.process)
        self.log.close()


def process_stop(process: subprocess.Popen, timeout: float = 15) -> None:
    """Terminate a child the benchmark started; kill it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def fd_limit_raise() -> int:
    """Raise this process's open-files limit to the hard limit (children
    inherit it), for benchmarks that hold thousands of sockets; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux /proc, no dependencies)."""
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
