"""WAL checkpoints of the embedded SQLite database, off the socket path.

In WAL mode SQLite copies the log back into the database file (a
checkpoint) in the commit that takes the log past 1,000 pages, and that
commit waits for the copy and its fsyncs. In a daphne process every chat
message is a commit made in the process's one database thread, so each
checkpoint held up a send, and every frame queued behind it, for about
10 ms: it was the chat benchmark's p99 (bench/README.md).

So a daphne process on SQLite (`checkpointer_start`, from portal.asgi)
turns the automatic checkpoints of its own connections off and checkpoints
from a thread of its own instead, on a connection of its own, every
CHECKPOINT_SECONDS: PASSIVE checkpoints, which wait for no reader or
writer, with the GIL released while SQLite works. Other processes (Celery,
management commands) keep SQLite's automatic checkpoints. PostgreSQL is
not concerned.
"""

import logging
import sqlite3
import threading
import time
from typing import Any

from django.db import connections
from django.db.backends.signals import connection_created

logger = logging.getLogger(__name__)

# Often enough to keep up with a busy process: a checkpoint that has copied
# everything lets the next commit start the log again from its beginning.
# Once a second, under the chat benchmark's load the log grew to 100 MB and
# every read and write looked through it.
CHECKPOINT_SECONDS = 0.1


class Checkpointer:
    """Checkpoints of one SQLite database file from a thread of its own."""

    def __init__(self, path: str, *, interval: float = CHECKPOINT_SECONDS) -> None:
        self.path = path
        self.interval = interval
        self.thread: threading.Thread | None = None
        self.stopped = threading.Event()
        self.connection: sqlite3.Connection | None = None

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (1 if it could not finish, pages in the
        log, pages copied back)."""
        if self.connection is None:
            self.connection = sqlite3.connect(self.path, timeout=5, check_same_thread=False)
        row = self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.checkpoint()
            except sqlite3.Error as error:
                logger.warning("SQLite checkpoint failed: %s", error)
                time.sleep(self.interval)


def _autocheckpoint_off(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite" and connection.alias == "default":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint=0")


_checkpointer: Checkpointer | None = None


def checkpointer_start() -> Checkpointer | None:
    """In a server process on a SQLite database file: checkpoint from a
    thread (see the module's text). None, doing nothing, on PostgreSQL or an
    in-memory database."""
    global _checkpointer
    connection = connections["default"]
    path = str(connection.settings_dict["NAME"])
    if connection.vendor != "sqlite" or connection.is_in_memory_db():  # type: ignore[attr-defined]
        return None
    if _checkpointer is None:
        connection_created.connect(_autocheckpoint_off, dispatch_uid="parta-sqlite-autocheckpoint-off")
        if connection.connection is not None:
            _autocheckpoint_off(None, connection)
        _checkpointer = Checkpointer(path)
        _checkpointer.start()
    return _checkpointer


def checkpointer_stop() -> None:
    """Back to SQLite's automatic checkpoints for new connections (tests)."""
    global _checkpointer
    connection_created.disconnect(dispatch_uid="parta-sqlite-autocheckpoint-off")
    if _checkpointer is not None:
        _checkpointer.stop()
        _checkpointer = None
