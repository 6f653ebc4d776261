"""The organisation page's channels come from providers that higher apps
register (organisations never imports chats)."""

import pytest

from organisations import extensions
from organisations.extensions import OrganisationChannel


@pytest.fixture
def no_providers(monkeypatch: pytest.MonkeyPatch) -> list:
    providers: list = []
    monkeypatch.setattr(extensions, "_channels_providers", providers)
    return providers


def test_without_a_provider_an_organisation_has_no_channels(no_providers):
    assert extensions.organisation_channels(user=object(), organisation=object()) == []


def test_providers_are_asked_once_each_in_the_order_they_registered(no_providers):
    asked: list[tuple[str, object, object]] = []
    user, organisation = object(), object()

    def first(*, user, organisation):
        asked.append(("first", user, organisation))
        return [OrganisationChannel(title="Новости", is_verified=True, subscribers=120, url="/channels/1/")]

    def second(*, user, organisation):
        asked.append(("second", user, organisation))
        return [OrganisationChannel(title="Закрытый", is_verified=False, subscribers=3, url=None)]

    extensions.organisation_channels_provider_register(first)
    extensions.organisation_channels_provider_register(second)
    extensions.organisation_channels_provider_register(first)

    found = extensions.organisation_channels(user=user, organisation=organisation)

    assert [channel.title for channel in found] == ["Новости", "Закрытый"]
    assert asked == [("first", user, organisation), ("second", user, organisation)]
