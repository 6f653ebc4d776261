"""Reads of the adoption app and who may see them.

An official sees the territory below their authority: the organisations
whose path starts with the path of an authority where they hold an active
official (or administrator) membership. A ministry's officials and
superusers see everything. Roadmaps belong to regions: the officials of a
regional authority edit their region's, the ministry's edit every one;
municipal officials read their region's."""

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, Sum
from django.utils.translation import gettext as _

from accounts.models import User
from adoption.models import CourseProgress, Roadmap, WeeklyFigures
from adoption.services import activity_day, roadmap_ensure, week_start
from common.errors import NotFound, PermissionDenied
from organisations.models import AUTHORITY_KINDS, Membership, Organisation, OrganisationKind, Region, Role
from organisations.selectors import current_academic_year

SUMMED = (
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
# Each figure of the dashboard: (key, numerator, denominator).
FIGURES = (
    ("educators_writing", "educators_writing", "educators"),
    ("families_reading", "families_reading", "families"),
    ("chats_migrated", "chats_migrated", "chats_eligible"),
    ("officials_active", "officials_active", "officials"),
    ("course_completed", "educators_course_completed", "educators"),
)
WEEKS_DEFAULT = 8
WEEKS_MAX = 53


@dataclass(frozen=True)
class Territory:
    """What one person may see of the adoption figures."""

    is_everything: bool = False
    paths: tuple[str, ...] = ()
    region_ids: frozenset[int] = frozenset()
    editable_region_ids: frozenset[int] = frozenset()

    @property
    def is_official(self) -> bool:
        return self.is_everything or bool(self.paths)

    def organisations(self, prefix: str = "") -> Q:
        """A filter of organisations (or of rows whose `prefix` leads to one)
        inside the territory."""
        if self.is_everything:
            return Q()
        condition = Q(pk__in=[])
        for path in self.paths:
            condition |= Q(**{prefix + "path__startswith": path})
        return condition


def territory_of(*, user: User) -> Territory:
    """The territory of `user` (one query)."""
    if not user.is_authenticated or not user.is_active:
        return Territory()
    if user.is_superuser:
        return Territory(is_everything=True)
    rows = list(
        Membership.objects.active()
        .filter(user=user, role__in=(Role.OFFICIAL, Role.ADMINISTRATOR), organisation__kind__in=AUTHORITY_KINDS)
        .values_list("organisation__path", "organisation__kind", "organisation__region_id")
    )
    if any(kind == OrganisationKind.MINISTRY for _path, kind, _region in rows):
        return Territory(is_everything=True)
    return Territory(
        paths=tuple(sorted({path for path, _kind, _region in rows})),
        region_ids=frozenset(region for _path, _kind, region in rows if region is not None),
        editable_region_ids=frozenset(
            region for _path, kind, region in rows if region is not None and kind == OrganisationKind.REGIONAL_AUTHORITY
        ),
    )


def access_territory(*, user: User) -> Territory:
    """The territory of an official; PermissionDenied "not_an_official"
    for everyone else."""
    territory = territory_of(user=user)
    if not territory.is_official:
        raise PermissionDenied(_("Only education officials see the adoption figures."), code="not_an_official")
    return territory


def regions_visible(*, territory: Territory) -> list[Region]:
    regions = Region.objects.all()
    if not territory.is_everything:
        regions = regions.filter(pk__in=territory.region_ids)
    return list(regions)


def access_region(*, territory: Territory, region_code: str) -> Region:
    """The region `region_code` when it is in the territory: NotFound for an
    unknown code, PermissionDenied "other_territory" for another region."""
    region = Region.objects.filter(code=str(region_code)).first()
    if region is None:
        raise NotFound(_("No such region."))
    if not territory.is_everything and region.pk not in territory.region_ids:
        raise PermissionDenied(_("These figures belong to another territory."), code="other_territory")
    return region


# --- The dashboard -------------------------------------------------------------------------------------------


def share(numerator: int, denominator: int) -> float | None:
    """A percentage with one decimal, None when there is nobody to count."""
    if not denominator:
        return None
    return round(100.0 * numerator / denominator, 1)


@dataclass
class Unit:
    """One line of the dashboard: a region, a municipality or an organisation."""

    key: str
    name: str
    totals: dict[str, int]
    url_query: dict[str, str] = field(default_factory=dict)

    @property
    def shares(self) -> dict[str, float | None]:
        return {key: share(self.totals[top], self.totals[bottom]) for key, top, bottom in FIGURES}


@dataclass
class Dashboard:
    level: str  # "country", "region", "municipality", "organisation"
    region: Region | None
    municipality: str
    organisation: Organisation | None
    weeks: list[datetime.date]
    series: list[Unit]  # one per week, the whole selection
    breakdown: list[Unit]  # the units one level down, the last week
    rows: list[tuple[datetime.date, Unit]]  # every unit of every week (CSV)
    roadmap: Roadmap | None = None

    @property
    def latest(self) -> Unit:
        return self.series[-1]


def dashboard_weeks(*, weeks: int, today: datetime.date | None = None) -> list[datetime.date]:
    current = week_start(today or activity_day())
    weeks = max(1, min(WEEKS_MAX, weeks))
    return [current - datetime.timedelta(days=7 * back) for back in range(weeks - 1, -1, -1)]


def dashboard_get(
    *,
    user: User,
    region_code: str = "",
    municipality: str = "",
    organisation_id: int | None = None,
    weeks: int = WEEKS_DEFAULT,
    today: datetime.date | None = None,
) -> Dashboard:
    """The figures of the selection, week by week, from the weekly figures
    only, in at most six queries whatever the size of the territory
    (territory, region, organisation or municipality check, the figures,
    the roadmap and its stages).

    Raises PermissionDenied "not_an_official" and "other_territory" (a
    region, municipality or organisation outside the territory), NotFound
    for an unknown region or organisation."""
    territory = access_territory(user=user)
    week_list = dashboard_weeks(weeks=weeks, today=today)
    rows = WeeklyFigures.objects.filter(week__gte=week_list[0], week__lte=week_list[-1]).filter(
        territory.organisations("organisation__")
    )
    region = None
    organisation = None
    municipality = (municipality or "").strip()
    if organisation_id is not None:
        organisation = Organisation.objects.select_related("region").filter(pk=organisation_id).first()
        if organisation is None:
            raise NotFound(_("No such organisation."))
        if not territory.is_everything and not any(organisation.path.startswith(path) for path in territory.paths):
            raise PermissionDenied(_("These figures belong to another territory."), code="other_territory")
        region = organisation.region
        municipality = organisation.municipality
        level = "organisation"
        rows = rows.filter(organisation=organisation)
        group = ("organisation_id", "organisation__short_name")
    elif region_code:
        region = access_region(territory=territory, region_code=region_code)
        rows = rows.filter(organisation__region=region)
        if municipality:
            in_territory = Organisation.objects.filter(region=region, municipality=municipality).filter(
                territory.organisations()
            )
            if not in_territory.exists():
                raise PermissionDenied(_("These figures belong to another territory."), code="other_territory")
            level = "municipality"
            rows = rows.filter(organisation__municipality=municipality)
            group = ("organisation_id", "organisation__short_name")
        else:
            level = "region"
            group = ("organisation__municipality", "organisation__municipality")
    else:
        level = "country"
        group = ("organisation__region__code", "organisation__region__name")
    totals = list(
        rows.values("week", *dict.fromkeys(group)).annotate(**{name: Sum(name) for name in SUMMED}).order_by("week")
    )
    by_week: dict[datetime.date, dict[str, int]] = {week: dict.fromkeys(SUMMED, 0) for week in week_list}
    units: list[tuple[datetime.date, Unit]] = []
    for row in totals:
        figures = {name: int(row[name] or 0) for name in SUMMED}
        for name in SUMMED:
            by_week[row["week"]][name] += figures[name]
        key = str(row[group[0]] if row[group[0]] is not None else "")
        units.append((row["week"], Unit(key=key, name=str(row[group[1]] or ""), totals=figures)))
    units.sort(key=lambda item: (item[0], item[1].name, item[1].key))
    for _week, unit in units:
        unit.url_query = _drill_down(level=level, region=region, municipality=municipality, key=unit.key)
    series = [Unit(key=week.isoformat(), name=week.isoformat(), totals=by_week[week]) for week in week_list]
    breakdown = [unit for week, unit in units if week == week_list[-1]] if level != "organisation" else []
    roadmap = None
    if region is not None:
        roadmap = Roadmap.objects.filter(region=region, academic_year=current_academic_year(today)).first()
        if roadmap is not None:
            # Stages are read once here so that the page adds no query.
            roadmap.stage_list = list(roadmap.stages.all())  # type: ignore[attr-defined]
    return Dashboard(
        level=level,
        region=region,
        municipality=municipality,
        organisation=organisation,
        weeks=week_list,
        series=series,
        breakdown=breakdown,
        rows=units,
        roadmap=roadmap,
    )


def _drill_down(*, level: str, region: Region | None, municipality: str, key: str) -> dict[str, str]:
    if level == "country":
        return {"region": key}
    if level == "region" and region is not None and key:
        return {"region": region.code, "municipality": key}
    if level == "municipality":
        return {"organisation": key}
    return {}


# --- Roadmaps ------------------------------------------------------------------------------------------------


def roadmap_editable(*, territory: Territory, region: Region) -> bool:
    return territory.is_everything or region.pk in territory.editable_region_ids


def roadmap_for(*, user: User, region_code: str, academic_year: int | None = None) -> tuple[Roadmap, bool]:
    """The roadmap of a region in the territory of `user` (created with the
    defaults when first asked for) and whether `user` may edit it. Raises
    like access_region."""
    territory = access_territory(user=user)
    region = access_region(territory=territory, region_code=region_code)
    roadmap = roadmap_ensure(region=region, academic_year=academic_year or current_academic_year())
    return roadmap, roadmap_editable(territory=territory, region=region)


@dataclass
class TargetProgress:
    key: str
    target: int
    actual: float | None

    @property
    def is_met(self) -> bool:
        return self.actual is not None and self.actual >= self.target


def roadmap_progress(*, roadmap: Roadmap, latest: Unit) -> list[TargetProgress]:
    """Each target of `roadmap` against the latest week's figures."""
    shares = latest.shares
    return [
        TargetProgress("educators_writing", roadmap.target_educators_writing, shares["educators_writing"]),
        TargetProgress("families_reading", roadmap.target_families_reading, shares["families_reading"]),
        TargetProgress("chats_migrated", roadmap.target_chats_migrated, shares["chats_migrated"]),
        TargetProgress("course_completed", roadmap.target_course_completed, shares["course_completed"]),
    ]


def current_stage(*, stages: list[Any], today: datetime.date | None = None) -> Any:
    today = today or activity_day()
    for stage in stages:
        if stage.starts_on <= today <= stage.ends_on:
            return stage
    return None


def course_progress_of(*, user: User) -> CourseProgress | None:
    return CourseProgress.objects.filter(user=user).first()
