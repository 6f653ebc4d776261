"""Admin of accounts. A superuser sees every account; an organisation's
administrator sees the people with an active membership in the
organisations they administer. Accounts are read-only here: a profile
belongs to its owner, the badges come from the services, and blocking goes
through the actions so that sessions end and the audit log records it.

The scope is defined by the organisations app, which sits above accounts:
it is imported inside the functions, never at module import time.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import ApiToken, LoginCode, User
from accounts.services import phone_normalise, user_block, user_unblock
from common.errors import ApplicationError


def _actor(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


class BlockForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Kept in the audit log."),
    )


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = [
        "phone",
        "last_name",
        "first_name",
        "middle_name",
        "is_active",
        "is_verified_educator",
        "is_name_flagged",
        "is_safe_mode",
    ]
    list_filter = ["is_active", "is_verified_educator", "is_name_flagged", "is_safe_mode"]
    search_fields = ["phone", "last_name", "first_name", "middle_name"]
    ordering = ["last_name", "first_name", "id"]
    actions = ["block", "unblock"]
    fields = [
        "phone",
        ("last_name", "first_name", "middle_name"),
        ("language", "time_zone"),
        ("is_verified_educator", "is_name_flagged"),
        ("is_safe_mode", "is_hidden_from_search"),
        ("is_active", "blocked_at", "deleted_at"),
        ("date_joined", "last_login"),
    ]
    superuser_fields = [("is_staff", "is_superuser")]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if _actor(request).is_superuser:
            return [*self.fields, *self.superuser_fields]
        return self.fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        from organisations.admin import administered_users

        queryset = super().get_queryset(request)
        actor = _actor(request)
        if actor.is_superuser and actor.is_active:
            return queryset
        return queryset.filter(pk__in=administered_users(user=actor).values("pk"))

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        # Outside the scope is the same 404 as never existing.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(_("Not found."))
        return obj

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[User], search_term: str
    ) -> tuple[QuerySet[User], bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # "8 (900) 123-45-67" is stored as "+79001234567": match the number too.
        try:
            phone = phone_normalise(search_term)
        except ApplicationError:
            return results, may_have_duplicates
        return queryset.filter(Q(pk__in=results.values("pk")) | Q(phone=phone)), may_have_duplicates

    def _may_use(self, request: HttpRequest) -> bool:
        from organisations.admin import user_may_use_admin

        return user_may_use_admin(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._may_use(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not self._may_use(request):
            return False
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Accounts come from signing in, from a membership added by phone
        # and from the import.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # View only: every field is shown read-only.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_block_permission(self, request: HttpRequest) -> bool:
        return self._may_use(request)

    def _blockable(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        actor = _actor(request)
        if actor.is_superuser:
            return queryset
        # An organisation's administrator cannot lock out the people who run the site.
        return queryset.filter(is_superuser=False)

    @admin.action(description=gettext_lazy("Block the selected accounts and end their sessions"), permissions=["block"])
    def block(self, request: HttpRequest, queryset: QuerySet[User]) -> HttpResponse | None:
        form = BlockForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            blocked = 0
            for user in self._blockable(request, queryset).filter(is_active=True):
                try:
                    user_block(actor=_actor(request), user=user, reason=form.cleaned_data["reason"])
                except ApplicationError as error:
                    self.message_user(request, f"{user}: {error.message}", messages.ERROR)
                    continue
                blocked += 1
            self.message_user(request, _("Accounts blocked: %(count)d.") % {"count": blocked}, messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Block accounts"),
            "opts": self.opts,
            "queryset": queryset,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/accounts/user/block_confirmation.html", context)

    @admin.action(description=gettext_lazy("Unblock the selected accounts"), permissions=["block"])
    def unblock(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        unblocked = 0
        # A deleted account stays inactive for good (user_unblock refuses it).
        for user in self._blockable(request, queryset).filter(is_active=False, deleted_at__isnull=True):
            user_unblock(actor=_actor(request), user=user)
            unblocked += 1
        self.message_user(request, _("Accounts unblocked: %(count)d.") % {"count": unblocked}, messages.SUCCESS)


@admin.register(LoginCode)
class LoginCodeAdmin(admin.ModelAdmin):
    list_display = ["phone", "created_at", "expires_at", "attempts", "used_at", "is_superseded"]
    search_fields = ["phone"]
    exclude = ["code_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "name", "created_at", "last_used_at"]
    search_fields = ["user__phone"]
    exclude = ["key_hash"]
    raw_id_fields = ["user"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
