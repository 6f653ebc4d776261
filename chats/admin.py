"""Chats in the Django admin: for the platform's superusers only. Messages
are private correspondence, so an organisation's administrators (who use
the admin for the directory) do not see them here; moderation happens in the
chats themselves. Everything is read-only except resolving reports."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from chats.models import Chat, ChatMember, Message, MessageReport, OfficeHours, ScheduledMessage
from chats.services import moderation


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


class ChatMemberInline(admin.TabularInline):
    model = ChatMember
    fields = ("user", "role", "joined_at", "left_at", "muted_until", "is_synced", "is_removed", "last_read_seq")
    readonly_fields = fields
    raw_id_fields = ("user",)
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)


@admin.register(Chat)
class ChatAdmin(SuperuserReadOnlyAdmin):
    list_display = ("__str__", "kind", "organisation", "last_seq", "is_announcement_only", "is_archived", "updated_at")
    list_filter = ("kind", "is_archived", "is_verified")
    list_select_related = ("organisation",)
    search_fields = ("title", "organisation__short_name")
    fields = (
        "kind",
        "title",
        "description",
        "organisation",
        "study_group",
        "created_by",
        "last_seq",
        "is_announcement_only",
        "opens_at",
        "closes_at",
        "is_verified",
        "is_public",
        "is_archived",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [ChatMemberInline]


@admin.register(Message)
class MessageAdmin(SuperuserReadOnlyAdmin):
    list_display = ("__str__", "chat", "author", "kind", "created_at", "deleted_at")
    list_filter = ("kind",)
    list_select_related = ("chat", "author")
    raw_id_fields = ("chat", "author", "reply_to", "deleted_by")
    fields = ("chat", "seq", "author", "kind", "client_id", "body", "reply_to", "created_at", "edited_at", "deleted_at")
    readonly_fields = fields


@admin.register(MessageReport)
class MessageReportAdmin(SuperuserReadOnlyAdmin):
    list_display = ("__str__", "reporter", "reason", "created_at", "resolved_at")
    list_filter = (("resolved_at", admin.EmptyFieldListFilter),)
    list_select_related = ("reporter", "message")
    fields = ("message", "message_body", "reporter", "reason", "created_at", "resolved_at", "resolved_by")
    readonly_fields = fields
    actions = ["resolve"]

    @admin.display(description=gettext_lazy("text"))
    def message_body(self, report: MessageReport) -> str:
        return report.message.body

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Needed for the "resolve" action; every field stays read-only.
        return self.has_module_permission(request)

    @admin.action(description=gettext_lazy("Mark as resolved"))
    def resolve(self, request: HttpRequest, queryset: QuerySet[MessageReport]) -> None:
        actor = request.user
        assert isinstance(actor, User)
        count = moderation.message_reports_resolve(actor=actor, report_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, _("Reports resolved: %(count)d.") % {"count": count}, messages.SUCCESS)


@admin.register(OfficeHours)
class OfficeHoursAdmin(SuperuserReadOnlyAdmin):
    list_display = ("user", "starts_at", "ends_at", "weekdays", "time_zone")
    list_select_related = ("user",)
    fields = list_display
    readonly_fields = fields


@admin.register(ScheduledMessage)
class ScheduledMessageAdmin(SuperuserReadOnlyAdmin):
    list_display = ("__str__", "chat", "author", "deliver_at", "delivered_message", "cancelled_at")
    list_select_related = ("chat", "author")
    fields = ("chat", "author", "body", "deliver_at", "delivered_message", "cancelled_at", "created_at")
    readonly_fields = fields
