import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import User
from common.models import AuditEvent
from organisations import services
from organisations.models import (
    Guardianship,
    GuardianshipCode,
    Membership,
    OrganisationKind,
    Region,
    Role,
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

# DRF's own wording of "Not found.", so that every 404 of the API reads alike.
NOT_FOUND_BODY = {"detail": "Не найдено.", "code": "not_found"}
MISSING_ID = 10**9


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


# --- Regions -----------------------------------------------------------------------


def test_regions_list_fits_on_one_page():
    response = client_for(make_user()).get("/api/v1/regions/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 89
    assert len(body["results"]) == 89
    assert body["next"] is None
    assert body["results"][0] == {
        "code": "01",
        "name": "Республика Адыгея",
        "name_en": "Republic of Adygea",
        "time_zone": "Europe/Moscow",
    }


def test_regions_need_a_signed_in_user():
    response = client_for(None).get("/api/v1/regions/")

    assert response.status_code == 401


@pytest.mark.parametrize("limit", [1, 89])
def test_regions_query_count_does_not_depend_on_page_size(django_assert_num_queries, limit):
    client = client_for(make_user())

    with django_assert_num_queries(2):
        response = client.get("/api/v1/regions/", {"limit": limit})

    assert len(response.json()["results"]) == limit


# --- Organisations ---------------------------------------------------------------


def test_organisations_list_shape_and_filters():
    authority = make_organisation(kind=OrganisationKind.MUNICIPAL_AUTHORITY, short_name="Управление образования")
    world = make_school_with_class(
        students=1,
        parent=authority,
        short_name="МБОУ Гимназия № 2",
        full_name="Гимназия № 2",
        inn="5024000030",
        municipality="городской округ Красногорск",
    )
    services.organisation_update(actor=None, organisation=world.school, is_verified=True)

    response = client_for(world.teacher).get("/api/v1/organisations/", {"q": "гимназия", "region": "50"})

    assert response.status_code == 200
    assert response.json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": world.school.pk,
                "kind": "school",
                "short_name": "МБОУ Гимназия № 2",
                "full_name": "Гимназия № 2",
                "inn": "5024000030",
                "region": {
                    "code": "50",
                    "name": "Московская область",
                    "name_en": "Moscow Oblast",
                    "time_zone": "Europe/Moscow",
                },
                "municipality": "городской округ Красногорск",
                "parent": {
                    "id": authority.pk,
                    "kind": "municipal_authority",
                    "short_name": "Управление образования",
                    "is_verified": False,
                },
                "is_verified": True,
            }
        ],
    }


def test_organisations_list_for_a_student_is_their_school_only():
    world = make_school_with_class(students=1)
    make_organisation()

    response = client_for(world.student).get("/api/v1/organisations/")

    assert [item["id"] for item in response.json()["results"]] == [world.school.pk]


def test_organisations_list_refuses_an_unknown_kind():
    response = client_for(make_user()).get("/api/v1/organisations/", {"kind": "bank"})

    assert response.status_code == 400
    assert list(response.json()) == ["kind"]


@pytest.mark.parametrize("limit", [1, 10])
def test_organisations_list_query_count_does_not_depend_on_page_size(django_assert_num_queries, limit):
    parent = make_organisation(kind=OrganisationKind.MUNICIPAL_AUTHORITY)
    teacher = make_member(organisation=parent, role=Role.OFFICIAL)
    for _index in range(10):
        make_organisation(parent=parent)
    client = client_for(teacher)

    # The viewer's roles, the count, the page with regions and parents.
    with django_assert_num_queries(3):
        response = client.get("/api/v1/organisations/", {"limit": limit, "kind": "school"})

    assert len(response.json()["results"]) == limit


def test_organisation_detail_with_contacts_for_a_member():
    world = make_school_with_class(students=1, phone="+7 495 000-00-01", email="school@example.org")

    response = client_for(world.parent).get(f"/api/v1/organisations/{world.school.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == world.school.pk
    assert body["kind"] == "school"
    assert body["region"]["code"] == "50"
    assert body["time_zone"] == "Europe/Moscow"
    assert body["parent"] is None
    assert body["logo"] is None
    assert body["contacts"] == {"phone": "+7 495 000-00-01", "email": "school@example.org", "website": ""}


def test_organisation_detail_hides_contacts_from_a_guest_superuser():
    school = make_organisation(phone="+7 495 000-00-01")
    superuser = User.objects.create_superuser("+79980000000")

    response = client_for(superuser).get(f"/api/v1/organisations/{school.pk}/")

    assert response.status_code == 200
    assert response.json()["contacts"] is None


def test_an_invisible_organisation_answers_like_a_missing_one():
    world = make_school_with_class(students=1)
    other_school = make_organisation()
    client = client_for(world.student)

    invisible = client.get(f"/api/v1/organisations/{other_school.pk}/")
    missing = client.get(f"/api/v1/organisations/{MISSING_ID}/")

    assert (invisible.status_code, missing.status_code) == (404, 404)
    assert invisible.json() == missing.json() == NOT_FOUND_BODY


# --- Study groups ------------------------------------------------------------------


def test_groups_of_an_organisation_with_their_homeroom_teacher():
    world = make_school_with_class(name="7Б", students=2)
    User.objects.filter(pk=world.teacher.pk).update(first_name="Анна", last_name="Кузнецова")
    make_study_group(organisation=world.school, name="5А", students=1)

    staff_view = client_for(world.administrator).get(f"/api/v1/organisations/{world.school.pk}/groups/")
    student_view = client_for(world.student).get(f"/api/v1/organisations/{world.school.pk}/groups/")

    assert staff_view.status_code == 200
    assert [group["name"] for group in staff_view.json()["results"]] == ["5А", "7Б"]
    assert student_view.json()["results"] == [
        {
            "id": world.group.pk,
            "name": "7Б",
            "grade": 7,
            "academic_year": world.group.academic_year,
            "homeroom_teacher": {
                "id": world.teacher.pk,
                "display_name": "Анна Кузнецова",
                "is_verified_educator": False,
            },
            "students_count": 2,
        }
    ]


def test_groups_filter_by_academic_year():
    world = make_school_with_class(students=0, academic_year=2024)
    make_study_group(organisation=world.school, name="8Б", academic_year=2025)
    client = client_for(world.administrator)

    response = client.get(f"/api/v1/organisations/{world.school.pk}/groups/", {"academic_year": 2024})

    assert [group["id"] for group in response.json()["results"]] == [world.group.pk]


def test_groups_of_an_invisible_organisation_answer_404():
    world = make_school_with_class(students=1)
    other = make_school_with_class(students=1)

    invisible = client_for(world.student).get(f"/api/v1/organisations/{other.school.pk}/groups/")
    missing = client_for(world.student).get(f"/api/v1/organisations/{MISSING_ID}/groups/")

    assert (invisible.status_code, missing.status_code) == (404, 404)
    assert invisible.json() == missing.json() == NOT_FOUND_BODY


@pytest.mark.parametrize("limit", [1, 5])
def test_groups_query_count_does_not_depend_on_page_size(django_assert_num_queries, limit):
    world = make_school_with_class(students=2)
    for name in ("5А", "6А", "8А", "9А"):
        make_study_group(organisation=world.school, name=name, homeroom_teacher=make_user(), students=1)
    client = client_for(world.administrator)

    # The organisation's visibility (roles, organisation), administration
    # (paths, check), the count and the page with teachers and counts.
    with django_assert_num_queries(6):
        response = client.get(f"/api/v1/organisations/{world.school.pk}/groups/", {"limit": limit})

    assert len(response.json()["results"]) == limit


# --- Verification requests -----------------------------------------------------------


def test_a_teacher_asks_for_verification():
    world = make_school_with_class(students=0)
    membership = teacher_membership(user=world.teacher, organisation=world.school)

    response = client_for(world.teacher).post(f"/api/v1/memberships/{membership.pk}/verification-request/")

    assert response.status_code == 200
    membership.refresh_from_db()
    body = response.json()
    assert body["id"] == membership.pk
    assert body["organisation"]["id"] == world.school.pk
    assert (body["role"], body["verification_status"]) == ("teacher", "requested")
    assert membership.verification_status == VerificationStatus.REQUESTED
    assert AuditEvent.objects.filter(action="verification.request", actor=world.teacher).count() == 1


def test_verification_request_of_another_persons_membership_answers_404():
    world = make_school_with_class(students=0)
    membership = teacher_membership(user=world.teacher, organisation=world.school)
    client = client_for(world.administrator)

    foreign = client.post(f"/api/v1/memberships/{membership.pk}/verification-request/")
    missing = client.post(f"/api/v1/memberships/{MISSING_ID}/verification-request/")

    assert (foreign.status_code, missing.status_code) == (404, 404)
    assert foreign.json() == missing.json() == NOT_FOUND_BODY
    membership.refresh_from_db()
    assert membership.verification_status == VerificationStatus.NOT_REQUESTED
    assert AuditEvent.objects.filter(action="verification.request").count() == 0


def test_a_student_cannot_ask_for_verification():
    world = make_school_with_class(students=1)
    membership = Membership.objects.get(user=world.student)

    response = client_for(world.student).post(f"/api/v1/memberships/{membership.pk}/verification-request/")

    assert response.status_code == 400
    assert response.json()["code"] == "not_verifiable"
    assert Membership.objects.get(pk=membership.pk).verification_status == VerificationStatus.NOT_REQUESTED


# --- Guardianship codes and claims -----------------------------------------------------


def codes_url(organisation_id: int, student_id: int) -> str:
    return f"/api/v1/organisations/{organisation_id}/students/{student_id}/guardianship-codes/"


@pytest.mark.parametrize("issuer", ["administrator", "teacher"])
def test_the_school_issues_a_guardianship_code(issuer):
    world = make_school_with_class(students=1)

    response = client_for(getattr(world, issuer)).post(codes_url(world.school.pk, world.student.pk))

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"code", "expires_at"}
    assert len(body["code"]) == 11 and body["code"][5] == "-"
    record = GuardianshipCode.objects.get()
    assert (record.student_id, record.organisation_id) == (world.student.pk, world.school.pk)
    assert body["code"].replace("-", "") not in record.code_hash


def test_guardianship_code_refusals_leave_no_code():
    world = make_school_with_class(students=2)
    colleague = make_member(organisation=world.school, role=Role.TEACHER)
    other = make_school_with_class(students=1)
    url = codes_url(world.school.pk, world.student.pk)

    # Sees the child (staff, guardian) but may not issue: 403.
    assert client_for(colleague).post(url).status_code == 403
    assert client_for(world.parent).post(url).status_code == 403
    # Does not see the child: 404, like a missing child or school.
    not_found = [
        client_for(other.teacher).post(url),
        client_for(world.parents[1]).post(url),
        client_for(world.administrator).post(codes_url(world.school.pk, other.student.pk)),
        client_for(world.administrator).post(codes_url(world.school.pk, MISSING_ID)),
        client_for(world.administrator).post(codes_url(MISSING_ID, world.student.pk)),
        client_for(other.student).post(url),
    ]
    assert [response.status_code for response in not_found] == [404] * 6
    assert all(response.json() == NOT_FOUND_BODY for response in not_found)
    assert GuardianshipCode.objects.count() == 0
    assert AuditEvent.objects.filter(action="guardianship_code.create").count() == 0


def test_a_parent_claims_a_code():
    world = make_school_with_class(students=1)
    User.objects.filter(pk=world.student.pk).update(first_name="Иван", last_name="Петров")
    code = services.guardianship_code_create(actor=world.teacher, student=world.student, organisation=world.school)
    parent = make_user()

    response = client_for(parent).post("/api/v1/guardianships/claim/", {"code": code}, format="json")

    assert response.status_code == 201
    link = Guardianship.objects.get(parent=parent)
    body = response.json()
    assert body["id"] == link.pk
    assert body["student"] == {"id": world.student.pk, "display_name": "Иван Петров", "is_verified_educator": False}
    assert body["organisation"]["id"] == world.school.pk
    assert body["source"] == "code"


def test_a_wrong_code_is_a_field_error_and_links_no_one():
    world = make_school_with_class(students=1)
    services.guardianship_code_create(actor=world.teacher, student=world.student, organisation=world.school)
    parent = make_user()

    response = client_for(parent).post("/api/v1/guardianships/claim/", {"code": "ABCDE-FGHJK"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Код неверен или больше не действует.",
        "code": "code_invalid",
        "field": "code",
    }
    assert Guardianship.objects.filter(parent=parent).count() == 0
    assert GuardianshipCode.objects.get().used_at is None


def test_a_claim_without_a_code_is_a_field_error():
    response = client_for(make_user()).post("/api/v1/guardianships/claim/", {}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["code"]


def test_claims_are_rate_limited_per_user():
    world = make_school_with_class(students=1)
    code = services.guardianship_code_create(actor=world.teacher, student=world.student, organisation=world.school)
    parent = make_user()
    client = client_for(parent)
    for _attempt in range(10):
        assert client.post("/api/v1/guardianships/claim/", {"code": "ABCDE-FGHJK"}, format="json").status_code == 400

    response = client.post("/api/v1/guardianships/claim/", {"code": code}, format="json")

    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
    assert Guardianship.objects.filter(parent=parent).count() == 0
    assert GuardianshipCode.objects.get().used_at is None
    # Another parent has their own budget.
    other = client_for(make_user()).post("/api/v1/guardianships/claim/", {"code": code}, format="json")
    assert other.status_code == 201
    cache.clear()


# --- Safe mode ---------------------------------------------------------------------


def safe_mode_url(student_id: int) -> str:
    return f"/api/v1/students/{student_id}/safe-mode/"


def test_a_guardian_reads_and_changes_safe_mode():
    world = make_school_with_class(students=1)
    client = client_for(world.parent)

    read = client.get(safe_mode_url(world.student.pk))
    changed = client.patch(safe_mode_url(world.student.pk), {"is_hidden_from_search": False}, format="json")

    assert read.json() == {"is_safe_mode": True, "is_hidden_from_search": True}
    assert changed.status_code == 200
    assert changed.json() == {"is_safe_mode": True, "is_hidden_from_search": False}
    event = AuditEvent.objects.get(action="safe_mode.change")
    assert (event.actor_id, event.object_id) == (world.parent.pk, str(world.student.pk))
    assert event.changes == {"is_hidden_from_search": [True, False]}


def test_the_school_changes_safe_mode():
    world = make_school_with_class(students=1)

    response = client_for(world.administrator).patch(
        safe_mode_url(world.student.pk), {"is_safe_mode": False}, format="json"
    )

    assert response.status_code == 200
    assert User.objects.get(pk=world.student.pk).is_safe_mode is False


def test_safe_mode_refusals_change_nothing():
    world = make_school_with_class(students=2)
    colleague = make_member(organisation=world.school, role=Role.TEACHER)
    url = safe_mode_url(world.student.pk)
    body = {"is_safe_mode": False, "is_hidden_from_search": False}

    stranger = client_for(make_user()).patch(url, body, format="json")
    classmate_parent = client_for(world.parents[1]).patch(url, body, format="json")
    missing = client_for(world.parent).patch(safe_mode_url(MISSING_ID), body, format="json")
    seen_but_not_managed = [
        client_for(colleague).patch(url, body, format="json"),
        client_for(world.student).patch(url, body, format="json"),
        client_for(colleague).get(url),
    ]
    invalid = client_for(world.parent).patch(url, {"is_safe_mode": "perhaps"}, format="json")

    assert (stranger.status_code, classmate_parent.status_code, missing.status_code) == (404, 404, 404)
    assert stranger.json() == classmate_parent.json() == missing.json() == NOT_FOUND_BODY
    assert [response.status_code for response in seen_but_not_managed] == [403, 403, 403]
    assert seen_but_not_managed[0].json() == {
        "detail": "Безопасный режим ученика могут менять только его родители (законные представители) и школа.",
        "code": "permission_denied",
    }
    assert invalid.status_code == 400
    student = User.objects.get(pk=world.student.pk)
    assert (student.is_safe_mode, student.is_hidden_from_search) == (True, True)
    assert AuditEvent.objects.filter(action="safe_mode.change").count() == 0


# --- People ------------------------------------------------------------------------


def test_a_profile_of_a_teacher_for_a_parent_of_the_school():
    world = make_school_with_class(students=1)
    User.objects.filter(pk=world.teacher.pk).update(first_name="Анна", last_name="Кузнецова")
    services.membership_create(actor=None, user=world.teacher, organisation=make_organisation(), role=Role.TEACHER)
    membership = teacher_membership(user=world.teacher, organisation=world.school)
    services.verification_request(user=world.teacher, membership=membership)
    services.verification_decide(actor=world.administrator, membership=membership, approve=True)

    response = client_for(world.parent).get(f"/api/v1/users/{world.teacher.pk}/")

    assert response.status_code == 200
    assert response.json() == {
        "id": world.teacher.pk,
        "display_name": "Анна Кузнецова",
        "is_verified_educator": True,
        "first_name": "Анна",
        "last_name": "Кузнецова",
        "is_name_flagged": False,
        "photo_url": None,
        "organisations": [
            {
                "id": world.school.pk,
                "kind": "school",
                "short_name": world.school.short_name,
                "is_verified": False,
                "roles": ["teacher"],
            }
        ],
    }
    assert str(world.teacher.phone) not in response.content.decode()


def test_a_profile_that_is_not_visible_answers_like_a_missing_one():
    world = make_school_with_class(students=2)
    other = make_school_with_class(students=0)

    child_for_classmate_parent = client_for(world.parents[1]).get(f"/api/v1/users/{world.student.pk}/")
    teacher_for_outsider = client_for(other.teacher).get(f"/api/v1/users/{world.teacher.pk}/")
    missing = client_for(world.parent).get(f"/api/v1/users/{MISSING_ID}/")

    assert [child_for_classmate_parent.status_code, teacher_for_outsider.status_code, missing.status_code] == [
        404,
        404,
        404,
    ]
    assert child_for_classmate_parent.json() == teacher_for_outsider.json() == missing.json() == NOT_FOUND_BODY


def test_a_guardian_sees_the_childs_profile():
    world = make_school_with_class(students=1)

    response = client_for(world.parent).get(f"/api/v1/users/{world.student.pk}/")

    assert response.status_code == 200
    assert response.json()["organisations"][0]["roles"] == ["student"]
    assert "phone" not in response.json()


def test_people_search_by_name_and_phone():
    world = make_school_with_class(students=2)
    User.objects.filter(pk=world.teacher.pk).update(first_name="Анна", last_name="Кузнецова")
    client = client_for(world.parents[1])

    by_name = client.get("/api/v1/users/", {"q": "кузнецова"})
    child_by_phone = client.get("/api/v1/users/", {"q": str(world.student.phone)})
    own_child_by_phone = client.get("/api/v1/users/", {"q": str(world.students[1].phone)})

    assert by_name.status_code == 200
    assert [person["id"] for person in by_name.json()["results"]] == [world.teacher.pk]
    assert set(by_name.json()["results"][0]) == {
        "id",
        "display_name",
        "first_name",
        "last_name",
        "is_verified_educator",
        "is_name_flagged",
        "photo_url",
    }
    assert child_by_phone.json()["results"] == []
    assert [person["id"] for person in own_child_by_phone.json()["results"]] == [world.students[1].pk]


def test_people_search_needs_a_query():
    response = client_for(make_user()).get("/api/v1/users/", {"q": "а"})

    assert response.status_code == 400
    assert list(response.json()) == ["q"]


@pytest.mark.parametrize("limit", [1, 6])
def test_people_search_query_count_does_not_depend_on_page_size(django_assert_num_queries, limit):
    world = make_school_with_class(students=6)
    for student in world.students:
        User.objects.filter(pk=student.pk).update(last_name="Ёлкин")
    client = client_for(world.teacher)

    with django_assert_num_queries(2):
        response = client.get("/api/v1/users/", {"q": "ёлкин", "limit": limit})

    assert response.json()["count"] == 6
    assert len(response.json()["results"]) == limit


def test_every_endpoint_needs_a_signed_in_user():
    world = make_school_with_class(students=1)
    membership = teacher_membership(user=world.teacher, organisation=world.school)
    client = client_for(None)

    responses = [
        client.get("/api/v1/regions/"),
        client.get("/api/v1/organisations/"),
        client.get(f"/api/v1/organisations/{world.school.pk}/"),
        client.get(f"/api/v1/organisations/{world.school.pk}/groups/"),
        client.post(f"/api/v1/memberships/{membership.pk}/verification-request/"),
        client.post("/api/v1/guardianships/claim/", {"code": "ABCDE-FGHJK"}, format="json"),
        client.post(codes_url(world.school.pk, world.student.pk)),
        client.get(safe_mode_url(world.student.pk)),
        client.patch(safe_mode_url(world.student.pk), {"is_safe_mode": False}, format="json"),
        client.get(f"/api/v1/users/{world.teacher.pk}/"),
        client.get("/api/v1/users/", {"q": "Анна"}),
    ]

    assert [response.status_code for response in responses] == [401] * len(responses)
    assert GuardianshipCode.objects.count() == 0
    assert User.objects.get(pk=world.student.pk).is_safe_mode is True
    assert Region.objects.count() == 89
