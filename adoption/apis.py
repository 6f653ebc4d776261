"""REST API of the adoption app: the officials' dashboard, regional roadmaps
and the in-product course."""

from typing import Any, cast

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from adoption import selectors, services
from adoption.course import COURSE_STEPS
from adoption.models import Roadmap, StageKind
from common.api import BAD_REQUEST, FORBIDDEN, NOT_AUTHENTICATED, NOT_FOUND
from common.errors import PermissionDenied


def _user(request: Request) -> User:
    return cast(User, request.user)


class FiguresSerializer(serializers.Serializer):
    educators = serializers.IntegerField()
    educators_writing = serializers.IntegerField()
    educators_course_completed = serializers.IntegerField()
    families = serializers.IntegerField()
    families_reading = serializers.IntegerField()
    officials = serializers.IntegerField()
    officials_active = serializers.IntegerField()
    chats_eligible = serializers.IntegerField()
    chats_migrated = serializers.IntegerField()


class SharesSerializer(serializers.Serializer):
    educators_writing = serializers.FloatField(allow_null=True)
    families_reading = serializers.FloatField(allow_null=True)
    chats_migrated = serializers.FloatField(allow_null=True)
    officials_active = serializers.FloatField(allow_null=True)
    course_completed = serializers.FloatField(allow_null=True)


@extend_schema_serializer(component_name="AdoptionUnit")
class UnitSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="Region code, municipality, organisation id or week.")
    name = serializers.CharField()
    totals = FiguresSerializer()
    shares = SharesSerializer(help_text="Percentages with one decimal; null when nobody is counted.")


@extend_schema_serializer(component_name="RoadmapStage")
class StageSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=StageKind.choices)
    starts_on = serializers.DateField()
    ends_on = serializers.DateField()


@extend_schema_serializer(component_name="Roadmap")
class RoadmapSerializer(serializers.Serializer):
    region = serializers.CharField(source="region.code")
    region_name = serializers.CharField(source="region.name")
    academic_year = serializers.IntegerField()
    target_educators_writing = serializers.IntegerField()
    target_families_reading = serializers.IntegerField()
    target_chats_migrated = serializers.IntegerField()
    target_course_completed = serializers.IntegerField()
    stages = serializers.SerializerMethodField()
    is_editable = serializers.SerializerMethodField()

    def get_stages(self, roadmap: Roadmap) -> list[dict[str, Any]]:
        return StageSerializer(roadmap.stages.all(), many=True).data  # type: ignore[return-value]

    def get_is_editable(self, roadmap: Roadmap) -> bool:
        return bool(self.context.get("is_editable"))


class DashboardApi(APIView):
    """The adoption figures of the official's territory, week by week, from
    the weekly aggregates (a constant number of queries)."""

    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="AdoptionDashboard")
    class OutputSerializer(serializers.Serializer):
        level = serializers.ChoiceField(choices=["country", "region", "municipality", "organisation"])
        region = serializers.CharField(allow_null=True)
        municipality = serializers.CharField(allow_blank=True)
        organisation = serializers.IntegerField(allow_null=True)
        weeks = serializers.ListField(child=serializers.DateField())
        series = UnitSerializer(many=True, help_text="One per week: the whole selection.")
        breakdown = UnitSerializer(many=True, help_text="One level down, the last week.")

    class QuerySerializer(serializers.Serializer):
        region = serializers.CharField(max_length=3, required=False, default="")
        municipality = serializers.CharField(max_length=200, required=False, default="")
        organisation = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
        weeks = serializers.IntegerField(
            min_value=1, max_value=selectors.WEEKS_MAX, required=False, default=selectors.WEEKS_DEFAULT
        )

    @extend_schema(
        operation_id="adoption_dashboard",
        tags=["adoption"],
        parameters=[
            OpenApiParameter("region", OpenApiTypes.STR, description="Region code, e.g. 50."),
            OpenApiParameter("municipality", OpenApiTypes.STR, description="With region: one municipality."),
            OpenApiParameter("organisation", OpenApiTypes.INT, description="One organisation."),
            OpenApiParameter("weeks", OpenApiTypes.INT, description="How many weeks back (1–53, default 8)."),
        ],
        responses={
            200: OutputSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
        description="Codes: not_an_official, other_territory (a region, municipality or organisation outside "
        "the official's territory).",
    )
    def get(self, request: Request) -> Response:
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        dashboard = selectors.dashboard_get(
            user=_user(request),
            region_code=data["region"],
            municipality=data["municipality"],
            organisation_id=data["organisation"],
            weeks=data["weeks"],
        )
        services.official_visit_record(user=_user(request))

        def unit(item: selectors.Unit) -> dict[str, Any]:
            return {"key": item.key, "name": item.name, "totals": item.totals, "shares": item.shares}

        return Response(
            self.OutputSerializer(
                {
                    "level": dashboard.level,
                    "region": dashboard.region.code if dashboard.region else None,
                    "municipality": dashboard.municipality,
                    "organisation": dashboard.organisation.pk if dashboard.organisation else None,
                    "weeks": dashboard.weeks,
                    "series": [unit(item) for item in dashboard.series],
                    "breakdown": [unit(item) for item in dashboard.breakdown],
                }
            ).data
        )


class RoadmapApi(APIView):
    """A region's roadmap for the current academic year (GET), changed by
    the region's officials (PATCH)."""

    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="RoadmapUpdate")
    class InputSerializer(serializers.Serializer):
        target_educators_writing = serializers.IntegerField(required=False)
        target_families_reading = serializers.IntegerField(required=False)
        target_chats_migrated = serializers.IntegerField(required=False)
        target_course_completed = serializers.IntegerField(required=False)
        stages = StageSerializer(many=True, required=False)

    @extend_schema(
        operation_id="adoption_roadmap_get",
        tags=["adoption"],
        responses={200: RoadmapSerializer, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request: Request, region_code: str) -> Response:
        roadmap, is_editable = selectors.roadmap_for(user=_user(request), region_code=region_code)
        return Response(RoadmapSerializer(roadmap, context={"is_editable": is_editable}).data)

    @extend_schema(
        operation_id="adoption_roadmap_update",
        tags=["adoption"],
        request=InputSerializer,
        responses={200: RoadmapSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND},
        description="Codes: invalid_target, invalid_date, stage_dates, stage_order (with field); "
        "roadmap_read_only for officials who may only read it.",
    )
    def patch(self, request: Request, region_code: str) -> Response:
        roadmap, is_editable = selectors.roadmap_for(user=_user(request), region_code=region_code)
        if not is_editable:
            raise PermissionDenied(_("Only the region's officials edit its roadmap."), code="roadmap_read_only")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        stages = {stage["kind"]: (stage["starts_on"], stage["ends_on"]) for stage in data.pop("stages", [])}
        roadmap = services.roadmap_update(actor=_user(request), roadmap=roadmap, targets=data, stages=stages)
        return Response(RoadmapSerializer(roadmap, context={"is_editable": True}).data)


@extend_schema_serializer(component_name="CourseProgress")
class CourseSerializer(serializers.Serializer):
    steps = serializers.ListField(child=serializers.DictField(), help_text="[{number, slug, title}]")
    steps_seen = serializers.IntegerField()
    completed_at = serializers.DateTimeField(allow_null=True)


def _course(user: User) -> dict[str, Any]:
    progress = selectors.course_progress_of(user=user)
    return {
        "steps": [
            {"number": number, "slug": step.slug, "title": str(step.title)}
            for number, step in enumerate(COURSE_STEPS, start=1)
        ],
        "steps_seen": progress.steps_seen if progress else 0,
        "completed_at": progress.completed_at if progress else None,
    }


class CourseApi(APIView):
    """The in-product course and how far the signed-in person went."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="course_get", tags=["course"], responses={200: CourseSerializer, 401: NOT_AUTHENTICATED}
    )
    def get(self, request: Request) -> Response:
        return Response(CourseSerializer(_course(_user(request))).data)


class CourseStepApi(APIView):
    """Record that the signed-in person reached a step; the last one
    completes the course."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="course_step_seen",
        tags=["course"],
        request=None,
        responses={200: CourseSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED},
        description="Code invalid_step (field step) for a step that does not exist.",
    )
    def post(self, request: Request, step: int) -> Response:
        services.course_step_seen(user=_user(request), step=step, steps_total=len(COURSE_STEPS))
        return Response(CourseSerializer(_course(_user(request))).data)
