"""Weekly figures and the officials' dashboard: exact figures, idempotent
builds, scoping (another territory -> 403), constant query counts, CSV and
the server-drawn charts (issue 6 parts 4 and 5)."""

import csv
import datetime
import io
import re

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from adoption.models import ActivityDay, ActivityKind, CourseProgress, WeeklyFigures
from adoption.selectors import dashboard_get
from adoption.services import activity_day, week_start, weekly_figures_build, weekly_figures_refresh
from adoption.tests.factories import make_country, make_people
from chats.models import Chat, ChatKind
from migration.models import LegacyChat
from organisations.models import Role
from organisations.tests.factories import make_organisation

pytestmark = pytest.mark.django_db

# Memberships start when they are created: the figures are of this week.
TODAY = activity_day()
WEEK = week_start(TODAY)


def active(users, kind, day=TODAY):
    ActivityDay.objects.bulk_create([ActivityDay(user=user, day=day, kind=kind) for user in users])


@pytest.fixture
def country():
    country = make_country()
    teachers = make_people(country.school, Role.TEACHER, 4)
    students = make_people(country.school, Role.STUDENT, 6)
    parents = make_people(country.school, Role.PARENT, 4)
    # 3 of 4 teachers wrote; one only read.
    active(teachers[:3], ActivityKind.WRITE)
    active(teachers[3:], ActivityKind.READ)
    # 2 students read, one parent wrote (writing includes having read).
    active(students[:2], ActivityKind.READ)
    active(parents[:1], ActivityKind.WRITE)
    # Last week's activity does not count this week.
    active(parents[1:], ActivityKind.READ, day=WEEK - datetime.timedelta(days=1))
    CourseProgress.objects.create(user=teachers[0], steps_seen=5, completed_at=timezone.now())
    active([country.regional_official], ActivityKind.VISIT)
    other_teachers = make_people(country.other_school, Role.TEACHER, 2)
    active(other_teachers[:1], ActivityKind.WRITE)
    far_teachers = make_people(country.far_school, Role.TEACHER, 5)
    active(far_teachers, ActivityKind.WRITE)
    chat = Chat.objects.create(kind=ChatKind.GROUP, title="7А — родители", organisation=country.school)
    for peer_id, migrated in ((2000000001, chat), (2000000002, None), (2000000003, None), (2000000004, chat)):
        _legacy_chat(country.school, peer_id, migrated)
    weekly_figures_build(week=WEEK)
    country.teachers = teachers
    return country


def _legacy_chat(organisation, peer_id, chat):
    fields = {field.name for field in LegacyChat._meta.concrete_fields}
    values = {"organisation": organisation, "peer_id": peer_id, "chat": None}
    if chat is not None and not LegacyChat.objects.filter(chat=chat).exists():
        values["chat"] = chat
    elif chat is not None:
        values["chat"] = Chat.objects.create(kind=ChatKind.GROUP, title=str(peer_id), organisation=organisation)
    if "migrated_at" in fields and chat is not None:
        values["migrated_at"] = timezone.now()
    if "title" in fields:
        values["title"] = "Чат " + str(peer_id)
    return LegacyChat.objects.create(**values)


def figures(organisation):
    return (
        WeeklyFigures.objects.filter(organisation=organisation, week=WEEK)
        .values(
            "educators",
            "educators_writing",
            "educators_course_completed",
            "families",
            "families_reading",
            "officials",
            "officials_active",
            "chats_eligible",
            "chats_migrated",
        )
        .get()
    )


def test_weekly_figures_of_a_school_are_exact(country):
    assert figures(country.school) == {
        "educators": 4,
        "educators_writing": 3,
        "educators_course_completed": 1,
        "families": 10,
        "families_reading": 3,
        "officials": 0,
        "officials_active": 0,
        "chats_eligible": 4,
        "chats_migrated": 2,
    }
    assert figures(country.regional)["officials"] == 1
    assert figures(country.regional)["officials_active"] == 1
    assert figures(country.municipal)["officials_active"] == 0


def test_building_again_changes_nothing(country):
    before = list(WeeklyFigures.objects.order_by("organisation_id").values())

    weekly_figures_build(week=WEEK + datetime.timedelta(days=3))

    after = list(WeeklyFigures.objects.order_by("organisation_id").values())
    strip = lambda rows: [{k: v for k, v in row.items() if k not in ("id", "built_at")} for row in rows]  # noqa: E731
    assert strip(after) == strip(before)


def test_refresh_builds_this_week_and_the_last(country):
    assert weekly_figures_refresh(today=TODAY) == [WEEK - datetime.timedelta(days=7), WEEK]
    # The memberships began this week: last week had nobody to count.
    assert not WeeklyFigures.objects.filter(week=WEEK - datetime.timedelta(days=7)).exists()
    assert figures(country.school)["educators_writing"] == 3


def test_padding_a_week_with_bursts_does_not_raise_the_share(country):
    # The fourth teacher sends 200 empty or repeated messages: still not writing.
    from adoption.services import message_written

    moment = datetime.datetime.combine(TODAY, datetime.time(12), tzinfo=datetime.UTC)
    message_written(user_id=country.teachers[3].pk, body="", moment=moment)
    for _index in range(100):
        message_written(user_id=country.teachers[3].pk, body="ок", moment=moment)
        message_written(user_id=country.teachers[3].pk, body="!!!", moment=moment)
    weekly_figures_build(week=WEEK)

    assert figures(country.school)["educators_writing"] == 3


def test_region_dashboard_sums_its_municipalities(country):
    dashboard = dashboard_get(user=country.regional_official, region_code="50", weeks=2, today=TODAY)

    assert dashboard.level == "region"
    assert dashboard.weeks == [WEEK - datetime.timedelta(days=7), WEEK]
    latest = dashboard.latest
    assert latest.totals["educators"] == 6
    assert latest.totals["educators_writing"] == 4
    assert latest.shares["educators_writing"] == 66.7
    assert latest.shares["families_reading"] == 30.0
    assert latest.shares["chats_migrated"] == 50.0
    assert {unit.name: unit.shares["educators_writing"] for unit in dashboard.breakdown} == {
        "": None,
        "Королёв": 50.0,
        "Химки": 75.0,
    }
    assert dashboard.series[0].shares["educators_writing"] is None


def test_the_ministry_sees_every_region(country):
    dashboard = dashboard_get(user=country.minister, today=TODAY)

    # "" is the federal level: the ministry itself has no region.
    assert {unit.key: unit.totals["educators_writing"] for unit in dashboard.breakdown} == {"": 0, "50": 4, "77": 5}


@pytest.mark.parametrize(
    ("official", "query"),
    [
        ("regional_official", {"region": "77"}),
        ("far_official", {"region": "50"}),
        ("municipal_official", {"region": "50", "municipality": "Королёв"}),
        ("municipal_official", {"organisation": "other_school"}),
        ("far_official", {"organisation": "school"}),
    ],
)
def test_an_official_cannot_open_another_territory(country, client, official, query):
    query = {key: str(getattr(country, value).pk) if key == "organisation" else value for key, value in query.items()}
    api = APIClient()
    api.force_authenticate(getattr(country, official))
    client.force_login(getattr(country, official))

    response = api.get("/api/v1/adoption/dashboard/", query)
    assert response.status_code == 403
    assert response.json()["code"] == "other_territory"
    assert client.get("/adoption/", query).status_code == 403
    assert client.get("/adoption/export.csv", query).status_code == 403


def test_people_who_are_not_officials_see_no_figures(country, client):
    api = APIClient()
    api.force_authenticate(country.teachers[0])
    client.force_login(country.teachers[0])

    assert api.get("/api/v1/adoption/dashboard/").json()["code"] == "not_an_official"
    assert client.get("/adoption/").status_code == 403


def test_a_municipal_official_sees_their_municipality_only(country):
    dashboard = dashboard_get(user=country.municipal_official, region_code="50", today=TODAY)

    assert dashboard.latest.totals["educators"] == 4
    assert [unit.name for unit in dashboard.breakdown] == ["Химки"]


def test_the_dashboard_takes_the_same_queries_for_a_bigger_region(country, django_assert_num_queries):
    def count_queries():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            dashboard_get(user=country.regional_official, region_code="50", municipality="Химки", today=TODAY)
        return len(captured)

    small = count_queries()
    for number in range(15):
        school = make_organisation(
            short_name=f"Школа {number}", parent=country.municipal, region=country.school.region, municipality="Химки"
        )
        make_people(school, Role.TEACHER, 2)
    weekly_figures_build(week=WEEK)

    assert count_queries() == small
    with django_assert_num_queries(small):
        dashboard = dashboard_get(user=country.regional_official, region_code="50", municipality="Химки", today=TODAY)
    # The municipal authority (its officials) and 16 schools.
    assert len(dashboard.breakdown) == 17


def test_csv_export_has_every_unit_of_every_week(country, client):
    client.force_login(country.regional_official)

    response = client.get("/adoption/export.csv", {"region": "50", "weeks": "1"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [(row["week"], row["unit"]) for row in rows] == [
        (WEEK.isoformat(), ""),
        (WEEK.isoformat(), "Королёв"),
        (WEEK.isoformat(), "Химки"),
    ]
    himki = rows[2]
    assert (himki["educators"], himki["educators_writing"], himki["educators_writing_percent"]) == ("4", "3", "75.0")
    assert (himki["chats_eligible"], himki["chats_migrated"], himki["chats_migrated_percent"]) == ("4", "2", "50.0")


def test_dashboard_page_draws_charts_without_javascript(country, client, settings):
    client.force_login(country.regional_official)

    response = client.get("/adoption/", {"region": "50"})

    page = response.content.decode()
    assert response.status_code == 200
    assert page.count("<svg") == 5
    # Coordinates keep a decimal point in the Russian locale too.
    assert 'y1="132.0"' in page
    assert not re.search(r'(?:x|y|x1|x2|y1|y2|cx|cy)="[0-9]+,[0-9]', page)
    # Charts are drawn on the server: the only script is the site-wide
    # pwa.js (service worker, notifications).
    assert re.findall(r"<script[^>]*>", page) == [re.search(r"<script[^>]*pwa\.js[^>]*>", page).group(0)]
    assert "Химки" in page
    assert "export.csv?region=50" in page
    assert ActivityDay.objects.filter(user=country.regional_official, kind=ActivityKind.VISIT).exists()
