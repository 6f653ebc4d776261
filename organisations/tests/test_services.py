from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import User
from common.errors import ApplicationError, NotFound, PermissionDenied
from common.models import AuditEvent
from organisations import extensions, selectors, services
from organisations.models import (
    Guardianship,
    GuardianshipCode,
    GuardianshipSource,
    Membership,
    OrganisationKind,
    Role,
    StudyGroup,
    StudyGroupTeacher,
    VerificationStatus,
)
from organisations.tests.factories import (
    make_member,
    make_organisation,
    make_school_with_class,
    make_study_group,
    make_user,
    teacher_membership,
)

pytestmark = pytest.mark.django_db


def student_ids(group: StudyGroup) -> list[int]:
    return sorted(group.students.values_list("pk", flat=True))


# --- Organisations -------------------------------------------------------------


def test_organisation_create_sets_the_path_and_the_time_zone_of_its_region():
    authority = make_organisation(kind=OrganisationKind.REGIONAL_AUTHORITY)
    school = make_organisation(parent=authority)

    assert authority.path == f"/{authority.pk}/"
    assert school.path == f"/{authority.pk}/{school.pk}/"
    assert school.time_zone == "Europe/Moscow"
    assert AuditEvent.objects.filter(action="organisation.create", object_id=str(school.pk)).count() == 1


def test_organisation_update_moves_the_whole_subtree():
    old_authority = make_organisation(kind=OrganisationKind.MUNICIPAL_AUTHORITY)
    new_authority = make_organisation(kind=OrganisationKind.MUNICIPAL_AUTHORITY)
    school = make_organisation(kind=OrganisationKind.SCHOOL, parent=old_authority)
    kindergarten = make_organisation(kind=OrganisationKind.KINDERGARTEN, parent=school)

    services.organisation_update(actor=None, organisation=school, parent=new_authority)

    kindergarten.refresh_from_db()
    assert school.path == f"/{new_authority.pk}/{school.pk}/"
    assert kindergarten.path == f"/{new_authority.pk}/{school.pk}/{kindergarten.pk}/"


def test_organisation_cannot_be_moved_inside_itself():
    authority = make_organisation(kind=OrganisationKind.MUNICIPAL_AUTHORITY)
    school = make_organisation(parent=authority)

    with pytest.raises(ApplicationError) as error:
        services.organisation_update(actor=None, organisation=authority, parent=school)

    assert error.value.code == "invalid_parent"
    authority.refresh_from_db()
    assert (authority.parent_id, authority.path) == (None, f"/{authority.pk}/")


# --- Memberships -----------------------------------------------------------------


def test_a_student_membership_switches_safe_mode_on_once():
    school = make_organisation()
    child = make_user()

    membership = services.membership_create(actor=None, user=child, organisation=school, role=Role.STUDENT)
    again = services.membership_create(actor=None, user=child, organisation=school, role=Role.STUDENT)

    child.refresh_from_db()
    assert (child.is_safe_mode, child.is_hidden_from_search) == (True, True)
    assert again.pk == membership.pk
    assert Membership.objects.filter(user=child).count() == 1
    assert AuditEvent.objects.filter(action="membership.create", object_id=str(membership.pk)).count() == 1


def test_an_adult_membership_leaves_safe_mode_off():
    teacher = make_member(organisation=make_organisation(), role=Role.TEACHER)

    teacher.refresh_from_db()
    assert (teacher.is_safe_mode, teacher.is_hidden_from_search) == (False, False)


def test_an_administrator_gets_admin_access_until_the_membership_ends():
    school = make_organisation()
    administrator = make_member(organisation=school, role=Role.ADMINISTRATOR)
    assert User.objects.get(pk=administrator.pk).is_staff is True

    membership = Membership.objects.get(user=administrator)
    services.membership_end(actor=None, membership=membership)

    assert User.objects.get(pk=administrator.pk).is_staff is False


# --- Verification ----------------------------------------------------------------


def test_verification_request_approve_and_end_turn_the_badge_on_and_off():
    world = make_school_with_class(students=0)
    membership = teacher_membership(user=world.teacher, organisation=world.school)

    services.verification_request(user=world.teacher, membership=membership)
    membership.refresh_from_db()
    assert membership.verification_status == VerificationStatus.REQUESTED
    assert User.objects.get(pk=world.teacher.pk).is_verified_educator is False

    services.verification_decide(actor=world.administrator, membership=membership, approve=True)
    membership.refresh_from_db()
    assert membership.verification_status == VerificationStatus.VERIFIED
    assert membership.verified_by_id == world.administrator.pk
    assert User.objects.get(pk=world.teacher.pk).is_verified_educator is True

    services.membership_end(actor=world.administrator, membership=membership)
    assert User.objects.get(pk=world.teacher.pk).is_verified_educator is False
    assert list(
        AuditEvent.objects.filter(object_id=str(membership.pk), object_type="organisations.membership")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["membership.create", "verification.request", "verification.approve", "membership.end"]


def test_the_badge_stays_while_another_verified_membership_lasts():
    first = make_school_with_class(students=0)
    second = make_organisation()
    services.membership_create(actor=None, user=first.teacher, organisation=second, role=Role.TEACHER)
    second_administrator = make_member(organisation=second, role=Role.ADMINISTRATOR)
    for organisation, administrator in ((first.school, first.administrator), (second, second_administrator)):
        membership = teacher_membership(user=first.teacher, organisation=organisation)
        services.verification_request(user=first.teacher, membership=membership)
        services.verification_decide(actor=administrator, membership=membership, approve=True)

    services.membership_end(actor=None, membership=teacher_membership(user=first.teacher, organisation=first.school))

    assert User.objects.get(pk=first.teacher.pk).is_verified_educator is True


def test_a_lookalike_name_is_flagged_while_the_badge_lasts():
    world = make_school_with_class(students=0)
    User.objects.filter(pk=world.teacher.pk).update(first_name="Анна", last_name="Кузнецова")
    world.teacher.refresh_from_db()
    world.teacher.save()
    # Latin "A", "a" and "e": on screen the same name.
    impostor = make_user(first_name="Aннa", last_name="Кузнeцова")
    membership = teacher_membership(user=world.teacher, organisation=world.school)
    services.verification_request(user=world.teacher, membership=membership)

    services.verification_decide(actor=world.administrator, membership=membership, approve=True)
    assert User.objects.get(pk=impostor.pk).is_name_flagged is True

    services.membership_end(actor=None, membership=membership)
    assert User.objects.get(pk=impostor.pk).is_name_flagged is False


def test_only_an_administrator_of_the_organisation_may_verify():
    world = make_school_with_class(students=0)
    other_school = make_school_with_class(students=0)
    membership = teacher_membership(user=world.teacher, organisation=world.school)
    services.verification_request(user=world.teacher, membership=membership)
    events_before = AuditEvent.objects.count()

    for actor in (world.teacher, other_school.administrator):
        with pytest.raises(PermissionDenied):
            services.verification_decide(actor=actor, membership=membership, approve=True)

    membership.refresh_from_db()
    assert membership.verification_status == VerificationStatus.REQUESTED
    assert User.objects.get(pk=world.teacher.pk).is_verified_educator is False
    assert AuditEvent.objects.count() == events_before


def test_verification_request_refuses_other_people_and_unverified_roles():
    world = make_school_with_class(students=1)
    membership = teacher_membership(user=world.teacher, organisation=world.school)
    student_membership = Membership.objects.get(user=world.student, role=Role.STUDENT)
    events_before = AuditEvent.objects.count()

    with pytest.raises(NotFound):
        services.verification_request(user=world.administrator, membership=membership)
    with pytest.raises(ApplicationError) as error:
        services.verification_request(user=world.student, membership=student_membership)

    assert error.value.code == "not_verifiable"
    assert Membership.objects.filter(verification_status=VerificationStatus.REQUESTED).count() == 0
    assert AuditEvent.objects.count() == events_before


# --- Administration scope ----------------------------------------------------------


def test_an_authority_administrator_administers_the_subtree_but_not_a_sibling():
    region = make_organisation(kind=OrganisationKind.REGIONAL_AUTHORITY)
    municipality = make_organisation(kind=OrganisationKind.MUNICIPAL_AUTHORITY, parent=region)
    sibling_municipality = make_organisation(kind=OrganisationKind.MUNICIPAL_AUTHORITY, parent=region)
    school = make_organisation(parent=municipality)
    sibling_school = make_organisation(parent=sibling_municipality)
    administrator = make_member(organisation=municipality, role=Role.ADMINISTRATOR)

    assert selectors.user_administers(user=administrator, organisation=municipality) is True
    assert selectors.user_administers(user=administrator, organisation=school) is True
    assert selectors.user_administers(user=administrator, organisation=sibling_municipality) is False
    assert selectors.user_administers(user=administrator, organisation=sibling_school) is False
    assert selectors.user_administers(user=administrator, organisation=region) is False


def test_a_school_administrator_administers_only_the_school():
    school = make_organisation()
    kindergarten_below = make_organisation(kind=OrganisationKind.KINDERGARTEN, parent=school)
    administrator = make_member(organisation=school, role=Role.ADMINISTRATOR)

    assert list(selectors.administered_organisations(user=administrator)) == [school]
    assert selectors.user_administers(user=administrator, organisation=kindergarten_below) is False


def test_an_authority_administrator_verifies_a_teacher_of_a_school_below():
    municipality = make_organisation(kind=OrganisationKind.MUNICIPAL_AUTHORITY)
    world = make_school_with_class(students=0, parent=municipality)
    official = make_member(organisation=municipality, role=Role.ADMINISTRATOR)
    membership = teacher_membership(user=world.teacher, organisation=world.school)
    services.verification_request(user=world.teacher, membership=membership)

    services.verification_decide(actor=official, membership=membership, approve=True)

    assert User.objects.get(pk=world.teacher.pk).is_verified_educator is True


# --- Study groups ------------------------------------------------------------------


def test_study_group_create_makes_the_homeroom_teacher_a_teacher():
    school = make_organisation()
    teacher = make_user()

    group = services.study_group_create(
        actor=None, organisation=school, name=" 7б ", academic_year=2025, homeroom_teacher=teacher
    )
    again = services.study_group_create(actor=None, organisation=school, name="7Б", academic_year=2025)

    assert (group.name, group.grade, again.pk) == ("7Б", 7, group.pk)
    assert list(StudyGroupTeacher.objects.filter(group=group).values_list("teacher_id", flat=True)) == [teacher.pk]
    assert Membership.objects.active().filter(user=teacher, organisation=school, role=Role.TEACHER).count() == 1


def test_academic_year_advance_moves_7b_to_8b_with_its_students():
    world = make_school_with_class(name="7Б", students=3, academic_year=2025)
    graduates = make_study_group(organisation=world.school, name="11А", academic_year=2025, students=1)

    created = services.academic_year_advance(actor=world.administrator, organisation=world.school, from_year=2025)

    (next_group,) = created
    world.group.refresh_from_db()
    graduates.refresh_from_db()
    assert (next_group.name, next_group.grade, next_group.academic_year) == ("8Б", 8, 2026)
    assert next_group.homeroom_teacher_id == world.teacher.pk
    assert student_ids(next_group) == sorted(student.pk for student in world.students)
    assert student_ids(world.group) == sorted(student.pk for student in world.students)
    assert world.group.next_group_id == next_group.pk
    assert graduates.next_group_id is None
    assert StudyGroup.objects.filter(organisation=world.school, academic_year=2026).count() == 1


def test_academic_year_advance_is_idempotent():
    world = make_school_with_class(students=2, academic_year=2025)
    services.academic_year_advance(actor=None, organisation=world.school, from_year=2025)
    events_before = AuditEvent.objects.count()

    again = services.academic_year_advance(actor=None, organisation=world.school, from_year=2025)

    assert again == []
    assert StudyGroup.objects.filter(academic_year=2026).count() == 1
    assert AuditEvent.objects.count() == events_before


def test_academic_year_advance_leaves_behind_people_who_left():
    world = make_school_with_class(students=2, academic_year=2025)
    leaver = world.students[1]
    services.membership_end(actor=None, membership=Membership.objects.get(user=leaver, role=Role.STUDENT))
    services.membership_end(actor=None, membership=teacher_membership(user=world.teacher, organisation=world.school))

    (next_group,) = services.academic_year_advance(actor=None, organisation=world.school, from_year=2025)

    assert student_ids(next_group) == [world.students[0].pk]
    assert next_group.homeroom_teacher_id is None
    assert next_group.teachers.count() == 0
    assert Membership.objects.active().filter(user=world.teacher).count() == 0


def make_subject_teacher(world, subject: str = "Математика") -> User:
    teacher = make_user()
    services.study_group_teacher_add(actor=None, group=world.group, teacher=teacher, subject=subject)
    return teacher


def group_events(group: StudyGroup, action: str) -> list[tuple[int | None, dict]]:
    return list(
        AuditEvent.objects.filter(action=action, object_id=str(group.pk))
        .order_by("id")
        .values_list("actor_id", "changes")
    )


def test_study_group_teacher_remove_takes_the_teacher_off_the_class_only():
    world = make_school_with_class(students=1)
    teacher = make_subject_teacher(world)

    removed = services.study_group_teacher_remove(actor=world.administrator, group=world.group, teacher=teacher)
    removed_again = services.study_group_teacher_remove(actor=world.administrator, group=world.group, teacher=teacher)

    assert (removed, removed_again) == (True, False)
    assert list(world.group.teachers.values_list("pk", flat=True)) == [world.teacher.pk]
    assert teacher_membership(user=teacher, organisation=world.school).ended_at is None
    assert group_events(world.group, "study_group.teacher_remove") == [
        (world.administrator.pk, {"teacher": teacher.pk})
    ]


def test_the_homeroom_teacher_is_not_taken_off_their_class():
    world = make_school_with_class(students=1)

    with pytest.raises(ApplicationError) as refusal:
        services.study_group_teacher_remove(actor=world.administrator, group=world.group, teacher=world.teacher)

    assert refusal.value.code == "teacher_is_homeroom"
    assert list(world.group.teachers.values_list("pk", flat=True)) == [world.teacher.pk]
    assert group_events(world.group, "study_group.teacher_remove") == []


def test_study_group_rename_stores_capitals_and_is_audited_once():
    world = make_school_with_class(name="7Б", students=1)

    renamed = services.study_group_rename(actor=world.administrator, group=world.group, name=" 7в ")
    again = services.study_group_rename(actor=world.administrator, group=world.group, name="7В")

    world.group.refresh_from_db()
    assert (renamed.name, again.name, world.group.name) == ("7В", "7В", "7В")
    assert world.group.grade == 7
    assert group_events(world.group, "study_group.rename") == [(world.administrator.pk, {"name": ["7Б", "7В"]})]


def test_study_group_rename_refuses_an_empty_a_long_or_a_taken_name():
    world = make_school_with_class(name="7Б", students=0)
    make_study_group(organisation=world.school, name="7В", academic_year=world.group.academic_year)
    make_study_group(organisation=world.school, name="7Г", academic_year=world.group.academic_year - 1)
    refusals = []

    for name in ("  ", "7" * 41, "7в"):
        with pytest.raises(ApplicationError) as refusal:
            services.study_group_rename(actor=world.administrator, group=world.group, name=name)
        refusals.append((refusal.value.code, refusal.value.extra))
    last_years_name = services.study_group_rename(actor=world.administrator, group=world.group, name="7Г")

    assert refusals == [
        ("invalid", {"field": "name"}),
        ("invalid", {"field": "name"}),
        ("study_group_exists", {"field": "name"}),
    ]
    assert last_years_name.name == "7Г"
    assert [changes for _actor, changes in group_events(world.group, "study_group.rename")] == [{"name": ["7Б", "7Г"]}]


def test_only_administrators_of_the_organisation_or_above_change_a_class():
    authority = make_organisation(kind=OrganisationKind.MUNICIPAL_AUTHORITY)
    world = make_school_with_class(name="7Б", students=1, parent=authority)
    teacher = make_subject_teacher(world)
    authority_administrator = make_member(organisation=authority, role=Role.ADMINISTRATOR)
    other_administrator = make_member(organisation=make_organisation(), role=Role.ADMINISTRATOR)
    events_before = AuditEvent.objects.count()

    for actor in (world.teacher, teacher, world.student, other_administrator, make_user()):
        with pytest.raises(PermissionDenied):
            services.study_group_teacher_remove(actor=actor, group=world.group, teacher=teacher)
        with pytest.raises(PermissionDenied):
            services.study_group_rename(actor=actor, group=world.group, name="7В")

    world.group.refresh_from_db()
    assert world.group.name == "7Б"
    assert sorted(world.group.teachers.values_list("pk", flat=True)) == sorted([world.teacher.pk, teacher.pk])
    assert AuditEvent.objects.count() == events_before
    services.study_group_rename(actor=authority_administrator, group=world.group, name="7В")
    assert services.study_group_teacher_remove(actor=authority_administrator, group=world.group, teacher=teacher)


def test_removing_a_teacher_and_renaming_a_class_announce_a_directory_change(
    monkeypatch, django_capture_on_commit_callbacks
):
    world = make_school_with_class(students=1)
    teacher = make_subject_teacher(world)
    announced: list[set[int]] = []
    monkeypatch.setattr(extensions, "_hooks", [announced.append])
    monkeypatch.setitem(connection.__dict__, "_parta_directory_changes", set())

    with django_capture_on_commit_callbacks(execute=True):
        services.study_group_teacher_remove(actor=world.administrator, group=world.group, teacher=teacher)
    with django_capture_on_commit_callbacks(execute=True):
        services.study_group_rename(actor=world.administrator, group=world.group, name="7В")
    with django_capture_on_commit_callbacks(execute=True):
        services.study_group_rename(actor=world.administrator, group=world.group, name="7В")

    assert announced == [{world.school.pk}, {world.school.pk}]


# --- Guardianship ------------------------------------------------------------------


def test_guardianship_link_makes_the_parent_a_parent_member():
    world = make_school_with_class(students=1)
    parent = make_user()

    link = services.guardianship_link(
        actor=world.administrator, parent=parent, student=world.student, organisation=world.school
    )
    again = services.guardianship_link(
        actor=world.administrator, parent=parent, student=world.student, organisation=world.school
    )

    assert again.pk == link.pk
    assert link.source == GuardianshipSource.SCHOOL
    assert Membership.objects.active().filter(user=parent, organisation=world.school, role=Role.PARENT).count() == 1
    assert AuditEvent.objects.filter(action="guardianship.link", object_id=str(link.pk)).count() == 1


def test_guardianship_link_refuses_a_child_of_another_school():
    world = make_school_with_class(students=1)
    other_school = make_organisation()
    parent = make_user()

    with pytest.raises(ApplicationError) as error:
        services.guardianship_link(actor=None, parent=parent, student=world.student, organisation=other_school)

    assert error.value.code == "not_a_student"
    assert Guardianship.objects.filter(parent=parent).count() == 0
    assert Membership.objects.filter(user=parent).count() == 0


def test_a_guardianship_code_links_a_parent_once():
    world = make_school_with_class(students=1)
    parent = make_user()
    second_parent = make_user()
    code = services.guardianship_code_create(actor=world.teacher, student=world.student, organisation=world.school)

    link = services.guardianship_code_claim(parent=parent, code=code.lower().replace("-", " "))

    assert (link.parent_id, link.student_id, link.organisation_id) == (parent.pk, world.student.pk, world.school.pk)
    assert link.source == GuardianshipSource.CODE
    record = GuardianshipCode.objects.get()
    assert (record.used_by_id, record.used_at is not None) == (parent.pk, True)
    assert code.replace("-", "") not in record.code_hash

    with pytest.raises(ApplicationError) as error:
        services.guardianship_code_claim(parent=second_parent, code=code)

    assert (error.value.code, error.value.extra) == ("code_invalid", {"field": "code"})
    assert Guardianship.objects.filter(parent=second_parent).count() == 0
    assert Membership.objects.filter(user=second_parent).count() == 0


def test_an_expired_guardianship_code_links_no_one():
    world = make_school_with_class(students=1)
    parent = make_user()
    code = services.guardianship_code_create(
        actor=world.administrator, student=world.student, organisation=world.school
    )
    GuardianshipCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    with pytest.raises(ApplicationError) as error:
        services.guardianship_code_claim(parent=parent, code=code)

    assert error.value.code == "code_invalid"
    assert Guardianship.objects.filter(parent=parent).count() == 0
    assert GuardianshipCode.objects.get().used_at is None


def test_a_wrong_guardianship_code_links_no_one():
    world = make_school_with_class(students=1)
    services.guardianship_code_create(actor=world.administrator, student=world.student, organisation=world.school)
    parent = make_user()

    with pytest.raises(ApplicationError) as error:
        services.guardianship_code_claim(parent=parent, code="AAAAA-AAAAA")

    assert error.value.code == "code_invalid"
    assert Guardianship.objects.filter(parent=parent).count() == 0


def test_a_student_cannot_claim_their_own_code():
    world = make_school_with_class(students=1)
    code = services.guardianship_code_create(
        actor=world.administrator, student=world.student, organisation=world.school
    )

    with pytest.raises(ApplicationError) as error:
        services.guardianship_code_claim(parent=world.student, code=code)

    assert error.value.code == "invalid_guardian"
    assert GuardianshipCode.objects.get().used_at is None


def test_only_the_school_and_the_students_teachers_issue_codes():
    world = make_school_with_class(students=1)
    other_teacher = make_member(organisation=world.school, role=Role.TEACHER)
    other_administrator = make_school_with_class(students=0).administrator
    events_before = AuditEvent.objects.count()

    for actor in (other_teacher, world.parent, world.student, other_administrator):
        with pytest.raises(PermissionDenied):
            services.guardianship_code_create(actor=actor, student=world.student, organisation=world.school)

    assert GuardianshipCode.objects.count() == 0
    assert AuditEvent.objects.count() == events_before


# --- Safe mode ---------------------------------------------------------------------


def test_a_guardian_changes_safe_mode_and_it_is_logged():
    world = make_school_with_class(students=1)

    student = services.safe_mode_update(actor=world.parent, student=world.student, is_hidden_from_search=False)

    assert (student.is_safe_mode, student.is_hidden_from_search) == (True, False)
    event = AuditEvent.objects.get(action="safe_mode.change")
    assert (event.actor_id, event.object_id, event.organisation_id) == (
        world.parent.pk,
        str(world.student.pk),
        world.school.pk,
    )
    assert event.changes == {"is_hidden_from_search": [True, False]}


def test_safe_mode_update_without_a_change_logs_nothing():
    world = make_school_with_class(students=1)

    services.safe_mode_update(actor=world.administrator, student=world.student, is_safe_mode=True)

    assert AuditEvent.objects.filter(action="safe_mode.change").count() == 0


def test_safe_mode_refuses_strangers_and_staff_who_do_not_teach_the_child():
    world = make_school_with_class(students=2)
    colleague = make_member(organisation=world.school, role=Role.TEACHER)
    classmate_parent = world.parents[1]

    with pytest.raises(NotFound):
        services.safe_mode_update(actor=make_user(), student=world.student, is_safe_mode=False)
    with pytest.raises(NotFound):
        services.safe_mode_update(actor=classmate_parent, student=world.student, is_safe_mode=False)
    with pytest.raises(PermissionDenied):
        services.safe_mode_update(actor=colleague, student=world.student, is_safe_mode=False)
    with pytest.raises(PermissionDenied):
        services.safe_mode_update(actor=world.student, student=world.student, is_safe_mode=False)

    assert User.objects.get(pk=world.student.pk).is_safe_mode is True
    assert AuditEvent.objects.filter(action="safe_mode.change").count() == 0
