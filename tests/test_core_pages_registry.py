"""The core pages' registry: its world fills, and every page opens (200,
after redirects) for its person with a plain client."""

import pytest
from django.test import Client

from tests.core_pages import CORE_PAGES, core_world

pytestmark = pytest.mark.django_db


def test_every_core_page_opens_for_its_person():
    world = core_world()
    opened = {}
    for core in CORE_PAGES:
        client = Client()
        user = core.user(world)
        if user is not None:
            client.force_login(user)
        response = client.get(core.path(world), follow=True)
        opened[core.name] = (response.status_code, b"<main" in response.content)

    assert opened == {core.name: (200, True) for core in CORE_PAGES}
    assert len({core.name for core in CORE_PAGES}) == len(CORE_PAGES)
