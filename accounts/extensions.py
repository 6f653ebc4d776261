"""Where higher apps add to what accounts shows about a person, without
accounts importing them: each registers a provider in its AppConfig.ready()."""

from collections.abc import Callable
from typing import Any

SummaryProvider = Callable[..., dict[str, Any]]
_summary_providers: list[SummaryProvider] = []


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
