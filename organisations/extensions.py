"""How higher apps keep in step with the directory, and add to its pages,
without organisations importing them:

- a directory hook registered in their AppConfig.ready() is called once per
  committed transaction with the ids of the organisations whose memberships,
  classes or guardianships changed in it;
- a channels provider gives the broadcast channels the organisation's page
  lists (chats fills it in)."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class OrganisationChannel:
    """A broadcast channel as the organisation's page lists it."""

    title: str
    is_verified: bool
    subscribers: int
    # The channel's page, or None when the viewer may not open it.
    url: str | None


ChannelsProvider = Callable[..., list[OrganisationChannel]]
_channels_providers: list[ChannelsProvider] = []


def organisation_channels_provider_register(provider: ChannelsProvider) -> None:
    """`provider(*, user, organisation)` returns the organisation's channels
    the page shows to `user` (a provider decides what the person may see)."""
    if provider not in _channels_providers:
        _channels_providers.append(provider)


def organisation_channels(*, user: Any, organisation: Any) -> list[OrganisationChannel]:
    """The channels every registered provider gives, in their order (none
    when no app provides channels)."""
    channels: list[OrganisationChannel] = []
    for provider in _channels_providers:
        channels.extend(provider(user=user, organisation=organisation))
    return channels


# --- Bots: which accounts are bots, and whose ------------------------------------
#
# A bot (the bots app) has an account of its own, so that it is a chat member
# like anyone. The contact rule (selectors.contact_is_allowed) treats such an
# account by the bot's organisation; the bots app tells which accounts are
# bots through this resolver.


@dataclass(frozen=True)
class BotOwner:
    """The owner of a bot account: an organisation, or None for the platform."""

    organisation_id: int | None


BotOwnerResolver = Callable[[int], BotOwner | None]
_bot_owner_resolvers: list[BotOwnerResolver] = []


def bot_owner_resolver_register(resolver: BotOwnerResolver) -> None:
    """`resolver(user_id)` returns the BotOwner of a bot account, None for a person."""
    if resolver not in _bot_owner_resolvers:
        _bot_owner_resolvers.append(resolver)


def bot_owner(user_id: int) -> BotOwner | None:
    for resolver in _bot_owner_resolvers:
        owner = resolver(user_id)
        if owner is not None:
            return owner
    return None
