"""Lessons and meetings in the Django admin.

An organisation's administrators see the meetings of the organisations they
administer (scoped like the directory: organisations.admin.ScopedModelAdmin)
with their sittings, invitation rules, guest links (never a token: only its
hash is kept) and who asked to join; they may cancel meetings, which goes
through the service so that the invitees are told. Scheduling and changes
happen on the portal's pages, where the rules and notifications live.
Reminders, notifications and reminder choices are personal: superusers only,
read-only."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from common.errors import ApplicationError
from lessons import services
from lessons.models import (
    AttendanceSession,
    JoinLink,
    Meeting,
    MeetingAudience,
    MeetingNotification,
    Occurrence,
    Participant,
    Recording,
    Reminder,
    ReminderPreference,
)
from organisations.admin import ScopedModelAdmin, organisation_in_scope, user_may_use_admin


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return user_may_use_admin(request)


class OccurrenceInline(ReadOnlyInline):
    model = Occurrence
    fields = ("sequence", "starts_at", "ends_at", "cancelled_at")
    readonly_fields = fields
    ordering = ("starts_at",)


class AudienceInline(ReadOnlyInline):
    model = MeetingAudience
    fields = ("kind", "study_group", "user")
    readonly_fields = fields


class JoinLinkInline(ReadOnlyInline):
    model = JoinLink
    fields = ("label", "guest_name", "created_by", "created_at", "expires_at", "revoked_at", "removed_at")
    readonly_fields = fields


class ScopedReadOnlyAdmin(ScopedModelAdmin):
    """Viewing is scoped like the directory; nothing is added, changed or
    deleted here except through an action that calls a service."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Meeting)
class MeetingAdmin(ScopedReadOnlyAdmin):
    list_display = ("title", "kind", "organisation", "host", "starts_at", "repeats_weekly", "cancelled_at")
    list_filter = (
        "kind",
        ("cancelled_at", admin.EmptyFieldListFilter),
        ("organisation", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("organisation", "host")
    search_fields = ("title", "host__last_name", "organisation__short_name")
    date_hierarchy = "starts_at"
    fields = (
        "organisation",
        "kind",
        "title",
        "description",
        "host",
        "time_zone",
        "starts_at",
        "duration_minutes",
        "repeats_weekly",
        "repeat_until",
        "lobby_for_guests",
        "lobby_for_everyone",
        "is_recording_enabled",
        "cancelled_at",
        "cancelled_by",
        "revision",
        "created_at",
    )
    readonly_fields = fields
    inlines = (AudienceInline, OccurrenceInline, JoinLinkInline)
    actions = ("cancel_meetings",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Needed for the cancel action; every field stays read-only.
        return self._may_administer(request, obj)

    @admin.action(description=gettext_lazy("Cancel the selected meetings (the invitees are told)"))
    def cancel_meetings(self, request: HttpRequest, queryset: QuerySet[Meeting]) -> None:
        actor = request.user
        assert isinstance(actor, User)
        cancelled = 0
        for meeting in queryset.filter(cancelled_at__isnull=True):
            try:
                services.meeting_cancel(actor=actor, meeting_id=meeting.pk)
            except ApplicationError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                cancelled += 1
        self.message_user(request, _("Meetings cancelled: %(count)d.") % {"count": cancelled}, messages.SUCCESS)


class SessionInline(ReadOnlyInline):
    model = AttendanceSession
    fields = ("joined_at", "left_at")
    readonly_fields = fields


@admin.register(Participant)
class ParticipantAdmin(ScopedReadOnlyAdmin):
    organisation_lookup = "occurrence__meeting__organisation"
    list_display = ("display_name", "occurrence", "role", "status", "requested_at")
    list_filter = ("role", "status")
    list_select_related = ("occurrence", "occurrence__meeting")
    search_fields = ("display_name", "occurrence__meeting__title")
    fields = (
        "occurrence",
        "user",
        "join_link",
        "display_name",
        "role",
        "status",
        "requested_at",
        "decided_at",
        "decided_by",
    )
    readonly_fields = fields
    inlines = (SessionInline,)

    def _may_administer(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if not user_may_use_admin(request):
            return False
        if obj is None or obj.pk is None:
            return True
        assert isinstance(obj, Participant)
        return organisation_in_scope(request, obj.occurrence.meeting.organisation_id)


class SuperuserReadOnlyAdmin(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Reminder)
class ReminderAdmin(SuperuserReadOnlyAdmin):
    list_display = ("occurrence", "user", "kind", "claimed_at", "sms_status", "sms_sent_at")
    list_filter = ("kind", "sms_status")
    fields = list_display
    readonly_fields = fields


@admin.register(MeetingNotification)
class MeetingNotificationAdmin(SuperuserReadOnlyAdmin):
    list_display = ("user", "meeting", "kind", "created_at", "read_at")
    list_filter = ("kind",)
    fields = ("user", "meeting", "occurrence", "kind", "key", "created_at", "read_at")
    readonly_fields = fields


@admin.register(ReminderPreference)
class ReminderPreferenceAdmin(SuperuserReadOnlyAdmin):
    list_display = ("user", "by_sms", "updated_at")
    fields = list_display
    readonly_fields = fields


@admin.register(Recording)
class RecordingAdmin(SuperuserReadOnlyAdmin):
    list_display = ("occurrence", "status", "started_at", "finished_at", "duration_seconds", "size")
    list_filter = ("status",)
    fields = (
        "occurrence",
        "status",
        "file",
        "started_at",
        "started_by",
        "finished_at",
        "duration_seconds",
        "size",
        "chat_message",
        "call_message",
    )
    readonly_fields = fields
