"""What the directory adds to the data-subject rights: its export sections,
the end of memberships and guardianships when an account is deleted, and
profile photos shown only to those who may see the profile."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from accounts.selectors import personal_data_export
from accounts.services import account_delete, api_token_create, profile_photo_set, profile_update
from accounts.tests.factories import image_bytes, make_login_code, uploaded
from common.models import AuditEvent
from organisations import services
from organisations.models import Guardianship, Membership, Role
from organisations.selectors import person_get
from organisations.tests.factories import (
    make_member,
    make_organisation,
    make_school_with_class,
    make_user,
    teacher_membership,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def verified_teacher(world) -> User:
    membership = teacher_membership(user=world.teacher, organisation=world.school)
    services.verification_request(user=world.teacher, membership=membership)
    services.verification_decide(actor=world.administrator, membership=membership, approve=True)
    world.teacher.refresh_from_db()
    assert world.teacher.is_verified_educator is True
    return world.teacher


def delete(user: User) -> None:
    make_login_code(phone=str(user.phone), code="123456")
    account_delete(user=user, code="123456")


# --- Export ------------------------------------------------------------------------


def test_the_export_has_memberships_guardianships_groups_and_safe_mode_changes():
    world = make_school_with_class(students=1)
    services.safe_mode_update(actor=world.parent, student=world.student, is_hidden_from_search=False)

    student_export = personal_data_export(user=world.student)
    parent_export = personal_data_export(user=world.parent)
    teacher_export = personal_data_export(user=verified_teacher(world))

    school = {"id": world.school.pk, "short_name": world.school.short_name, "kind": "school"}
    (membership,) = student_export["memberships"]
    assert membership["organisation"] == school
    assert (membership["role"], membership["ended_at"], membership["verification_status"]) == (
        "student",
        None,
        "not_requested",
    )
    assert student_export["guardianships"]["as_parent"] == []
    (as_student,) = student_export["guardianships"]["as_student"]
    assert as_student["parent"] == {"id": world.parent.pk, "display_name": world.parent.display_name}
    assert (as_student["organisation"], as_student["source"], as_student["ended_at"]) == (school, "school", None)
    assert [(group["name"], group["role"]) for group in student_export["study_groups"]] == [("7Б", "student")]
    (change,) = student_export["safe_mode_changes"]
    assert change["changed_by"] == {"id": world.parent.pk, "display_name": world.parent.display_name}
    assert change["changes"] == {"is_hidden_from_search": [True, False]}

    assert [entry["role"] for entry in parent_export["memberships"]] == ["parent"]
    (as_parent,) = parent_export["guardianships"]["as_parent"]
    assert as_parent["student"] == {"id": world.student.pk, "display_name": world.student.display_name}
    assert parent_export["safe_mode_changes"] == []

    (teaching,) = teacher_export["memberships"]
    assert (teaching["role"], teaching["verification_status"]) == ("teacher", "verified")
    assert teaching["verified_at"] is not None
    assert sorted(group["role"] for group in teacher_export["study_groups"]) == ["homeroom_teacher", "teacher"]


def test_the_export_has_no_one_elses_phone_number():
    world = make_school_with_class(students=1)

    text = str(personal_data_export(user=world.student))

    assert str(world.student.phone) in text
    assert str(world.parent.phone) not in text
    assert str(world.teacher.phone) not in text


# --- Deletion ----------------------------------------------------------------------


def test_deleting_a_verified_teacher_ends_memberships_and_the_badge(django_capture_on_commit_callbacks):
    world = make_school_with_class(students=1)
    teacher = verified_teacher(world)
    other_school = make_organisation()
    make_member(organisation=other_school, role=Role.TEACHER, user=teacher)
    lookalike = make_user()
    profile_update(
        user=lookalike,
        first_name=teacher.first_name,
        last_name=teacher.last_name,
        middle_name="",
        language="ru",
        time_zone="",
    )
    assert lookalike.is_name_flagged is True

    with django_capture_on_commit_callbacks(execute=True):
        delete(teacher)

    assert Membership.objects.active().filter(user=teacher).count() == 0
    assert Membership.objects.filter(user=teacher).count() == 2
    teacher.refresh_from_db()
    assert teacher.is_verified_educator is False
    assert User.objects.get(pk=lookalike.pk).is_name_flagged is False
    ended = AuditEvent.objects.filter(action="membership.end", actor=teacher).values_list("organisation_id", flat=True)
    assert sorted(ended) == sorted([world.school.pk, other_school.pk])
    assert person_get(viewer=world.administrator, user_id=teacher.pk) is None


def test_deleting_an_administrator_removes_admin_access():
    world = make_school_with_class(students=0)
    assert world.administrator.is_staff is True

    delete(world.administrator)

    administrator = User.objects.get(pk=world.administrator.pk)
    assert administrator.is_staff is False
    assert Membership.objects.active().filter(user=administrator).count() == 0


def test_deleting_a_parent_or_a_student_ends_their_guardianships():
    world = make_school_with_class(students=2)

    delete(world.parents[0])
    delete(world.students[1])

    assert Guardianship.objects.filter(parent=world.parents[0], ended_at__isnull=True).count() == 0
    assert Guardianship.objects.filter(student=world.students[1], ended_at__isnull=True).count() == 0
    assert Guardianship.objects.filter(ended_at__isnull=True).count() == 0
    assert AuditEvent.objects.filter(action="guardianship.end").count() == 2
    assert Membership.objects.active().filter(user=world.students[0]).count() == 1


def test_a_refused_code_ends_nothing():
    world = make_school_with_class(students=1)
    make_login_code(phone=str(world.parent.phone), code="123456")
    audit_count = AuditEvent.objects.count()

    response = APIClient()
    response.force_authenticate(world.parent)
    refusal = response.post("/api/v1/me/delete/", {"code": "000000"}, format="json")

    assert refusal.status_code == 400
    assert Membership.objects.active().filter(user=world.parent).count() == 1
    assert Guardianship.objects.filter(parent=world.parent, ended_at__isnull=True).count() == 1
    assert AuditEvent.objects.count() == audit_count


# --- Photos ------------------------------------------------------------------------


def photo_of(user: User) -> str:
    profile_photo_set(user=user, uploaded_file=uploaded(image_bytes()))
    return f"/users/{user.pk}/photo/"


def browser_of(user: User | None) -> Client:
    browser = Client()
    if user is not None:
        browser.force_login(user)
    return browser


def test_a_childs_photo_is_served_to_classmates_teachers_and_guardians_only():
    world = make_school_with_class(students=3)
    url = photo_of(world.student)
    stranger = make_user()
    other_school = make_school_with_class(students=0)

    statuses = {
        "self": browser_of(world.student).get(url).status_code,
        "classmate": browser_of(world.students[1]).get(url).status_code,
        "teacher": browser_of(world.teacher).get(url).status_code,
        "administrator": browser_of(world.administrator).get(url).status_code,
        "guardian": browser_of(world.parent).get(url).status_code,
        "classmates_parent": browser_of(world.parents[1]).get(url).status_code,
        "stranger": browser_of(stranger).get(url).status_code,
        "other_schools_teacher": browser_of(other_school.teacher).get(url).status_code,
        "anonymous": browser_of(None).get(url).status_code,
    }

    assert statuses == {
        "self": 200,
        "classmate": 200,
        "teacher": 200,
        "administrator": 200,
        "guardian": 200,
        "classmates_parent": 404,
        "stranger": 404,
        "other_schools_teacher": 404,
        "anonymous": 404,
    }


def test_the_photo_response_is_a_private_jpeg():
    world = make_school_with_class(students=2)
    url = photo_of(world.student)

    response = browser_of(world.students[1]).get(url)

    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "private, max-age=3600"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert {"Cookie", "Authorization"} <= {header.strip() for header in response["Vary"].split(",")}
    assert b"".join(response.streaming_content)[:3] == b"\xff\xd8\xff"


def test_an_app_loads_the_photo_with_its_token():
    world = make_school_with_class(students=2)
    url = photo_of(world.student)
    classmate_key = api_token_create(user=world.students[1], name="app")
    stranger_key = api_token_create(user=make_user(), name="app")

    classmate = Client().get(url, HTTP_AUTHORIZATION="Token " + classmate_key)
    stranger = Client().get(url, HTTP_AUTHORIZATION="Token " + stranger_key)
    bad_token = Client().get(url, HTTP_AUTHORIZATION="Token nonsense")

    assert (classmate.status_code, stranger.status_code, bad_token.status_code) == (200, 404, 404)


def test_no_photo_no_person_and_a_deleted_person_answer_alike():
    world = make_school_with_class(students=2)
    url = photo_of(world.students[1])
    viewer = browser_of(world.teacher)
    delete(world.students[1])

    responses = [
        viewer.get(f"/users/{world.student.pk}/photo/"),
        viewer.get("/users/1000000000/photo/"),
        viewer.get(url),
    ]

    assert [response.status_code for response in responses] == [404, 404, 404]


def test_people_search_and_profiles_give_the_guarded_photo_url():
    world = make_school_with_class(students=1)
    User.objects.filter(pk=world.teacher.pk).update(first_name="Анна", last_name="Кузнецова")
    url = photo_of(world.teacher)
    client = APIClient()
    client.force_authenticate(world.parent)

    profile = client.get(f"/api/v1/users/{world.teacher.pk}/").json()
    found = client.get("/api/v1/users/", {"q": "Кузнецова"}).json()["results"]

    assert profile["photo_url"].startswith("http://testserver" + url + "?v=")
    assert [person["photo_url"] for person in found] == [profile["photo_url"]]
    assert "/media/" not in profile["photo_url"]
