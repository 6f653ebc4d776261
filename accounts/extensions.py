"""Where higher apps add to what accounts shows about a person, exports for
them and does when their account is deleted, without accounts importing
them: each registers a provider or a hook in its AppConfig.ready()."""

from collections.abc import Callable
from typing import Any

SummaryProvider = Callable[..., dict[str, Any]]
PersonalDataProvider = Callable[..., dict[str, Any]]
AccountDeletionHook = Callable[..., None]
_summary_providers: list[SummaryProvider] = []
_personal_data_providers: list[PersonalDataProvider] = []
_account_deletion_hooks: list[AccountDeletionHook] = []


def user_summary_provider_register(provider: SummaryProvider) -> None:
    if provider not in _summary_providers:
        _summary_providers.append(provider)


def user_summary(*, user: Any) -> dict[str, Any]:
    """The memberships, guardianships, … of a person as the registered
    providers give them (keyword argument `user`)."""
    summary: dict[str, Any] = {"memberships": [], "guardianships": []}
    for provider in _summary_providers:
        summary.update(provider(user=user))
    return summary


def personal_data_provider_register(provider: PersonalDataProvider) -> None:
    """Add an app's part to the personal data export (152-FZ: a person may
    ask for everything kept about them).

    `provider(*, user)` returns a dict of top-level sections of the export,
    e.g. organisations gives {"memberships": [...], "guardianships": {...},
    "study_groups": [...], "safe_mode_changes": [...]}, and chats will give
    {"messages": [...]} (the messages the person wrote). Section names must
    not clash with another app's or with "account" and "api_tokens"; values
    must be plain JSON (str, int, bool, None, lists, dicts; datetimes as ISO
    8601 strings). Other people appear only as much as the person sees them
    in the app (an id and a display name, never a phone number)."""
    if provider not in _personal_data_providers:
        _personal_data_providers.append(provider)


def personal_data_sections(*, user: Any) -> dict[str, Any]:
    """The sections of every registered personal data provider. Raises
    ValueError when two providers give the same section."""
    sections: dict[str, Any] = {}
    for provider in _personal_data_providers:
        for section, value in provider(user=user).items():
            if section in sections:
                raise ValueError("Two personal data providers give the section " + section)
            sections[section] = value
    return sections


def account_deletion_hook_register(hook: AccountDeletionHook) -> None:
    """Let an app end what links a person to it when their account is
    deleted (accounts.services.account_delete).

    `hook(*, user)` runs inside the deletion's transaction, before the
    account is anonymised, and must go through the app's own services so
    that badges, audit and chat membership stay right (organisations ends
    memberships and guardianships). An exception rolls the whole deletion
    back. What the person made for others (chat messages) stays: it is shown
    under the neutral name of a deleted account."""
    if hook not in _account_deletion_hooks:
        _account_deletion_hooks.append(hook)


def account_deletion_hooks_run(*, user: Any) -> None:
    for hook in _account_deletion_hooks:
        hook(user=user)
