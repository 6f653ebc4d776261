"""Every API operation against every role (SPEC §10).

MATRIX names, for each path and method of the OpenAPI schema, the roles
allowed to use it on the objects of the world below. An operation in the
schema without an entry fails `test_every_api_operation_has_a_matrix_entry`,
so a new endpoint cannot land without deciding who may call it. Allowed roles
must not get 401/403/404; every other role must get one of them.
"""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from organisations import services
from organisations.models import Role
from organisations.selectors import current_academic_year
from organisations.tests.factories import make_organisation

ROLES = ("anonymous", "stranger", "student", "parent", "teacher", "administrator", "official", "other_admin")
EVERYONE = set(ROLES)
SIGNED_IN = EVERYONE - {"anonymous"}
ADULTS_WITH_A_ROLE = {"parent", "teacher", "administrator", "official", "other_admin"}
SCHOOL_A_MEMBERS = {"student", "parent", "teacher", "administrator"}
DENIED = {401, 403, 404}

# path -> method -> (allowed roles, path parameters by name -> world key, body)
MATRIX: dict[str, dict[str, tuple[set[str], dict[str, str], dict]]] = {
    "/api/v1/auth/code/": {"post": (EVERYONE, {}, {"phone": "+79990000001"})},
    "/api/v1/auth/token/": {"post": (EVERYONE, {}, {"phone": "+79990000001", "code": "000000"})},
    "/api/v1/auth/logout/": {"post": (SIGNED_IN, {}, {})},
    "/api/v1/auth/logout-all/": {"post": (SIGNED_IN, {}, {})},
    "/api/v1/me/": {"get": (SIGNED_IN, {}, {}), "patch": (SIGNED_IN, {}, {"first_name": "Имя"})},
    # Without a file the upload answers 415 (multipart only): past the permission check.
    "/api/v1/me/photo/": {"put": (SIGNED_IN, {}, {}), "delete": (SIGNED_IN, {}, {})},
    "/api/v1/me/export/": {"get": (SIGNED_IN, {}, {})},
    # No code was sent: 400 code_invalid, past the permission check, and nothing is deleted.
    "/api/v1/me/delete/": {"post": (SIGNED_IN, {}, {"code": "000000"})},
    "/api/v1/regions/": {"get": (SIGNED_IN, {}, {})},
    "/api/v1/organisations/": {"get": (SIGNED_IN, {}, {})},
    "/api/v1/organisations/{organisation_id}/": {"get": (SIGNED_IN - {"stranger"}, {"organisation_id": "school"}, {})},
    "/api/v1/organisations/{organisation_id}/groups/": {
        "get": (SIGNED_IN - {"stranger"}, {"organisation_id": "school"}, {})
    },
    "/api/v1/organisations/{organisation_id}/students/{student_id}/guardianship-codes/": {
        "post": ({"teacher", "administrator"}, {"organisation_id": "school", "student_id": "student"}, {})
    },
    "/api/v1/memberships/{membership_id}/verification-request/": {
        "post": ({"teacher"}, {"membership_id": "teacher_membership"}, {})
    },
    "/api/v1/guardianships/claim/": {"post": (SIGNED_IN, {}, {"code": "ABCDE-FGHJK"})},
    "/api/v1/students/{student_id}/safe-mode/": {
        "get": ({"parent", "teacher", "administrator"}, {"student_id": "student"}, {}),
        "patch": ({"parent", "teacher", "administrator"}, {"student_id": "student"}, {"is_safe_mode": True}),
    },
    "/api/v1/users/": {"get": (SIGNED_IN, {}, {})},
    "/api/v1/users/{user_id}/": {
        "get": ({"student", "parent", "teacher", "administrator"}, {"user_id": "student"}, {})
    },
}


class World:
    def __init__(self) -> None:
        year = current_academic_year()
        self.authority = make_organisation(kind="regional_authority", short_name="Минобр области")
        self.school = make_organisation(kind="school", short_name="Школа А", parent=self.authority)
        self.other_school = make_organisation(kind="school", short_name="Школа Б")
        self.users = {
            role: User.objects.create_user(f"+7990100000{index}", first_name=role.title(), last_name="Тестов")
            for index, role in enumerate(ROLES[1:])
        }
        group = services.study_group_create(actor=None, organisation=self.school, name="7Б", academic_year=year)
        services.study_group_student_add(actor=None, group=group, student=self.users["student"])
        self.teacher_membership = services.study_group_teacher_add(
            actor=None, group=group, teacher=self.users["teacher"]
        )
        services.guardianship_link(
            actor=None, parent=self.users["parent"], student=self.users["student"], organisation=self.school
        )
        services.membership_create(
            actor=None, user=self.users["administrator"], organisation=self.school, role=Role.ADMINISTRATOR
        )
        services.membership_create(
            actor=None, user=self.users["official"], organisation=self.authority, role=Role.OFFICIAL
        )
        services.membership_create(
            actor=None, user=self.users["other_admin"], organisation=self.other_school, role=Role.ADMINISTRATOR
        )
        self.group = group
        self.values = {
            "school": self.school.pk,
            "group": group.pk,
            "student": self.users["student"].pk,
            "teacher_membership": self.users["teacher"].memberships.get().pk,
        }

    def client(self, role: str) -> Client:
        client = APIClient()
        if role != "anonymous":
            client.force_authenticate(self.users[role])
        return client


def schema_operations() -> set[tuple[str, str]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (path, method)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }


@pytest.mark.django_db
def test_every_api_operation_has_a_matrix_entry():
    operations = schema_operations()
    in_matrix = {(path, method) for path, methods in MATRIX.items() for method in methods}

    assert sorted(operations - in_matrix) == [], "API operations without a permission matrix entry"
    assert sorted(in_matrix - operations) == [], "matrix entries for operations that no longer exist"


CASES = [(path, method, role) for path, methods in MATRIX.items() for method in methods for role in ROLES]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method", "role"), CASES, ids=[f"{m.upper()} {p} as {r}" for p, m, r in CASES])
def test_permission_matrix(path, method, role):
    world = World()
    allowed, parameters, body = MATRIX[path][method]
    url = path
    for name, key in parameters.items():
        url = url.replace("{" + name + "}", str(world.values[key]))
    client = world.client(role)

    response = getattr(client, method)(url, data=body or None, format="json")

    if role in allowed:
        assert response.status_code not in DENIED, f"{role} refused: {response.status_code} {response.content[:200]!r}"
    else:
        assert response.status_code in DENIED, f"{role} let through: {response.status_code}"
