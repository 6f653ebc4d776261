"""The adoption dashboard's figures (issue 6): building the weekly figures
for a region of U people and N read/write events, and for 10 U and 10 N,
in the same run on the same database; the figure `migration.kpi_scaling`
is the ratio of the two build times, which must stay within 12 (linear:
10). The dashboard of the larger region must take the same number of
queries as the smaller one's (`adoption.dashboard_queries`).

Events are what the chat hooks see: reads and writes by people on days;
several events of one person, kind and day collapse into one activity row
exactly as the hooks store them (adoption.services.activity_record), so
the build reads at most one row per person, day and kind. The events are
spread over 8 weeks; the build covers every one of them.

Sizes: BENCH_ADOPTION_USERS (default 20,000) and BENCH_ADOPTION_EVENTS
(default 500,000) are the larger run; the smaller is a tenth. The issue's
full size: BENCH_ADOPTION_USERS=200000 BENCH_ADOPTION_EVENTS=5000000 (on
PostgreSQL: BENCH_DATABASE_URL or DATABASE_URL=postgres://…).
PostgreSQL is used when one of those is set, otherwise SQLite; the output
says which. Each size runs in a child process on a database cleared of
the previous size's figures, activity and memberships."""

import json
import os
import random
import sys
import time

from bench.core import BENCH_DIR, Result, Services, bench_environment, child_json

GOAL_RATIO = 12
WEEKS = 8


def _sizes() -> tuple[int, int]:
    return (
        int(os.environ.get("BENCH_ADOPTION_USERS", "20000")),
        int(os.environ.get("BENCH_ADOPTION_EVENTS", "500000")),
    )


def _environment() -> dict[str, str]:
    environment = bench_environment()
    database_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if database_url:
        environment["DATABASE_URL"] = database_url
        environment.pop("SQLITE_PATH", None)
    else:
        # A database of its own: other benchmarks may run meanwhile.
        environment["SQLITE_PATH"] = str(BENCH_DIR / "bench-adoption.sqlite3")
    environment["EMBEDDED_REDIS_SOCKET_TEST"] = str(BENCH_DIR / "redis-adoption.sock")
    return environment


def run() -> list[Result]:
    users, events = _sizes()
    load = os.getloadavg()[0]
    print(f"  load average {load:.2f}" + (" — a busy machine: timings are unreliable" if load > 1 else ""), flush=True)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    environment = _environment()
    services = Services(environment)
    try:
        small = child_json("bench.bench_adoption", environment, max(1, users // 10), max(1, events // 10), 0)
        large = child_json("bench.bench_adoption", environment, users, events, 1_000_000)
    finally:
        services.close()
    print(f"  database: {large['database']}", flush=True)
    for label, size in (("small", small), ("large", large)):
        print(
            f"  {label}: {size['users']} people, {size['events']} events -> {size['activity_rows']} activity rows;"
            f" build of {WEEKS} weeks {size['seconds']:.2f} s (best of 3);"
            f" dashboard {size['dashboard_queries']} queries,"
            f" {size['dashboard_ms']:.1f} ms; hook {size['hook_us']:.0f} µs/event"
            f" ({size['hook_first_us']:.0f} µs for a person's first of the day)",
            flush=True,
        )
    ratio = large["seconds"] / small["seconds"]
    return [
        Result(
            "migration.kpi_scaling",
            large["seconds"],
            "s",
            small["seconds"],
            f"ratio <= {GOAL_RATIO}",
            ratio <= GOAL_RATIO,
        ),
        Result(
            "adoption.dashboard_queries",
            large["dashboard_queries"],
            "queries",
            small["dashboard_queries"],
            "ratio = 1",
            large["dashboard_queries"] == small["dashboard_queries"],
        ),
    ]


def _child_main(users: int, events: int, offset: int) -> None:
    """In the child process: a region of `users` people in schools of about
    500 under municipal authorities, `events` reads and writes over 8 weeks,
    then time building the figures of every week."""
    import datetime

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from adoption.models import ActivityDay, ActivityKind, CourseProgress, WeeklyFigures
    from adoption.selectors import dashboard_get
    from adoption.services import activity_day, activity_record, week_start, weekly_figures_build
    from organisations.models import Membership, Organisation, OrganisationKind, Region, Role
    from organisations.services import organisation_create, regions_ensure

    randomness = random.Random(offset)
    regions_ensure()
    region = Region.objects.get(code="50")
    # The previous size's rows would be counted again: clear them.
    ActivityDay.objects.all()._raw_delete(ActivityDay.objects.db)
    WeeklyFigures.objects.all()._raw_delete(WeeklyFigures.objects.db)
    CourseProgress.objects.all()._raw_delete(CourseProgress.objects.db)
    Membership.objects.filter(organisation__short_name__startswith="Бенч")._raw_delete(Membership.objects.db)
    # Nothing else refers to the bench's people: they go without a cascade.
    User.objects.filter(first_name="Бенч", phone__startswith="+7999")._raw_delete(User.objects.db)

    regional = organisation_create(
        actor=None, kind=OrganisationKind.REGIONAL_AUTHORITY, short_name=f"Бенч-минобр {offset}", region=region
    )
    schools_count = max(1, users // 500)
    municipalities = max(1, schools_count // 10)
    authorities = [
        organisation_create(
            actor=None,
            kind=OrganisationKind.MUNICIPAL_AUTHORITY,
            short_name=f"Бенч-управление {offset}-{number}",
            parent=regional,
            region=region,
            municipality=f"Бенч-район {number}",
        )
        for number in range(municipalities)
    ]
    schools: list[Organisation] = [
        organisation_create(
            actor=None,
            short_name=f"Бенч-школа {offset}-{number}",
            parent=authorities[number % municipalities],
            region=region,
            municipality=authorities[number % municipalities].municipality,
        )
        for number in range(schools_count)
    ]
    people = User.objects.bulk_create(
        [
            User(phone=f"+7999{(offset + number) % 10_000_000:07d}", password="!", first_name="Бенч")
            for number in range(users)
        ],
        batch_size=5000,
    )
    if people and people[0].pk is None:  # SQLite before 3.35 gives no ids back
        people = list(User.objects.filter(phone__startswith="+7999", first_name="Бенч").order_by("-pk")[:users])
    memberships = []
    for index, person in enumerate(people):
        share = index % 100
        role = Role.TEACHER if share < 8 else Role.STUDENT if share < 68 else Role.PARENT
        memberships.append(Membership(user=person, organisation=schools[index % schools_count], role=role))
    for number, authority in enumerate(authorities):
        memberships.append(Membership(user=people[number], organisation=authority, role=Role.OFFICIAL))
    # The first person also works for the region: the dashboard is theirs.
    memberships.append(Membership(user=people[0], organisation=regional, role=Role.OFFICIAL))
    Membership.objects.bulk_create(memberships, batch_size=5000)
    # Memberships started "now": back-date them so that every week counts them.
    today = activity_day()
    first_week = week_start(today) - datetime.timedelta(days=7 * (WEEKS - 1))
    Membership.objects.filter(organisation__short_name__startswith="Бенч").update(
        started_at=datetime.datetime.combine(first_week, datetime.time.min, tzinfo=datetime.UTC)
    )
    days = [first_week + datetime.timedelta(days=number) for number in range(7 * WEEKS)]
    batch: list[ActivityDay] = []
    for _number in range(events):
        batch.append(
            ActivityDay(
                user_id=people[randomness.randrange(users)].pk,
                day=days[randomness.randrange(len(days))],
                kind=ActivityKind.WRITE if randomness.random() < 0.3 else ActivityKind.READ,
            )
        )
        if len(batch) >= 20000:
            ActivityDay.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    ActivityDay.objects.bulk_create(batch, ignore_conflicts=True)
    rows = ActivityDay.objects.count()
    # Fresh statistics, as a database in service has them: the planner must
    # not guess about a table that just grew a hundredfold.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    # The best of three builds: the machine is shared, and a build that
    # another process slowed down says nothing about the code.
    timings = []
    for _attempt in range(3):
        started = time.perf_counter()
        for number in range(WEEKS):
            weekly_figures_build(week=first_week + datetime.timedelta(days=7 * number))
        timings.append(time.perf_counter() - started)
    seconds = min(timings)

    official = people[0]
    with CaptureQueriesContext(connection) as captured:
        dashboard_started = time.perf_counter()
        dashboard_get(user=official, region_code="50", weeks=WEEKS)
        dashboard_ms = (time.perf_counter() - dashboard_started) * 1000
    queries = len(captured)

    # What a chat event costs the sender: the first of a person's day goes
    # through the gate and inserts a row; every later one is the gate alone
    # (one Redis round trip).
    hook_events = min(2000, users)
    hook_started = time.perf_counter()
    for number in range(hook_events):
        activity_record(user_id=people[number].pk, kind=ActivityKind.READ)
    first_us = (time.perf_counter() - hook_started) / hook_events * 1_000_000
    hook_started = time.perf_counter()
    for number in range(hook_events):
        activity_record(user_id=people[number].pk, kind=ActivityKind.READ)
    hook_us = (time.perf_counter() - hook_started) / hook_events * 1_000_000

    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(
        json.dumps(
            {
                "database": engine,
                "users": users,
                "events": events,
                "activity_rows": rows,
                "seconds": seconds,
                "dashboard_queries": queries,
                "dashboard_ms": dashboard_ms,
                "hook_us": hook_us,
                "hook_first_us": first_us,
            }
        )
    )


if __name__ == "__main__":
    _child_main(*(int(value) for value in sys.argv[1:4]))
