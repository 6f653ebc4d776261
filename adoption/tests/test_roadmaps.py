"""Regional roadmaps and the in-product course (issue 6 part 4)."""

import datetime

import pytest
from rest_framework.test import APIClient

from adoption.course import COURSE_STEPS
from adoption.models import CourseProgress, Roadmap, RoadmapStage
from adoption.services import activity_day, week_start, weekly_figures_build
from adoption.tests.factories import make_country, make_people
from common.models import AuditEvent
from organisations.models import Role
from organisations.selectors import current_academic_year

pytestmark = pytest.mark.django_db


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def stages(roadmap):
    return {stage.kind: (stage.starts_on, stage.ends_on) for stage in RoadmapStage.objects.filter(roadmap=roadmap)}


def test_a_roadmap_starts_with_the_default_stages_and_targets():
    country = make_country()
    year = current_academic_year()

    response = api(country.municipal_official).get("/api/v1/adoption/roadmaps/50/")

    assert response.status_code == 200
    body = response.json()
    assert (body["academic_year"], body["is_editable"]) == (year, False)
    assert (
        body["target_educators_writing"],
        body["target_families_reading"],
        body["target_chats_migrated"],
        body["target_course_completed"],
    ) == (75, 30, 100, 90)
    assert body["stages"] == [
        {"kind": "preparation", "starts_on": f"{year}-07-01", "ends_on": f"{year}-08-31"},
        {"kind": "active_migration", "starts_on": f"{year}-09-01", "ends_on": f"{year}-10-31"},
        {"kind": "completion", "starts_on": f"{year}-11-01", "ends_on": f"{year}-11-01"},
    ]


def test_the_regions_official_edits_it_and_it_is_audited():
    country = make_country()
    year = current_academic_year()

    response = api(country.regional_official).patch(
        "/api/v1/adoption/roadmaps/50/",
        {
            "target_educators_writing": 80,
            "stages": [{"kind": "active_migration", "starts_on": f"{year}-09-01", "ends_on": f"{year}-10-25"}],
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    roadmap = Roadmap.objects.get(region__code="50", academic_year=year)
    assert roadmap.target_educators_writing == 80
    assert stages(roadmap)["active_migration"] == (datetime.date(year, 9, 1), datetime.date(year, 10, 25))
    entry = AuditEvent.objects.get(action="roadmap_update")
    assert entry.changes == {
        "target_educators_writing": [75, 80],
        "active_migration": [[f"{year}-09-01", f"{year}-10-31"], [f"{year}-09-01", f"{year}-10-25"]],
    }


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"target_families_reading": 130}, "target_families_reading", "invalid_target"),
        (
            {"stages": [{"kind": "preparation", "starts_on": "2026-08-31", "ends_on": "2026-06-01"}]},
            "preparation_ends_on",
            "stage_dates",
        ),
        (
            {"stages": [{"kind": "completion", "starts_on": "2026-10-01", "ends_on": "2026-10-02"}]},
            "stages",
            "stage_order",
        ),
    ],
)
def test_bad_roadmap_input_names_the_field_and_changes_nothing(body, field, code):
    country = make_country()
    client = api(country.regional_official)
    before = client.get("/api/v1/adoption/roadmaps/50/").json()

    response = client.patch("/api/v1/adoption/roadmaps/50/", body, format="json")

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == (code, field)
    assert client.get("/api/v1/adoption/roadmaps/50/").json() == before
    assert not AuditEvent.objects.filter(action="roadmap_update").exists()


def test_only_the_regions_officials_edit_and_others_do_not_even_see():
    country = make_country()

    refused = api(country.municipal_official).patch(
        "/api/v1/adoption/roadmaps/50/", {"target_chats_migrated": 50}, format="json"
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "roadmap_read_only")
    other = api(country.far_official).get("/api/v1/adoption/roadmaps/50/")
    assert (other.status_code, other.json()["code"]) == (403, "other_territory")
    assert (
        api(country.minister)
        .patch("/api/v1/adoption/roadmaps/77/", {"target_chats_migrated": 95}, format="json")
        .status_code
        == 200
    )
    assert Roadmap.objects.get(region__code="50").target_chats_migrated == 100


def test_roadmap_page_edits_without_javascript(client):
    country = make_country()
    client.force_login(country.regional_official)
    year = current_academic_year()
    page = client.get("/adoption/roadmaps/50/")
    assert page.status_code == 200
    assert 'name="target_educators_writing"' in page.content.decode()
    # Date pickers need ISO dates whatever the language of the page.
    assert f'name="preparation_starts_on" value="{year}-07-01"' in page.content.decode()
    data = {
        "target_educators_writing": "75",
        "target_families_reading": "35",
        "target_chats_migrated": "100",
        "target_course_completed": "90",
        "preparation_starts_on": f"{year}-07-01",
        "preparation_ends_on": f"{year}-08-31",
        "active_migration_starts_on": f"{year}-09-01",
        "active_migration_ends_on": f"{year}-10-31",
        "completion_starts_on": f"{year}-11-01",
        "completion_ends_on": f"{year}-11-01",
    }

    bad = client.post("/adoption/roadmaps/50/", {**data, "target_families_reading": "abc"})
    assert bad.status_code == 400
    assert Roadmap.objects.get(region__code="50").target_families_reading == 30
    response = client.post("/adoption/roadmaps/50/", data)
    assert response.status_code == 302
    assert Roadmap.objects.get(region__code="50").target_families_reading == 35
    client.force_login(country.municipal_official)
    assert 'name="target_educators_writing"' not in client.get("/adoption/roadmaps/50/").content.decode()
    assert client.post("/adoption/roadmaps/50/", data).status_code == 403


def test_the_course_is_completed_step_by_step_and_counts_in_the_roadmap(client):
    country = make_country()
    teachers = make_people(country.school, Role.TEACHER, 2)
    client.force_login(teachers[0])

    assert client.get("/course/").status_code == 200
    for step in range(1, len(COURSE_STEPS)):
        assert client.post(f"/course/{step}/").url == f"/course/{step + 1}/"
    assert CourseProgress.objects.get(user=teachers[0]).completed_at is None
    assert client.post(f"/course/{len(COURSE_STEPS)}/").url == "/course/"
    progress = CourseProgress.objects.get(user=teachers[0])
    assert (progress.steps_seen, progress.completed_at is not None) == (len(COURSE_STEPS), True)
    completed_at = progress.completed_at
    # Going through it again does not move the completion.
    api(teachers[0]).post(f"/api/v1/course/steps/{len(COURSE_STEPS)}/")
    assert CourseProgress.objects.get(user=teachers[0]).completed_at == completed_at
    assert api(teachers[1]).post("/api/v1/course/steps/99/").json()["code"] == "invalid_step"
    assert not CourseProgress.objects.filter(user=teachers[1]).exists()

    weekly_figures_build(week=week_start(activity_day()))
    body = api(country.regional_official).get("/api/v1/adoption/dashboard/", {"region": "50"}).json()
    assert body["series"][-1]["shares"]["course_completed"] == 50.0
    page = client.get("/course/").content.decode()
    assert "✓" in page


def test_admin_shows_the_figures_to_superusers_only(client, admin_user):
    country = make_country()
    weekly_figures_build(week=week_start(activity_day()))
    client.force_login(admin_user)
    assert client.get("/admin/adoption/weeklyfigures/").status_code == 200
    assert client.get("/admin/adoption/roadmap/").status_code == 200
    client.force_login(country.regional_official)
    assert client.get("/admin/adoption/weeklyfigures/").status_code in (302, 403)
