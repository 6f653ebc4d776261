"""Where people find the adoption pages: officials get "Внедрение" in the
menu of every page, everyone else does not; the profile page leads to the
account merge and the course."""

import pytest

from adoption.tests.factories import make_country, make_people
from organisations.models import Role

pytestmark = pytest.mark.django_db


def test_officials_have_the_adoption_figures_in_the_menu_and_others_do_not(client):
    country = make_country()
    teacher = make_people(country.school, Role.TEACHER, 1)[0]

    client.force_login(country.municipal_official)
    official_page = client.get("/profile/").content.decode()
    client.force_login(teacher)
    teacher_page = client.get("/profile/").content.decode()

    assert '<a href="/adoption/">Внедрение</a>' in official_page
    assert "/adoption/" not in teacher_page


def test_the_profile_leads_to_the_merge_and_the_course(client):
    country = make_country()
    parent = make_people(country.school, Role.PARENT, 1)[0]
    client.force_login(parent)

    page = client.get("/profile/").content.decode()

    assert '<a href="/profile/merge/">Объединить два аккаунта</a>' in page
    assert '<a href="/course/">Пройти короткий курс</a>' in page
