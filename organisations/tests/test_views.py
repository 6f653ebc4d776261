import pytest
from django.test import Client

from organisations import services
from organisations.models import OrganisationKind, Region, Role
from organisations.selectors import current_academic_year
from organisations.tests.factories import (
    make_member,
    make_organisation,
    make_school_with_class,
    make_study_group,
    make_user,
)

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_directory_needs_a_signed_in_user():
    response = Client().get("/directory/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/directory/")


def test_the_directory_page_lists_organisations_with_verified_badges():
    verified = make_organisation(short_name="МБОУ Гимназия № 2", is_verified=True)
    unverified = make_organisation(short_name="МБОУ СОШ № 7")
    teacher = make_member(organisation=unverified, role=Role.TEACHER)

    response = client_for(teacher).get("/directory/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Справочник организаций</h1>" in html
    assert '<label for="id_q">Название:</label>' in html
    assert '<label for="id_inn">ИНН:</label>' in html
    assert '<label for="id_region">Регион:</label>' in html
    assert '<label for="id_kind">Тип:</label>' in html
    assert '<option value="50">50 Московская область</option>' in html
    assert f'<a href="/directory/{verified.pk}/">МБОУ Гимназия № 2</a>' in html
    assert f'<a href="/directory/{unverified.pk}/">МБОУ СОШ № 7</a>' in html
    assert html.count('<span class="badge verified">Подтверждённая организация</span>') == 1
    assert "Найдено 2 организации." in html


def test_the_directory_page_searches_by_the_form():
    gymnasium = make_organisation(short_name="МБОУ Гимназия № 2", region=Region.objects.get(code="50"))
    make_organisation(short_name="МБОУ Гимназия № 5", region=Region.objects.get(code="66"))
    make_organisation(kind=OrganisationKind.KINDERGARTEN, short_name="МБДОУ Детский сад № 5")
    teacher = make_member(organisation=gymnasium, role=Role.TEACHER)

    response = client_for(teacher).get("/directory/", {"q": "гимназия", "region": "50", "kind": "school"})

    assert [organisation.pk for organisation in response.context["page"]] == [gymnasium.pk]
    assert "Найдена 1 организация." in response.content.decode()


def test_the_directory_page_shows_form_errors_and_no_results():
    teacher = make_member(organisation=make_organisation(), role=Role.TEACHER)

    response = client_for(teacher).get("/directory/", {"kind": "bank"})

    assert response.status_code == 200
    assert list(response.context["page"]) == []
    assert response.context["form"].errors["kind"]


def test_the_directory_page_is_paged_and_keeps_the_search():
    authority = make_organisation(kind=OrganisationKind.MUNICIPAL_AUTHORITY, short_name="Управление")
    for number in range(25):
        make_organisation(short_name=f"Школа {number:02d}", parent=authority)
    official = make_member(organisation=authority, role=Role.OFFICIAL)
    client = client_for(official)

    first = client.get("/directory/", {"q": "школа"})
    second = client.get("/directory/", {"q": "школа", "page": 2})

    assert len(first.context["page"]) == 20
    assert '<a href="?q=%D1%88%D0%BA%D0%BE%D0%BB%D0%B0&amp;page=2" rel="next">' in first.content.decode()
    assert [organisation.short_name for organisation in second.context["page"]] == [
        f"Школа {number:02d}" for number in range(20, 25)
    ]
    assert "Страница 2 из 2" in second.content.decode()


def test_a_student_finds_only_their_school_on_the_directory_page():
    world = make_school_with_class(students=1)
    make_organisation()

    response = client_for(world.student).get("/directory/")

    assert [organisation.pk for organisation in response.context["page"]] == [world.school.pk]


def test_the_organisation_page_for_its_member():
    authority = make_organisation(
        kind=OrganisationKind.MUNICIPAL_AUTHORITY, short_name="Управление образования", is_verified=True
    )
    world = make_school_with_class(
        name="7Б",
        students=1,
        parent=authority,
        short_name="МБОУ СОШ № 1",
        full_name="Средняя общеобразовательная школа № 1",
        inn="5024000023",
        address="г. Красногорск, ул. Школьная, д. 1",
        phone="+7 495 000-00-01",
        email="school1@example.org",
        is_verified=True,
    )
    kindergarten = make_organisation(
        kind=OrganisationKind.KINDERGARTEN, short_name="Детский сад № 5", parent=world.school
    )
    make_study_group(organisation=world.school, name="5А", students=1)
    year = current_academic_year()

    response = client_for(world.teacher).get(f"/directory/{world.school.pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>МБОУ СОШ № 1</h1>" in html
    assert "Школа" in html
    assert "Средняя общеобразовательная школа № 1" in html
    assert "<dd>5024000023</dd>" in html
    assert "<dd>Московская область</dd>" in html
    assert "г. Красногорск, ул. Школьная, д. 1" in html
    assert '<a href="tel:+74950000001">+7 495 000-00-01</a>' in html
    assert '<a href="mailto:school1@example.org">school1@example.org</a>' in html
    assert f'<a href="/directory/{authority.pk}/">Управление образования</a>' in html
    assert f'<a href="/directory/{kindergarten.pk}/">Детский сад № 5</a>' in html
    assert f"Ваши классы в {year}/{year + 1} учебном году" in html
    assert [group.name for group in response.context["study_groups"]] == ["7Б"]
    assert '<span class="badge verified">Подтверждённая организация</span>' in html


def test_the_organisation_page_for_an_outsider_has_no_classes():
    world = make_school_with_class(students=1)
    outsider = make_member(organisation=make_organisation(), role=Role.TEACHER)

    response = client_for(outsider).get(f"/directory/{world.school.pk}/")

    assert response.status_code == 200
    assert response.context["is_member"] is False
    assert "Ваши классы" not in response.content.decode()


def test_the_organisation_page_of_a_student_names_but_does_not_link_the_parent():
    authority = make_organisation(kind=OrganisationKind.MUNICIPAL_AUTHORITY, short_name="Управление")
    world = make_school_with_class(students=1, parent=authority)

    response = client_for(world.student).get(f"/directory/{world.school.pk}/")

    html = response.content.decode()
    assert "<dd>Управление</dd>" in html
    assert f'href="/directory/{authority.pk}/"' not in html


def test_an_invisible_or_unknown_organisation_page_is_404():
    world = make_school_with_class(students=1)
    other = make_organisation()
    client = client_for(world.student)

    assert client.get(f"/directory/{other.pk}/").status_code == 404
    assert client.get("/directory/1000000000/").status_code == 404


def test_a_person_without_any_role_sees_an_empty_directory():
    make_organisation()

    response = client_for(make_user()).get("/directory/")

    assert response.status_code == 200
    assert list(response.context["page"]) == []
    assert "Ничего не найдено." in response.content.decode()


def test_the_homeroom_teacher_is_shown_with_the_verified_cap():
    world = make_school_with_class(students=1)
    membership = world.teacher.memberships.get(role=Role.TEACHER)
    services.verification_request(user=world.teacher, membership=membership)
    services.verification_decide(actor=world.administrator, membership=membership, approve=True)

    response = client_for(world.student).get(f"/directory/{world.school.pk}/")

    assert 'class="verified"' in response.content.decode()
