"""Factories for the lessons tests: a school with a class whose homeroom
teacher is a verified educator, meetings made through the services, and the
clients the API and page tests sign in with. (Every lessons test forgets
the directory changes its transaction leaves behind: lessons/tests/conftest.py.)"""

import asyncio
import datetime
import time
from typing import Any

from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from lessons import services
from lessons.models import Meeting, MeetingKind
from lessons.services import AudienceSpec
from organisations import services as organisation_services
from organisations.models import Membership, Role
from organisations.tests.factories import SchoolWithClass, make_school_with_class


def verify_teacher(*, world: SchoolWithClass, teacher: User | None = None) -> User:
    teacher = teacher or world.teacher
    membership = Membership.objects.active().get(user=teacher, organisation=world.school, role=Role.TEACHER)
    organisation_services.verification_decide(actor=world.administrator, membership=membership, approve=True)
    teacher.refresh_from_db()
    return teacher


def make_lesson_world(**fields: Any) -> SchoolWithClass:
    """make_school_with_class with the homeroom teacher verified."""
    world = make_school_with_class(**fields)
    verify_teacher(world=world)
    return world


def in_minutes(minutes: float, now: datetime.datetime | None = None) -> datetime.datetime:
    return (now or timezone.now()) + datetime.timedelta(minutes=minutes)


def make_meeting(
    *,
    world: SchoolWithClass,
    kind: str = MeetingKind.LESSON,
    host: User | None = None,
    starts_at: datetime.datetime | None = None,
    audience: AudienceSpec | None = None,
    duration_minutes: int = 45,
    title: str = "Урок математики",
    now: datetime.datetime | None = None,
    **fields: Any,
) -> Meeting:
    if audience is None:
        if kind == MeetingKind.LESSON:
            audience = AudienceSpec(student_group_ids=(world.group.pk,))
        elif kind == MeetingKind.PARENT_MEETING:
            audience = AudienceSpec(guardian_group_ids=(world.group.pk,))
        elif kind == MeetingKind.STAFF_MEETING:
            audience = AudienceSpec(invite_staff=True)
        else:
            audience = AudienceSpec(user_ids=(world.parent.pk,))
    return services.meeting_create(
        actor=host or world.teacher,
        organisation_id=world.school.pk,
        kind=kind,
        title=title,
        starts_at=starts_at or in_minutes(60 * 24 * 3, now),
        duration_minutes=duration_minutes,
        audience=audience,
        now=now,
        **fields,
    )


def make_parent_meeting_now(world: SchoolWithClass, **fields: Any) -> Meeting:
    """A parent meeting of the class that started five minutes ago."""
    return make_meeting(
        world=world,
        kind=MeetingKind.PARENT_MEETING,
        title="Родительское собрание",
        starts_at=in_minutes(-5),
        **fields,
    )


def make_lesson_now(world: SchoolWithClass, **fields: Any) -> Meeting:
    return make_meeting(world=world, starts_at=in_minutes(-5), **fields)


def directory_changes_forget() -> None:
    """See chats.tests.factories: a test's transaction never commits."""
    connection.__dict__.pop("_parta_directory_changes", None)


def api_client(user: User | None = None) -> APIClient:
    """A REST client signed in as `user` (anonymous for None)."""
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def page_client(user: User | None = None) -> Client:
    """A browser without JavaScript, signed in as `user` (anonymous for None)."""
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


async def until(condition, *, timeout: float = 30.0, what: str = "condition") -> None:
    """Wait until `condition()` holds, e.g. the media worker has applied a
    command that was acknowledged before it got there. The timeout is a
    ceiling against hanging, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        await asyncio.sleep(0.05)
