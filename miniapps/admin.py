"""The mini-app registry in the admin (platform superusers), and read-only
lists of the diary. An app's secret is shown once, in a message, when the
app is created and when it is rotated; the change form never shows it."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from miniapps import services
from miniapps.models import Homework, Mark, MiniApp, TimetableEntry
from organisations.models import Role


class MiniAppForm(forms.ModelForm):
    audience = forms.MultipleChoiceField(
        label=gettext_lazy("Audience (roles)"),
        choices=Role.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Who may see and launch the app."),
    )

    class Meta:
        model = MiniApp
        fields = [
            "name",
            "slug",
            "description",
            "icon",
            "icon_static",
            "url",
            "is_builtin",
            "audience",
            "organisation",
            "is_verified",
            "is_active",
            "position",
            "max_launch_age_seconds",
        ]


@admin.register(MiniApp)
class MiniAppAdmin(admin.ModelAdmin):
    form = MiniAppForm
    list_display = ("name", "slug", "url", "organisation", "is_verified", "is_active", "position")
    list_filter = ("is_verified", "is_active", "is_builtin")
    search_fields = ("name", "slug", "url")
    raw_id_fields = ("organisation",)
    readonly_fields = ("secret_rotated_at",)
    actions = ["rotate_secret"]

    def save_model(self, request: HttpRequest, obj: MiniApp, form: Any, change: bool) -> None:
        is_new = obj.pk is None
        super().save_model(request, obj, form, change)
        if is_new:
            secret = services.miniapp_secret_rotate(app=obj)
            self.message_user(request, self._secret_message(obj, secret), messages.WARNING)

    @staticmethod
    def _secret_message(app: MiniApp, secret: str) -> str:
        return _("The launch secret of «%(name)s» (shown only now, copy it to the app): %(secret)s") % {
            "name": app.name,
            "secret": secret,
        }

    @admin.action(description=gettext_lazy("Issue a new launch secret (the old one stops working)"))
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[MiniApp]) -> None:
        for app in queryset:
            secret = services.miniapp_secret_rotate(app=app)
            self.message_user(request, self._secret_message(app, secret), messages.WARNING)


@admin.register(TimetableEntry)
class TimetableEntryAdmin(admin.ModelAdmin):
    list_display = ("group", "weekday", "period", "subject", "teacher", "room")
    list_select_related = ("group", "teacher")
    raw_id_fields = ("group", "teacher")


@admin.register(Homework)
class HomeworkAdmin(admin.ModelAdmin):
    list_display = ("group", "subject", "due_date", "reminded_at")
    list_select_related = ("group",)
    raw_id_fields = ("group", "created_by")
    readonly_fields = ("reminded_at",)


@admin.register(Mark)
class MarkAdmin(admin.ModelAdmin):
    list_display = ("date", "group", "student", "subject", "value")
    list_select_related = ("group", "student")
    raw_id_fields = ("group", "student", "created_by")
