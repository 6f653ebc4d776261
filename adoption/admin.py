"""Adoption in the Django admin: read-only, for superusers. Roadmaps are
edited on the portal's page (/adoption/roadmaps/<code>/), where the rules,
the scope of officials and the audit live; figures come from the weekly
build."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from adoption.models import CourseProgress, Roadmap, RoadmapStage, WeeklyFigures


class SuperuserReadOnly(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StageInline(admin.TabularInline):
    model = RoadmapStage
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "starts_on", "ends_on"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Roadmap)
class RoadmapAdmin(SuperuserReadOnly):
    list_display = [
        "region",
        "academic_year",
        "target_educators_writing",
        "target_families_reading",
        "target_chats_migrated",
        "target_course_completed",
        "updated_at",
    ]
    list_filter = ["academic_year"]
    inlines = [StageInline]


@admin.register(WeeklyFigures)
class WeeklyFiguresAdmin(SuperuserReadOnly):
    list_display = [
        "week",
        "organisation",
        "educators",
        "educators_writing",
        "families",
        "families_reading",
        "chats_eligible",
        "chats_migrated",
        "officials",
        "officials_active",
        "educators_course_completed",
    ]
    list_filter = ["week"]
    list_select_related = ["organisation"]
    search_fields = ["organisation__short_name", "organisation__inn"]


@admin.register(CourseProgress)
class CourseProgressAdmin(SuperuserReadOnly):
    list_display = ["user", "steps_seen", "started_at", "completed_at"]
    list_select_related = ["user"]
