"""The admin as the organisations' administrators use it: each sees and
changes only their organisations (an authority: its subtree), every change
goes through the services and lands in the audit log."""

import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.db.models import Q
from django.test import Client

from accounts.models import User
from common.models import AuditEvent
from organisations import services
from organisations.models import (
    Guardianship,
    GuardianshipCode,
    Membership,
    Organisation,
    OrganisationKind,
    Region,
    Role,
    StudyGroup,
    StudyGroupStudent,
    StudyGroupTeacher,
    VerificationStatus,
)
from organisations.selectors import current_academic_year
from organisations.tests.factories import make_member, make_organisation, make_parent, make_study_group, make_user

pytestmark = pytest.mark.django_db


@dataclass
class Tree:
    authority: Organisation
    school: Organisation
    sibling: Organisation
    other_authority: Organisation
    other_school: Organisation
    school_admin: User
    authority_admin: User
    other_admin: User
    teacher: User
    student: User
    other_student: User


@pytest.fixture
def tree() -> Tree:
    moscow_oblast = Region.objects.get(code="50")
    moscow = Region.objects.get(code="77")
    authority = make_organisation(
        kind=OrganisationKind.REGIONAL_AUTHORITY, short_name="Минобр МО", region=moscow_oblast
    )
    school = make_organisation(parent=authority, short_name="Школа № 1", region=moscow_oblast)
    sibling = make_organisation(parent=authority, short_name="Гимназия № 2", region=moscow_oblast)
    other_authority = make_organisation(kind=OrganisationKind.REGIONAL_AUTHORITY, short_name="ДОгМ", region=moscow)
    other_school = make_organisation(parent=other_authority, short_name="Школа № 1500", region=moscow)
    student = make_user(first_name="Маша", last_name="Иванова")
    other_student = make_user(first_name="Коля", last_name="Сидоров")
    group = make_study_group(organisation=school, name="7Б")
    services.study_group_student_add(actor=None, group=group, student=student)
    other_group = make_study_group(organisation=other_school, name="7Б")
    services.study_group_student_add(actor=None, group=other_group, student=other_student)
    return Tree(
        authority=authority,
        school=school,
        sibling=sibling,
        other_authority=other_authority,
        other_school=other_school,
        school_admin=make_member(organisation=school, role=Role.ADMINISTRATOR),
        authority_admin=make_member(organisation=authority, role=Role.ADMINISTRATOR),
        other_admin=make_member(organisation=other_school, role=Role.ADMINISTRATOR),
        teacher=make_member(organisation=school, role=Role.TEACHER),
        student=student,
        other_student=other_student,
    )


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def changelist_pks(client: Client, url: str) -> set[int]:
    response = client.get(url)
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].queryset}


def action(client: Client, url: str, name: str, pks: list[int], **extra: Any) -> Any:
    return client.post(url, {"action": name, "index": 0, "_selected_action": pks, **extra})


# --- Scope ------------------------------------------------------------------------------------------------------


def test_school_administrator_sees_their_school_only(tree: Tree) -> None:
    client = signed_in(tree.school_admin)

    assert changelist_pks(client, "/admin/organisations/organisation/") == {tree.school.pk}
    assert changelist_pks(client, "/admin/organisations/membership/") == set(
        Membership.objects.filter(organisation=tree.school).values_list("pk", flat=True)
    )
    assert changelist_pks(client, "/admin/organisations/studygroup/") == set(
        StudyGroup.objects.filter(organisation=tree.school).values_list("pk", flat=True)
    )
    assert changelist_pks(client, "/admin/accounts/user/") == {tree.school_admin.pk, tree.teacher.pk, tree.student.pk}


def test_another_schools_pages_are_not_found(tree: Tree) -> None:
    client = signed_in(tree.school_admin)
    other_membership = Membership.objects.get(user=tree.other_admin)
    other_group = StudyGroup.objects.get(organisation=tree.other_school)

    for url in (
        f"/admin/organisations/organisation/{tree.other_school.pk}/change/",
        f"/admin/organisations/organisation/{tree.sibling.pk}/change/",
        f"/admin/organisations/organisation/{tree.authority.pk}/change/",
        f"/admin/organisations/organisation/{tree.other_school.pk}/history/",
        f"/admin/organisations/organisation/{tree.other_school.pk}/import/",
        f"/admin/organisations/membership/{other_membership.pk}/change/",
        f"/admin/organisations/studygroup/{other_group.pk}/change/",
        f"/admin/accounts/user/{tree.other_student.pk}/change/",
    ):
        assert client.get(url).status_code == 404, url


def test_school_administrator_cannot_pick_another_school(tree: Tree) -> None:
    client = signed_in(tree.school_admin)
    page = client.get("/admin/organisations/membership/add/")
    users_before, memberships_before, events_before = (
        User.objects.count(),
        Membership.objects.count(),
        AuditEvent.objects.count(),
    )

    response = client.post(
        "/admin/organisations/membership/add/",
        {
            "phone": "+7 916 555-00-01",
            "last_name": "Новикова",
            "first_name": "Анна",
            "organisation": tree.other_school.pk,
            "role": Role.TEACHER,
        },
    )

    assert list(page.context["adminform"].form.fields["organisation"].queryset) == [tree.school]
    assert "Школа № 1500" not in page.content.decode()
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["organisation"]
    assert (User.objects.count(), Membership.objects.count(), AuditEvent.objects.count()) == (
        users_before,
        memberships_before,
        events_before,
    )


def test_school_administrator_cannot_put_another_schools_student_into_a_class(tree: Tree) -> None:
    client = signed_in(tree.school_admin)
    group = StudyGroup.objects.get(organisation=tree.school)
    links_before = StudyGroupStudent.objects.count()

    response = client.post(
        f"/admin/organisations/studygroup/{group.pk}/change/",
        {
            "name": "7Б",
            "grade": "7",
            "academic_year": str(group.academic_year),
            "homeroom_teacher": "",
            **inline_management("studygroupteacher_set", total=0),
            **inline_management("studygroupstudent_set", total=2, initial=1),
            "studygroupstudent_set-0-id": StudyGroupStudent.objects.get(group=group).pk,
            "studygroupstudent_set-0-group": group.pk,
            "studygroupstudent_set-0-student": tree.student.pk,
            "studygroupstudent_set-1-group": group.pk,
            "studygroupstudent_set-1-student": tree.other_student.pk,
        },
    )

    assert response.status_code == 200
    assert StudyGroupStudent.objects.count() == links_before
    assert "Сидоров" not in response.content.decode()


def test_authority_administrator_sees_the_schools_below_it_only(tree: Tree) -> None:
    client = signed_in(tree.authority_admin)

    assert changelist_pks(client, "/admin/organisations/organisation/") == {
        tree.authority.pk,
        tree.school.pk,
        tree.sibling.pk,
    }
    assert client.get(f"/admin/organisations/organisation/{tree.school.pk}/change/").status_code == 200
    assert client.get(f"/admin/organisations/organisation/{tree.other_school.pk}/change/").status_code == 404
    assert changelist_pks(client, "/admin/organisations/studygroup/") == set(
        StudyGroup.objects.filter(organisation=tree.school).values_list("pk", flat=True)
    )


def test_teacher_without_an_administrator_role_cannot_open_the_admin(tree: Tree) -> None:
    client = signed_in(tree.teacher)

    index = client.get("/admin/")
    login = client.get("/admin/login/?next=/admin/")
    memberships = client.get("/admin/organisations/membership/")

    assert (index.status_code, index["Location"]) == (302, "/admin/login/?next=/admin/")
    assert login.status_code == 403
    assert memberships.status_code == 302


def test_admin_sign_in_is_the_portals_phone_sign_in() -> None:
    response = Client().get("/admin/login/")

    assert (response.status_code, response["Location"]) == (302, "/login/?next=/admin/")


def test_signed_in_administrator_is_sent_on_from_the_admin_login(tree: Tree) -> None:
    response = signed_in(tree.school_admin).get("/admin/login/?next=/admin/organisations/")

    assert (response.status_code, response["Location"]) == (302, "/admin/organisations/")


def test_ended_administrator_loses_the_admin(tree: Tree) -> None:
    membership = Membership.objects.get(user=tree.school_admin, role=Role.ADMINISTRATOR)
    services.membership_end(actor=None, membership=membership)

    assert signed_in(tree.school_admin).get("/admin/").status_code == 302


# --- Organisations ----------------------------------------------------------------------------------------------


def admin_form_data(response: Any) -> dict[str, Any]:
    """The POST data of an admin change form as it was rendered."""
    form = response.context["adminform"].form
    data: dict[str, Any] = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or name == "logo":
            continue
        data[name] = "on" if value is True else ("" if value is False else value)
    for name in [name for name, value in data.items() if value == ""]:
        del data[name]
    return data


def test_school_administrator_edits_the_school_through_the_service(tree: Tree) -> None:
    client = signed_in(tree.school_admin)
    url = f"/admin/organisations/organisation/{tree.school.pk}/change/"
    data = admin_form_data(client.get(url))
    # The kind, the parent and the verified flag are not the school's to
    # change: posted anyway, they are ignored.
    data.update(
        short_name="Школа № 1 им. Пушкина", kind=OrganisationKind.REGIONAL_AUTHORITY, parent="", is_verified="on"
    )

    response = client.post(url, data)

    tree.school.refresh_from_db()
    assert response.status_code == 302
    assert (tree.school.short_name, tree.school.kind, tree.school.parent_id, tree.school.is_verified) == (
        "Школа № 1 им. Пушкина",
        OrganisationKind.SCHOOL,
        tree.authority.pk,
        False,
    )
    event = AuditEvent.objects.get(action="organisation.update")
    assert (event.actor, event.organisation_id, event.changes) == (
        tree.school_admin,
        tree.school.pk,
        {"short_name": ["Школа № 1", "Школа № 1 им. Пушкина"]},
    )


def test_authority_administrator_verifies_a_school_below_it(tree: Tree) -> None:
    client = signed_in(tree.authority_admin)
    url = f"/admin/organisations/organisation/{tree.school.pk}/change/"
    data = admin_form_data(client.get(url))
    data.update(is_verified="on")

    response = client.post(url, data)

    tree.school.refresh_from_db()
    assert response.status_code == 302
    assert tree.school.is_verified is True
    assert AuditEvent.objects.get(action="organisation.update").changes == {"is_verified": [False, True]}


def test_only_an_authority_administrator_adds_organisations_and_only_below_it(tree: Tree) -> None:
    organisations_before = Organisation.objects.count()

    school_admin_page = signed_in(tree.school_admin).get("/admin/organisations/organisation/add/")
    client = signed_in(tree.authority_admin)
    page = client.get("/admin/organisations/organisation/add/")
    refused = client.post(
        "/admin/organisations/organisation/add/",
        {
            "kind": OrganisationKind.SCHOOL,
            "full_name": "Школа № 7",
            "short_name": "Школа № 7",
            "parent": tree.other_authority.pk,
        },
    )
    count_after_refusal = Organisation.objects.count()
    created = client.post(
        "/admin/organisations/organisation/add/",
        {
            "kind": OrganisationKind.SCHOOL,
            "full_name": "Школа № 7",
            "short_name": "Школа № 7",
            "parent": tree.authority.pk,
        },
    )

    assert school_admin_page.status_code == 403
    assert list(page.context["adminform"].form.fields["parent"].queryset) == [tree.authority]
    assert (refused.status_code, count_after_refusal) == (200, organisations_before)
    assert created.status_code == 302
    school = Organisation.objects.get(short_name="Школа № 7")
    assert (school.parent, school.path) == (tree.authority, f"{tree.authority.path}{school.pk}/")
    assert (
        AuditEvent.objects.filter(
            action="organisation.create", object_id=str(school.pk), actor=tree.authority_admin
        ).count()
        == 1
    )


def test_school_change_page_links_to_the_import(tree: Tree) -> None:
    response = signed_in(tree.school_admin).get(f"/admin/organisations/organisation/{tree.school.pk}/change/")

    assert f'href="/admin/organisations/organisation/{tree.school.pk}/import/"' in response.content.decode()


# --- Memberships ------------------------------------------------------------------------------------------------


def test_membership_added_by_phone_creates_the_account(tree: Tree) -> None:
    client = signed_in(tree.school_admin)

    response = client.post(
        "/admin/organisations/membership/add/",
        {
            "phone": "8 (916) 555-00-02",
            "last_name": "Новикова",
            "first_name": "Анна",
            "middle_name": "Сергеевна",
            "organisation": tree.school.pk,
            "role": Role.TEACHER,
            "position": "учитель математики",
        },
    )

    assert response.status_code == 302
    user = User.objects.get(phone="+79165550002")
    assert (user.last_name, user.first_name, user.middle_name) == ("Новикова", "Анна", "Сергеевна")
    membership = Membership.objects.get(user=user)
    assert (membership.organisation, membership.role, membership.position) == (
        tree.school,
        Role.TEACHER,
        "учитель математики",
    )
    assert list(
        AuditEvent.objects.filter(object_id__in=[str(user.pk), str(membership.pk)])
        .order_by("id")
        .values_list("action", "actor_id", "organisation_id")
    ) == [
        ("user.create", tree.school_admin.pk, tree.school.pk),
        ("membership.create", tree.school_admin.pk, tree.school.pk),
    ]


def test_membership_added_by_phone_keeps_an_existing_accounts_name(tree: Tree) -> None:
    existing = make_user(phone="+79165550003", first_name="Ольга", last_name="Смирнова")

    signed_in(tree.school_admin).post(
        "/admin/organisations/membership/add/",
        {
            "phone": "+7 916 555 00 03",
            "last_name": "Другая",
            "first_name": "Фамилия",
            "organisation": tree.school.pk,
            "role": Role.PARENT,
        },
    )

    existing.refresh_from_db()
    assert (existing.first_name, existing.last_name) == ("Ольга", "Смирнова")
    assert Membership.objects.filter(user=existing, organisation=tree.school, role=Role.PARENT).count() == 1


def test_membership_position_change_is_audited(tree: Tree) -> None:
    client = signed_in(tree.school_admin)
    membership = Membership.objects.get(user=tree.teacher)

    response = client.post(f"/admin/organisations/membership/{membership.pk}/change/", {"position": "завуч"})

    membership.refresh_from_db()
    assert response.status_code == 302
    assert membership.position == "завуч"
    event = AuditEvent.objects.get(action="membership.update")
    assert (event.actor, event.organisation_id, event.changes) == (
        tree.school_admin,
        tree.school.pk,
        {"position": ["", "завуч"]},
    )


def test_memberships_cannot_be_deleted_only_ended(tree: Tree) -> None:
    client = signed_in(tree.school_admin)
    membership = Membership.objects.get(user=tree.teacher)

    response = client.post(f"/admin/organisations/membership/{membership.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert Membership.objects.filter(pk=membership.pk, ended_at__isnull=True).count() == 1


# --- Verification queue -----------------------------------------------------------------------------------------


def test_verification_approve_grants_the_badge_and_ending_the_membership_removes_it(tree: Tree) -> None:
    client = signed_in(tree.school_admin)
    membership = Membership.objects.get(user=tree.teacher)
    services.verification_request(user=tree.teacher, membership=membership)
    queue = "/admin/organisations/verificationrequest/"

    assert changelist_pks(client, queue) == {membership.pk}
    approved = action(client, queue, "approve", [membership.pk])
    tree.teacher.refresh_from_db()
    membership.refresh_from_db()

    assert approved.status_code == 302
    assert (tree.teacher.is_verified_educator, membership.verification_status, membership.verified_by) == (
        True,
        VerificationStatus.VERIFIED,
        tree.school_admin,
    )
    assert changelist_pks(client, queue) == set()

    ended = action(client, "/admin/organisations/membership/", "end_memberships", [membership.pk])
    tree.teacher.refresh_from_db()
    membership.refresh_from_db()

    assert ended.status_code == 302
    assert tree.teacher.is_verified_educator is False
    assert membership.ended_at is not None
    assert list(
        AuditEvent.objects.filter(
            object_type="organisations.membership", object_id=str(membership.pk), actor=tree.school_admin
        )
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["verification.approve", "membership.end"]


def test_verification_reject(tree: Tree) -> None:
    membership = Membership.objects.get(user=tree.teacher)
    services.verification_request(user=tree.teacher, membership=membership)

    action(signed_in(tree.school_admin), "/admin/organisations/verificationrequest/", "reject", [membership.pk])

    membership.refresh_from_db()
    tree.teacher.refresh_from_db()
    assert (membership.verification_status, tree.teacher.is_verified_educator) == (VerificationStatus.REJECTED, False)


def test_another_schools_request_is_neither_listed_nor_approved(tree: Tree) -> None:
    other_teacher = make_member(organisation=tree.other_school, role=Role.TEACHER)
    membership = Membership.objects.get(user=other_teacher)
    services.verification_request(user=other_teacher, membership=membership)
    client = signed_in(tree.school_admin)

    listed = changelist_pks(client, "/admin/organisations/verificationrequest/")
    action(client, "/admin/organisations/verificationrequest/", "approve", [membership.pk])

    membership.refresh_from_db()
    other_teacher.refresh_from_db()
    assert listed == set()
    assert (membership.verification_status, other_teacher.is_verified_educator) == (VerificationStatus.REQUESTED, False)
    assert AuditEvent.objects.filter(action="verification.approve").count() == 0


# --- Users ------------------------------------------------------------------------------------------------------


def test_block_action_blocks_after_asking_for_a_reason(tree: Tree) -> None:
    client = signed_in(tree.school_admin)
    url = "/admin/accounts/user/"

    confirmation = action(client, url, "block", [tree.teacher.pk])
    tree.teacher.refresh_from_db()
    active_after_confirmation_page = tree.teacher.is_active
    blocked = client.post(
        url, {"action": "block", "_selected_action": [tree.teacher.pk], "reason": "Спам", "apply": "1"}
    )
    tree.teacher.refresh_from_db()

    assert confirmation.status_code == 200
    assert active_after_confirmation_page is True
    assert blocked.status_code == 302
    assert tree.teacher.is_active is False
    assert tree.teacher.blocked_at is not None
    event = AuditEvent.objects.get(action="user_block")
    assert (event.actor, event.object_id, event.changes["reason"]) == (tree.school_admin, str(tree.teacher.pk), "Спам")

    unblocked = action(client, url, "unblock", [tree.teacher.pk])
    tree.teacher.refresh_from_db()
    assert (unblocked.status_code, tree.teacher.is_active, tree.teacher.blocked_at) == (302, True, None)


def test_block_action_does_not_reach_outside_the_scope(tree: Tree) -> None:
    client = signed_in(tree.school_admin)

    client.post(
        "/admin/accounts/user/",
        {"action": "block", "_selected_action": [tree.other_student.pk], "reason": "Спам", "apply": "1"},
    )

    tree.other_student.refresh_from_db()
    assert tree.other_student.is_active is True
    assert AuditEvent.objects.filter(action="user_block").count() == 0


def test_user_badges_cannot_be_edited(tree: Tree) -> None:
    client = signed_in(tree.school_admin)
    url = f"/admin/accounts/user/{tree.teacher.pk}/change/"

    page = client.get(url)
    response = client.post(url, {"first_name": "Хакер", "is_verified_educator": "on", "phone": "+79165550099"})

    tree.teacher.refresh_from_db()
    assert page.status_code == 200
    assert page.context["adminform"].form.fields == {}
    assert response.status_code == 403
    assert (tree.teacher.is_verified_educator, str(tree.teacher.phone)) == (False, tree.teacher.phone.as_e164)


# --- Classes, guardianship --------------------------------------------------------------------------------------


def inline_management(prefix: str, *, total: int, initial: int = 0) -> dict[str, Any]:
    return {
        f"{prefix}-TOTAL_FORMS": total,
        f"{prefix}-INITIAL_FORMS": initial,
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }


def test_class_added_with_its_teacher_and_students_through_the_services(tree: Tree) -> None:
    client = signed_in(tree.school_admin)
    year = current_academic_year()

    response = client.post(
        "/admin/organisations/studygroup/add/",
        {
            "organisation": tree.school.pk,
            "name": " 5а ",
            "academic_year": year,
            "homeroom_teacher": tree.teacher.pk,
            **inline_management("studygroupteacher_set", total=0),
            **inline_management("studygroupstudent_set", total=1),
            "studygroupstudent_set-0-student": tree.student.pk,
        },
    )

    assert response.status_code == 302
    group = StudyGroup.objects.get(organisation=tree.school, name="5А")
    assert (group.academic_year, group.grade, group.homeroom_teacher) == (year, 5, tree.teacher)
    assert list(group.students.all()) == [tree.student]
    assert list(group.teachers.all()) == [tree.teacher]
    assert list(
        AuditEvent.objects.filter(object_type="organisations.studygroup", object_id=str(group.pk))
        .order_by("id")
        .values_list("action", "actor_id")
    ) == [
        ("study_group.create", tree.school_admin.pk),
        ("study_group.teacher_add", tree.school_admin.pk),
        ("study_group.student_add", tree.school_admin.pk),
    ]


def class_change_form(group: StudyGroup, **fields: Any) -> dict[str, Any]:
    """The class's change form as the page posts it, with its teachers."""
    links = list(StudyGroupTeacher.objects.filter(group=group).order_by("pk"))
    data: dict[str, Any] = {
        "name": group.name,
        "grade": str(group.grade or ""),
        "academic_year": str(group.academic_year),
        "homeroom_teacher": group.homeroom_teacher_id or "",
        **inline_management("studygroupteacher_set", total=len(links), initial=len(links)),
        **inline_management("studygroupstudent_set", total=0),
    }
    for index, link in enumerate(links):
        prefix = f"studygroupteacher_set-{index}-"
        data |= {
            prefix + "id": link.pk,
            prefix + "group": group.pk,
            prefix + "teacher": link.teacher_id,
            prefix + "subject": link.subject,
        }
    return data | fields


def test_a_class_renamed_and_a_teacher_deleted_on_the_class_page_go_through_the_services(tree: Tree) -> None:
    group = StudyGroup.objects.get(organisation=tree.school)
    services.study_group_teacher_add(actor=None, group=group, teacher=tree.teacher, subject="Физика")

    response = signed_in(tree.school_admin).post(
        f"/admin/organisations/studygroup/{group.pk}/change/",
        class_change_form(group, name="7в", **{"studygroupteacher_set-0-DELETE": "on"}),
    )

    group.refresh_from_db()
    assert response.status_code == 302
    assert (group.name, group.teachers.count()) == ("7В", 0)
    actions = ["study_group.rename", "study_group.teacher_remove"]
    assert list(
        AuditEvent.objects.filter(object_id=str(group.pk), action__in=actions)
        .order_by("id")
        .values_list("action", "actor_id", "changes")
    ) == [
        ("study_group.rename", tree.school_admin.pk, {"name": ["7Б", "7В"]}),
        ("study_group.teacher_remove", tree.school_admin.pk, {"teacher": tree.teacher.pk}),
    ]


def test_the_homeroom_teacher_deleted_on_the_class_page_stays_and_the_page_says_why(tree: Tree) -> None:
    group = StudyGroup.objects.get(organisation=tree.school)
    services.study_group_teacher_add(actor=None, group=group, teacher=tree.teacher)
    group.homeroom_teacher = tree.teacher
    group.save(update_fields=["homeroom_teacher"])
    events_before = AuditEvent.objects.count()

    response = signed_in(tree.school_admin).post(
        f"/admin/organisations/studygroup/{group.pk}/change/",
        class_change_form(group, name="7В", **{"studygroupteacher_set-0-DELETE": "on"}),
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    )

    group.refresh_from_db()
    assert [str(message) for message in response.context["messages"]] == [
        "This teacher is the homeroom teacher of the class: choose another homeroom teacher first."
    ]
    assert (group.name, list(group.teachers.all())) == ("7Б", [tree.teacher])
    assert AuditEvent.objects.count() == events_before


def test_guardianship_code_is_shown_once_and_only_its_hash_is_kept(tree: Tree) -> None:
    client = signed_in(tree.school_admin)

    response = client.post(
        "/admin/organisations/guardianshipcode/add/",
        {"student": tree.student.pk, "organisation": tree.school.pk, "valid_days": 30},
        follow=True,
    )

    shown = [str(message) for message in response.context["messages"]]
    codes = [match for message in shown for match in re.findall(r"\b[A-Z2-9]{5}-[A-Z2-9]{5}\b", message)]
    assert len(codes) == 1
    record = GuardianshipCode.objects.get()
    assert (record.student, record.organisation, record.created_by) == (tree.student, tree.school, tree.school_admin)
    assert record.code_hash == services.guardianship_code_hash(codes[0])
    assert codes[0] not in client.get(f"/admin/organisations/guardianshipcode/{record.pk}/change/").content.decode()


def test_guardianship_code_for_another_schools_student_is_refused(tree: Tree) -> None:
    response = signed_in(tree.school_admin).post(
        "/admin/organisations/guardianshipcode/add/",
        {"student": tree.other_student.pk, "organisation": tree.school.pk, "valid_days": 30},
    )

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["student"]
    assert GuardianshipCode.objects.count() == 0


def test_guardianship_added_by_the_parents_phone_and_ended(tree: Tree) -> None:
    client = signed_in(tree.school_admin)

    response = client.post(
        "/admin/organisations/guardianship/add/",
        {
            "phone": "8 916 555 00 04",
            "last_name": "Иванов",
            "first_name": "Пётр",
            "student": tree.student.pk,
            "organisation": tree.school.pk,
        },
    )

    assert response.status_code == 302
    parent = User.objects.get(phone="+79165550004")
    guardianship = Guardianship.objects.get(parent=parent)
    assert (guardianship.student, guardianship.organisation, guardianship.created_by) == (
        tree.student,
        tree.school,
        tree.school_admin,
    )
    assert Membership.objects.active().filter(user=parent, organisation=tree.school, role=Role.PARENT).count() == 1

    action(client, "/admin/organisations/guardianship/", "end_guardianships", [guardianship.pk])

    guardianship.refresh_from_db()
    assert guardianship.ended_at is not None


# --- Audit log --------------------------------------------------------------------------------------------------


def test_audit_log_lists_changes_and_an_administrator_sees_only_their_organisations(tree: Tree) -> None:
    make_parent(student=tree.other_student, organisation=tree.other_school)
    signed_in(tree.school_admin).post(
        f"/admin/organisations/membership/{Membership.objects.get(user=tree.teacher).pk}/change/", {"position": "завуч"}
    )
    client = signed_in(tree.school_admin)

    visible = changelist_pks(client, "/admin/common/auditevent/")
    everything = changelist_pks(signed_in(make_superuser()), "/admin/common/auditevent/")
    other_event = AuditEvent.objects.filter(organisation_id=tree.other_school.pk).first()

    expected = set(
        AuditEvent.objects.filter(Q(organisation_id=tree.school.pk) | Q(actor=tree.school_admin)).values_list(
            "pk", flat=True
        )
    )
    assert visible == expected
    assert AuditEvent.objects.get(action="membership.update").pk in visible
    assert not visible & set(
        AuditEvent.objects.filter(organisation_id=tree.other_school.pk).values_list("pk", flat=True)
    )
    assert everything == set(AuditEvent.objects.values_list("pk", flat=True))
    assert other_event is not None
    assert client.get(f"/admin/common/auditevent/{other_event.pk}/change/").status_code == 404
    assert client.get("/admin/common/auditevent/add/").status_code == 403
    assert client.post(f"/admin/common/auditevent/{expected.pop()}/delete/", {"post": "yes"}).status_code == 403


def test_audit_log_filters_by_action(tree: Tree) -> None:
    client = signed_in(tree.school_admin)

    filtered = changelist_pks(client, "/admin/common/auditevent/?action=membership.create")

    assert filtered == set(
        AuditEvent.objects.filter(action="membership.create", organisation_id=tree.school.pk).values_list(
            "pk", flat=True
        )
    )
    assert len(filtered) == 3


def make_superuser() -> User:
    return User.objects.create_superuser("+79165550100")


def test_every_admin_page_opens_for_an_administrator_and_a_superuser(tree: Tree) -> None:
    group = StudyGroup.objects.get(organisation=tree.school)
    make_parent(student=tree.student, organisation=tree.school)
    services.guardianship_code_create(actor=tree.school_admin, student=tree.student, organisation=tree.school)
    pages = [
        "/admin/",
        "/admin/organisations/",
        f"/admin/organisations/organisation/{tree.school.pk}/change/",
        f"/admin/organisations/organisation/{tree.school.pk}/import/",
        f"/admin/organisations/membership/{Membership.objects.get(user=tree.teacher).pk}/change/",
        f"/admin/organisations/studygroup/{group.pk}/change/",
        f"/admin/organisations/guardianship/{Guardianship.objects.get().pk}/change/",
        f"/admin/organisations/guardianshipcode/{GuardianshipCode.objects.get().pk}/change/",
        f"/admin/accounts/user/{tree.teacher.pk}/change/",
        "/admin/accounts/user/?_to_field=id&_popup=1",
        "/admin/accounts/user/?q=8+(916)+555",
    ]
    for model in ("organisation", "membership", "studygroup", "guardianship", "guardianshipcode"):
        pages += [f"/admin/organisations/{model}/", f"/admin/organisations/{model}/add/"]
    pages += ["/admin/organisations/importjob/", "/admin/organisations/verificationrequest/"]
    pages += ["/admin/accounts/user/", "/admin/common/auditevent/", "/admin/common/auditevent/?at__gte=2020-01-01"]

    for user in (tree.school_admin, make_superuser()):
        client = signed_in(user)
        for url in pages:
            if url.endswith("/organisation/add/") and user == tree.school_admin:
                continue
            assert client.get(url).status_code == 200, (user, url)


def test_administrator_index_lists_the_scoped_models_only(tree: Tree) -> None:
    response = signed_in(tree.school_admin).get("/admin/")

    models = {model["object_name"] for app in response.context["app_list"] for model in app["models"]}
    assert models == {
        "User",
        "AuditEvent",
        "Organisation",
        "Membership",
        "VerificationRequest",
        "StudyGroup",
        "Guardianship",
        "GuardianshipCode",
        "ImportJob",
        # lessons: the meetings of their schools, scoped the same way.
        "Meeting",
        "Participant",
        # migration: their schools' uploads of old chats, and those chats.
        "ImportRun",
        "LegacyChat",
        "LegacyNotice",
    }
