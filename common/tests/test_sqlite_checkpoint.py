"""WAL checkpoints of the embedded SQLite database from a thread of the
server process (common/sqlite_checkpoint.py)."""

import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from django.db import connection, connections

from common import sqlite_checkpoint
from common.sqlite_checkpoint import Checkpointer, checkpointer_start, checkpointer_stop

ROWS = 200


def database_with_log(path: Path) -> sqlite3.Connection:
    """A WAL database whose commits never checkpoint, with ROWS rows that so
    far are only in the log."""
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)")
    writer.executemany("INSERT INTO note (body) VALUES (?)", [("запись",)] * ROWS)
    writer.commit()
    return writer


def rows_in_the_database_file(path: Path, tmp_path: Path) -> int:
    """What the database file itself holds, without its log."""
    copy = tmp_path / "file-only.sqlite3"
    shutil.copyfile(path, copy)
    reader = sqlite3.connect(copy)
    try:
        return int(reader.execute("SELECT count(*) FROM note").fetchone()[0])
    except sqlite3.OperationalError:  # not even the table yet
        return 0
    finally:
        reader.close()


def test_a_checkpoint_copies_committed_rows_into_the_database_file(tmp_path):
    path = tmp_path / "portal.sqlite3"
    writer = database_with_log(path)
    assert rows_in_the_database_file(path, tmp_path) == 0

    checkpointer = Checkpointer(str(path))
    busy, log_pages, copied = checkpointer.checkpoint()
    checkpointer.stop()

    assert (busy, copied) == (0, log_pages)
    assert rows_in_the_database_file(path, tmp_path) == ROWS
    writer.close()


def test_the_thread_checkpoints_without_any_commit_doing_it(tmp_path):
    path = tmp_path / "portal.sqlite3"
    writer = database_with_log(path)
    checkpointer = Checkpointer(str(path), interval=0.05)
    checkpointer.start()
    try:
        deadline = time.monotonic() + 30
        while rows_in_the_database_file(path, tmp_path) < ROWS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rows_in_the_database_file(path, tmp_path) == ROWS
    finally:
        checkpointer.stop()
        writer.close()


@pytest.mark.django_db
def test_a_server_process_on_sqlite_leaves_checkpoints_to_the_thread():
    started = checkpointer_start()
    try:
        if connection.vendor != "sqlite":
            assert started is None  # PostgreSQL: nothing to do
            return
        assert started is not None and started.thread is not None and started.thread.is_alive()
        # The connections of the process no longer checkpoint in their commits,
        # the one already open included, and new ones as they are made.
        with connection.cursor() as cursor:
            assert cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        fresh = connections.create_connection("default")
        try:
            with fresh.cursor() as cursor:
                assert cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        finally:
            fresh.close()
        assert sqlite_checkpoint.checkpointer_start() is started  # once per process
    finally:
        checkpointer_stop()
