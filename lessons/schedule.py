"""Time arithmetic of the schedule, free of the database: wall-clock times
in an organisation's time zone, weekly series, ISO weeks.

A weekly series keeps its local time ("Tuesdays at 18:30 in Yekaterinburg"):
each occurrence is the same wall-clock time seven days later, converted to
UTC on its own, so a zone whose offset changes (DST elsewhere, or a future
change of law here) never shifts the lessons by an hour."""

import datetime
import re
import zoneinfo
from functools import cache

from django.utils.translation import gettext as _

from common.errors import ApplicationError

WEEK = datetime.timedelta(days=7)
OCCURRENCES_MAX = 60
SERIES_MAX_DAYS = 366
_ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@cache
def zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone called `name`; raises ApplicationError "invalid_time_zone"."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ApplicationError(_("Unknown time zone."), code="invalid_time_zone") from None


def local_to_utc(local: datetime.datetime, time_zone: str) -> datetime.datetime:
    """A naive wall-clock time in `time_zone` as an aware UTC datetime. An
    aware datetime is taken as it is (its instant does not change)."""
    if local.tzinfo is not None:
        return local.astimezone(datetime.UTC)
    # The round trip settles a wall-clock time that falls into a DST gap on
    # the first real instant after it.
    aware = local.replace(tzinfo=zone(time_zone))
    return aware.astimezone(datetime.UTC)


def utc_to_local(moment: datetime.datetime, time_zone: str) -> datetime.datetime:
    return moment.astimezone(zone(time_zone))


def series_starts(
    *,
    starts_at: datetime.datetime,
    time_zone: str,
    repeats_weekly: bool,
    repeat_until: datetime.date | None,
) -> list[datetime.datetime]:
    """The UTC start of every occurrence: just `starts_at`, or the same local
    time every week up to and including the local date `repeat_until`.
    Raises ApplicationError "series_too_long" past OCCURRENCES_MAX weeks or
    a year, and "invalid_repeat_until" when the end is before the start."""
    if not repeats_weekly:
        return [starts_at.astimezone(datetime.UTC)]
    local_start = utc_to_local(starts_at, time_zone)
    if repeat_until is None:
        raise ApplicationError(
            _("Say until which date the meeting repeats."), code="invalid_repeat_until", extra={"field": "repeat_until"}
        )
    if repeat_until < local_start.date():
        raise ApplicationError(
            _("The series cannot end before it starts."), code="invalid_repeat_until", extra={"field": "repeat_until"}
        )
    if (repeat_until - local_start.date()).days > SERIES_MAX_DAYS:
        raise ApplicationError(
            _("A series may last at most a year."), code="series_too_long", extra={"field": "repeat_until"}
        )
    wall_clock = local_start.replace(tzinfo=None)
    starts: list[datetime.datetime] = []
    while wall_clock.date() <= repeat_until:
        if len(starts) >= OCCURRENCES_MAX:
            raise ApplicationError(
                _("A series may have at most %(count)d meetings.") % {"count": OCCURRENCES_MAX},
                code="series_too_long",
                extra={"field": "repeat_until"},
            )
        starts.append(local_to_utc(wall_clock, time_zone))
        wall_clock += WEEK
    return starts


def iso_week_parse(value: str) -> datetime.date:
    """The Monday of an ISO week "2025-W07"; raises ApplicationError "invalid_week"."""
    match = _ISO_WEEK.match(value.strip()) if isinstance(value, str) else None
    invalid = ApplicationError(_("A week looks like 2025-W07."), code="invalid_week", extra={"field": "week"})
    if match is None:
        raise invalid
    try:
        return datetime.date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        raise invalid from None


def iso_week_name(day: datetime.date) -> str:
    year, week, _weekday = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_monday(day: datetime.date) -> datetime.date:
    return day - datetime.timedelta(days=day.weekday())


def week_bounds(monday: datetime.date, time_zone: str) -> tuple[datetime.datetime, datetime.datetime]:
    """The UTC instants where the local week starting on `monday` begins and ends."""
    start = local_to_utc(datetime.datetime.combine(monday, datetime.time()), time_zone)
    end = local_to_utc(datetime.datetime.combine(monday + WEEK, datetime.time()), time_zone)
    return start, end
