"""HTML pages of the adoption app: the officials' dashboard with its CSV
export, the regional roadmaps and the in-product course. Plain forms and
server-drawn SVG: everything works without JavaScript."""

import csv
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from accounts.models import User
from adoption import selectors, services
from adoption.charts import line_chart
from adoption.course import COURSE_STEPS
from adoption.forms import DashboardForm, RoadmapForm
from adoption.models import StageKind
from common.errors import ApplicationError, NotFound, PermissionDenied

FIGURE_TITLES: dict[str, Callable[[], str]] = {
    "educators_writing": lambda: _("Educators writing weekly"),
    "families_reading": lambda: _("Students and parents reading weekly"),
    "chats_migrated": lambda: _("Chats migrated"),
    "officials_active": lambda: _("Officials active weekly"),
    "course_completed": lambda: _("Educators who completed the course"),
}
TARGET_OF = {
    "educators_writing": "target_educators_writing",
    "families_reading": "target_families_reading",
    "chats_migrated": "target_chats_migrated",
    "course_completed": "target_course_completed",
}


def _refusal(error: ApplicationError) -> Exception:
    if isinstance(error, NotFound):
        return Http404(error.message)
    if isinstance(error, PermissionDenied):
        return DjangoPermissionDenied(error.message)
    return error


def _dashboard(request: HttpRequest) -> tuple[selectors.Dashboard, DashboardForm]:
    form = DashboardForm(request.GET)
    if not form.is_valid():
        raise Http404(_("Invalid selection."))
    try:
        dashboard = selectors.dashboard_get(
            user=cast(User, request.user),
            region_code=form.cleaned_data["region"],
            municipality=form.cleaned_data["municipality"],
            organisation_id=form.cleaned_data["organisation"],
            weeks=form.cleaned_data["weeks"] or selectors.WEEKS_DEFAULT,
        )
    except ApplicationError as error:
        raise _refusal(error) from None
    return dashboard, form


@login_required
@require_safe
def dashboard_view(request: HttpRequest) -> HttpResponse:
    """The figures of the official's territory: a chart per figure over the
    weeks, the units one level down for the last week, CSV export."""
    dashboard, form = _dashboard(request)
    services.official_visit_record(user=cast(User, request.user))
    roadmap = dashboard.roadmap
    labels = [week.strftime("%d.%m") for week in dashboard.weeks]
    charts = []
    for key, _top, _bottom in selectors.FIGURES:
        target = getattr(roadmap, TARGET_OF[key]) if roadmap is not None and key in TARGET_OF else None
        values = [unit.shares[key] for unit in dashboard.series]
        charts.append(
            {
                "key": key,
                "title": FIGURE_TITLES[key](),
                "latest": values[-1],
                "target": target,
                "chart": line_chart(labels=labels, values=values, target=target),
            }
        )
    breakdown = [
        {"unit": unit, "shares": unit.shares, "url": "?" + urlencode(unit.url_query) if unit.url_query else ""}
        for unit in dashboard.breakdown
    ]
    progress = None
    stage = None
    if roadmap is not None:
        progress = selectors.roadmap_progress(roadmap=roadmap, latest=dashboard.latest)
        stage = selectors.current_stage(stages=roadmap.stage_list)  # type: ignore[attr-defined]
    regions = (
        selectors.regions_visible(territory=selectors.territory_of(user=cast(User, request.user)))
        if dashboard.level == "country"
        else []
    )
    query = request.GET.copy()
    context: dict[str, Any] = {
        "dashboard": dashboard,
        "form": form,
        "charts": charts,
        "breakdown": breakdown,
        "progress": progress,
        "stage": stage,
        "figure_titles": {key: title() for key, title in FIGURE_TITLES.items()},
        "csv_url": reverse("adoption:dashboard_csv") + ("?" + query.urlencode() if query else ""),
        "regions": regions,
    }
    return render(request, "adoption/dashboard.html", context)


@login_required
@require_safe
def dashboard_csv_view(request: HttpRequest) -> HttpResponse:
    """Every unit of every week of the selection, one line each."""
    dashboard, _form = _dashboard(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="adoption.csv"'
    # Excel opens UTF-8 with a BOM correctly; without one it shows mojibake.
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(
        [
            "week",
            "level",
            "unit",
            "educators",
            "educators_writing",
            "educators_writing_percent",
            "families",
            "families_reading",
            "families_reading_percent",
            "chats_eligible",
            "chats_migrated",
            "chats_migrated_percent",
            "officials",
            "officials_active",
            "officials_active_percent",
            "educators_course_completed",
            "course_completed_percent",
        ]
    )
    for week, unit in dashboard.rows:
        totals, shares = unit.totals, unit.shares
        writer.writerow(
            [
                week.isoformat(),
                dashboard.level,
                unit.name,
                totals["educators"],
                totals["educators_writing"],
                _percent(shares["educators_writing"]),
                totals["families"],
                totals["families_reading"],
                _percent(shares["families_reading"]),
                totals["chats_eligible"],
                totals["chats_migrated"],
                _percent(shares["chats_migrated"]),
                totals["officials"],
                totals["officials_active"],
                _percent(shares["officials_active"]),
                totals["educators_course_completed"],
                _percent(shares["course_completed"]),
            ]
        )
    return response


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def roadmap_view(request: HttpRequest, region_code: str) -> HttpResponse:
    """A region's roadmap: stages, targets and progress; officials of the
    region edit it here."""
    user = cast(User, request.user)
    try:
        roadmap, is_editable = selectors.roadmap_for(user=user, region_code=region_code)
    except ApplicationError as error:
        raise _refusal(error) from None
    stages = {stage.kind: stage for stage in roadmap.stages.all()}
    initial: dict[str, Any] = {field: getattr(roadmap, field) for field in services.TARGET_FIELDS}
    for kind, stage in stages.items():
        initial[kind + "_starts_on"] = stage.starts_on
        initial[kind + "_ends_on"] = stage.ends_on
    status = 200
    if request.method == "POST":
        if not is_editable:
            raise DjangoPermissionDenied(_("Only the region's officials edit its roadmap."))
        form = RoadmapForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.roadmap_update(
                    actor=user,
                    roadmap=roadmap,
                    targets={field: data[field] for field in services.TARGET_FIELDS},
                    stages={kind: (data[kind + "_starts_on"], data[kind + "_ends_on"]) for kind in StageKind.values},
                )
            except ApplicationError as error:
                field = error.extra.get("field")
                form.add_error(field if field in form.fields else None, error.message)
            else:
                messages.success(request, _("Roadmap saved."))
                return redirect("adoption:roadmap", region_code=roadmap.region.code)
        status = 400
    else:
        services.official_visit_record(user=user)
        form = RoadmapForm(initial=initial)
    try:
        dashboard = selectors.dashboard_get(user=user, region_code=region_code, weeks=1)
    except ApplicationError as error:
        raise _refusal(error) from None
    context = {
        "roadmap": roadmap,
        "stages": [stages[kind] for kind in StageKind.values if kind in stages],
        "stage": selectors.current_stage(stages=list(stages.values())),
        "form": form,
        "is_editable": is_editable,
        "progress": selectors.roadmap_progress(roadmap=roadmap, latest=dashboard.latest),
        "figure_titles": {key: title() for key, title in FIGURE_TITLES.items()},
        "dashboard_url": reverse("adoption:dashboard") + "?" + urlencode({"region": roadmap.region.code}),
    }
    return render(request, "adoption/roadmap.html", context, status=status)


@login_required
@require_safe
def course_view(request: HttpRequest) -> HttpResponse:
    """The course's table of contents and how far the person went."""
    progress = selectors.course_progress_of(user=cast(User, request.user))
    return render(
        request,
        "adoption/course.html",
        {"steps": COURSE_STEPS, "progress": progress, "steps_seen": progress.steps_seen if progress else 0},
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def course_step_view(request: HttpRequest, step: int) -> HttpResponse:
    """One step; "Next" (a POST) records it as seen and opens the next one,
    the last step's button completes the course."""
    if not 1 <= step <= len(COURSE_STEPS):
        raise Http404(_("No such step of the course."))
    if request.method == "POST":
        services.course_step_seen(user=cast(User, request.user), step=step, steps_total=len(COURSE_STEPS))
        if step == len(COURSE_STEPS):
            messages.success(request, _("Course completed. Thank you!"))
            return redirect("adoption:course")
        return redirect("adoption:course_step", step=step + 1)
    return render(
        request,
        "adoption/course_step.html",
        {
            "step": COURSE_STEPS[step - 1],
            "number": step,
            "total": len(COURSE_STEPS),
            "is_last": step == len(COURSE_STEPS),
            "previous": step - 1 if step > 1 else None,
        },
    )
