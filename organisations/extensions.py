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
    """Note a change; the hooks run after the outermost transaction commits,
    once for everything it changed (a bulk import syncs once, not per row)."""
    pending: set[int] | None = getattr(connection, "_parta_directory_changes", None)
    if pending is not None:
        pending.update(organisation_ids)
        return
    connection._parta_directory_changes = set(organisation_ids)  # type: ignore[attr-defined]
    # Outside a transaction this runs at once; inside, after the commit.
    transaction.on_commit(_run_hooks)


def _run_hooks() -> None:
    pending: set[int] = getattr(connection, "_parta_directory_changes", None) or set()
    connection._parta_directory_changes = None  # type: ignore[attr-defined]
    for hook in _hooks:
        hook(set(pending))
