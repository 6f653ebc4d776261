import datetime

import pytest

from accounts.models import User
from organisations import selectors, services
from organisations.models import OrganisationKind, Region, Role
from organisations.selectors import contact_is_allowed, current_academic_year
from organisations.tests.factories import (
    make_member,
    make_organisation,
    make_school_with_class,
    make_study_group,
    make_user,
)

pytestmark = pytest.mark.django_db


def test_current_academic_year_starts_on_the_first_of_september():
    assert current_academic_year(datetime.date(2025, 8, 31)) == 2024
    assert current_academic_year(datetime.date(2025, 9, 1)) == 2025
    assert current_academic_year(datetime.date(2026, 1, 15)) == 2025


# --- The contact rule --------------------------------------------------------------


@pytest.fixture
def school():
    """A child in 7Б with a classmate, a pupil of 7А, the staff, a guardian,
    a teacher of another school and a stranger."""
    world = make_school_with_class(name="7Б", students=2)
    other_class = make_study_group(organisation=world.school, name="7А", students=1)
    other_school = make_school_with_class(students=0)
    return {
        "world": world,
        "child": world.students[0],
        "classmate": world.students[1],
        "other_class_pupil": other_class.students.get(),
        "homeroom_teacher": world.teacher,
        "school_teacher": make_member(organisation=world.school, role=Role.TEACHER),
        "school_administrator": world.administrator,
        "guardian": world.parents[0],
        "classmate_parent": world.parents[1],
        "other_school_teacher": other_school.teacher,
        "stranger": make_user(),
    }


@pytest.mark.parametrize(
    ("actor", "allowed"),
    [
        ("classmate", True),
        ("other_class_pupil", False),
        ("homeroom_teacher", True),
        ("school_teacher", True),
        ("school_administrator", True),
        ("guardian", True),
        ("classmate_parent", False),
        ("other_school_teacher", False),
        ("stranger", False),
    ],
)
def test_contact_rule_of_a_child_in_safe_mode(school, actor, allowed):
    assert school["child"].is_safe_mode is True

    assert contact_is_allowed(actor=school[actor], child=school["child"]) is allowed


def test_last_years_classmate_is_no_longer_a_contact():
    year = current_academic_year()
    last_year = make_school_with_class(students=2, academic_year=year - 1)
    child, former_classmate = last_year.students

    assert contact_is_allowed(actor=former_classmate, child=child) is False


def test_this_years_classmate_after_advancing_is_a_contact():
    year = current_academic_year()
    world = make_school_with_class(students=2, academic_year=year - 1)
    services.academic_year_advance(actor=None, organisation=world.school, from_year=year - 1)

    assert contact_is_allowed(actor=world.students[1], child=world.students[0]) is True


def test_a_child_out_of_safe_mode_may_be_reached_by_anyone(school):
    child = services.safe_mode_update(actor=school["guardian"], student=school["child"], is_safe_mode=False)

    assert contact_is_allowed(actor=school["stranger"], child=child) is True


def test_an_ended_guardianship_or_membership_is_no_longer_a_contact(school):
    child = school["child"]
    (link,) = child.guardians_links.all()
    services.guardianship_end(actor=None, guardianship=link)
    teacher_membership = school["school_teacher"].memberships.get()
    services.membership_end(actor=None, membership=teacher_membership)

    assert contact_is_allowed(actor=school["guardian"], child=child) is False
    assert contact_is_allowed(actor=school["school_teacher"], child=child) is False


def test_a_blocked_actor_is_no_contact(school):
    blocked = school["classmate"]
    User.objects.filter(pk=blocked.pk).update(is_active=False)
    blocked.refresh_from_db()

    assert contact_is_allowed(actor=blocked, child=school["child"]) is False


def test_contacts_filter_agrees_with_contact_is_allowed_for_everyone(school):
    child = school["child"]
    for key, actor in school.items():
        if key == "world":
            continue
        found = User.objects.filter(pk=child.pk).filter(selectors.contacts_filter(actor=actor)).exists()
        assert found is contact_is_allowed(actor=actor, child=child), key


# --- Profiles ----------------------------------------------------------------------


def test_a_profile_is_visible_to_people_of_the_same_organisation_only(school):
    teacher = school["homeroom_teacher"]

    assert selectors.profile_is_visible(viewer=school["classmate_parent"], owner=teacher) is True
    assert selectors.profile_is_visible(viewer=school["other_school_teacher"], owner=teacher) is False
    assert selectors.profile_is_visible(viewer=school["stranger"], owner=teacher) is False


def test_a_childs_profile_is_visible_to_its_contacts_only(school):
    child = school["child"]

    assert selectors.profile_is_visible(viewer=school["guardian"], owner=child) is True
    assert selectors.profile_is_visible(viewer=school["classmate"], owner=child) is True
    assert selectors.profile_is_visible(viewer=school["classmate_parent"], owner=child) is False
    assert selectors.profile_is_visible(viewer=school["other_class_pupil"], owner=child) is False


# --- Directory ---------------------------------------------------------------------


def test_a_student_sees_only_their_own_school_in_the_directory():
    world = make_school_with_class(students=1)
    make_organisation()

    assert list(selectors.organisations_visible_to(user=world.student)) == [world.school]
    assert list(selectors.directory_search(user=world.student)) == [world.school]


def test_an_adult_with_a_role_sees_the_whole_directory_and_a_guest_nothing():
    world = make_school_with_class(students=1)
    other = make_organisation()

    assert set(selectors.organisations_visible_to(user=world.parent)) == {world.school, other}
    assert list(selectors.organisations_visible_to(user=make_user())) == []


def test_directory_search_ignores_the_case_of_cyrillic_names():
    member = make_member(organisation=make_organisation(short_name="МБОУ СОШ № 1"), role=Role.TEACHER)
    gymnasium = make_organisation(short_name="МБОУ Гимназия № 2", full_name="Гимназия № 2 города Красногорска")

    assert list(selectors.directory_search(user=member, query="гимназия")) == [gymnasium]
    assert list(selectors.directory_search(user=member, query="ГИМНАЗИЯ красногорска")) == [gymnasium]
    assert list(selectors.directory_search(user=member, query="гимназия (№ 2)")) == []
    assert list(selectors.directory_search(user=member, query="гимназия № 2.")) == []


def test_directory_search_filters_by_inn_region_municipality_and_kind():
    region_50 = Region.objects.get(code="50")
    region_66 = Region.objects.get(code="66")
    school = make_organisation(region=region_50, municipality="городской округ Красногорск", inn="5024000023")
    kindergarten = make_organisation(
        kind=OrganisationKind.KINDERGARTEN, region=region_50, municipality="городской округ Химки"
    )
    far_school = make_organisation(region=region_66, municipality="город Екатеринбург")
    member = make_member(organisation=school, role=Role.TEACHER)

    assert list(selectors.directory_search(user=member, inn="5024000023")) == [school]
    assert set(selectors.directory_search(user=member, region_code="50")) == {school, kindergarten}
    assert list(selectors.directory_search(user=member, municipality="красногорск")) == [school]
    assert list(selectors.directory_search(user=member, kind=OrganisationKind.KINDERGARTEN)) == [kindergarten]
    assert list(selectors.directory_search(user=member, region_code="66", kind=OrganisationKind.SCHOOL)) == [far_school]


def test_study_groups_visible_to_staff_students_and_parents():
    world = make_school_with_class(name="7Б", students=1)
    other_group = make_study_group(organisation=world.school, name="5А", students=1)

    assert set(selectors.study_groups_visible_to(user=world.teacher, organisation=world.school)) == {
        world.group,
        other_group,
    }
    assert list(selectors.study_groups_visible_to(user=world.student, organisation=world.school)) == [world.group]
    assert list(selectors.study_groups_visible_to(user=world.parent, organisation=world.school)) == [world.group]
    assert list(selectors.study_groups_visible_to(user=make_user(), organisation=world.school)) == []


def test_study_group_list_counts_all_students_even_for_a_student():
    world = make_school_with_class(students=3)

    (group,) = selectors.study_group_list(user=world.student, organisation=world.school)

    assert group.students_count == 3


# --- People search -----------------------------------------------------------------


def test_people_search_finds_colleagues_by_name_ignoring_case():
    world = make_school_with_class(students=0)
    colleague = make_member(
        organisation=world.school, role=Role.TEACHER, user=make_user(first_name="Анна", last_name="Кузнецова")
    )
    make_member(organisation=make_organisation(), user=make_user(first_name="Анна", last_name="Кузнецова"))

    assert list(selectors.people_search(user=world.teacher, query="анна кузн")) == [colleague]
    assert list(selectors.people_search(user=world.teacher, query="КУЗНЕЦОВА")) == [colleague]


def test_people_search_by_exact_phone_number():
    world = make_school_with_class(students=0)
    colleague = make_member(organisation=world.school, role=Role.TEACHER)
    local_format = "8 " + str(colleague.phone)[2:]

    assert list(selectors.people_search(user=world.teacher, query=str(colleague.phone))) == [colleague]
    assert list(selectors.people_search(user=world.teacher, query=local_format)) == [colleague]
    assert list(selectors.people_search(user=world.teacher, query=str(colleague.phone)[:-1])) == []


def test_people_search_hides_children_from_everyone_but_their_contacts():
    world = make_school_with_class(students=2)
    child = world.students[0]
    # A name no adult of the school has: the factories' names repeat.
    User.objects.filter(pk=child.pk).update(first_name="Евпраксия")
    child.refresh_from_db()
    phone = str(child.phone)

    assert list(selectors.people_search(user=world.parents[1], query=phone)) == []
    assert list(selectors.people_search(user=world.parents[1], query=child.first_name)) == []
    assert list(selectors.people_search(user=world.parent, query=phone)) == [child]
    assert list(selectors.people_search(user=world.students[1], query=phone)) == [child]
    assert list(selectors.people_search(user=world.teacher, query=phone)) == [child]


def test_people_search_stays_within_shared_organisations_and_skips_oneself():
    world = make_school_with_class(students=0)
    outsider = make_member(organisation=make_organisation(), role=Role.TEACHER)

    assert list(selectors.people_search(user=world.teacher, query=str(outsider.phone))) == []
    assert list(selectors.people_search(user=world.teacher, query=str(world.teacher.phone))) == []
    assert list(selectors.people_search(user=make_user(), query=str(world.teacher.phone))) == []


def test_person_shared_memberships_lists_only_shared_organisations():
    world = make_school_with_class(students=1)
    second_school = make_organisation()
    services.membership_create(actor=None, user=world.teacher, organisation=second_school, role=Role.TEACHER)

    shared = selectors.person_shared_memberships(viewer=world.parent, person=world.teacher)
    own = selectors.person_shared_memberships(viewer=world.teacher, person=world.teacher)

    assert [(membership.organisation_id, membership.role) for membership in shared] == [(world.school.pk, Role.TEACHER)]
    assert {membership.organisation_id for membership in own} == {world.school.pk, second_school.pk}


def test_user_study_groups_are_ones_own_classes():
    world = make_school_with_class(name="7Б", students=1)
    other_group = make_study_group(organisation=world.school, name="5А", students=1)
    year = current_academic_year()

    assert list(selectors.user_study_groups(user=world.student, organisation=world.school, academic_year=year)) == [
        world.group
    ]
    assert list(selectors.user_study_groups(user=world.teacher, organisation=world.school, academic_year=year)) == [
        world.group
    ]
    assert list(selectors.user_study_groups(user=world.parent, organisation=world.school, academic_year=year)) == [
        world.group
    ]
    assert set(
        selectors.user_study_groups(user=world.administrator, organisation=world.school, academic_year=year)
    ) == {world.group, other_group}
