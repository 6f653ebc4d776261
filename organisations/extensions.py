"""How higher apps keep in step with the directory without organisations
importing them: a hook registered in their AppConfig.ready() is called once
per committed transaction with the ids of the organisations whose
memberships, classes or guardianships changed in it."""

from collections.abc import Callable, Iterable

from django.db import connection, transaction

DirectoryHook = Callable[[set[int]], None]
_hooks: list[DirectoryHook] = []


def directory_hook_register(hook: DirectoryHook) -> None:
    if hook not in _hooks:
        _hooks.append(hook)


def directory_changed(*, organisation_ids: Iterable[int]) -> None:
    """Note a change; the hooks run after the transaction commits. Every call
    registers a callback, but the first one to run takes every pending id and
    the rest find nothing left, so a bulk import of 5,000 rows syncs once. A
    rolled-back transaction drops its callbacks; ids it left pending are
    synced (harmlessly, syncing is idempotent) with the next commit."""
    pending: set[int] = connection.__dict__.setdefault("_parta_directory_changes", set())
    pending.update(organisation_ids)
    transaction.on_commit(_run_hooks)


def _run_hooks() -> None:
    pending: set[int] = connection.__dict__.setdefault("_parta_directory_changes", set())
    if not pending:
        return
    organisation_ids = set(pending)
    pending.clear()
    for hook in _hooks:
        hook(organisation_ids)
