"""List endpoints answer in a fixed number of queries, however long the list."""

import datetime

import pytest
from django.utils import timezone

from miniapps import services
from miniapps.tests.factories import api_for, make_app
from organisations.models import Role
from organisations.tests.factories import make_school_with_class

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("apps", [1, 6])
def test_the_app_list_is_two_queries(apps, django_assert_num_queries):
    world = make_school_with_class(students=1)
    for number in range(apps):
        make_app(slug=f"app{number}", audience=(Role.STUDENT,), organisation=world.school if number % 2 else None)
    client = api_for(world.student)

    # The person's roles, the apps (with their organisations).
    with django_assert_num_queries(2):
        response = client.get("/api/v1/miniapps/")

    assert len(response.json()) == apps


@pytest.mark.parametrize("students", [1, 5])
def test_the_marks_list_of_a_class_is_a_fixed_number_of_queries(students, django_assert_num_queries):
    world = make_school_with_class(students=students)
    for student in world.students:
        for subject in ("Физика", "Химия"):
            services.mark_create(
                actor=world.teacher,
                group_id=world.group.pk,
                student_id=student.pk,
                subject=subject,
                date=timezone.localdate(),
                value="5",
            )
    services.homework_create(
        actor=world.teacher,
        group_id=world.group.pk,
        subject="Физика",
        due_date=timezone.localdate() + datetime.timedelta(days=1),
        text="§ 1",
    )
    client = api_for(world.teacher)

    # The class (the homeroom teacher is on it), the marks with their students.
    with django_assert_num_queries(2):
        marks = client.get(f"/api/v1/diary/groups/{world.group.pk}/marks/")
    with django_assert_num_queries(2):
        client.get(f"/api/v1/diary/groups/{world.group.pk}/homework/")

    assert len(marks.json()) == 2 * students
