"""Bots in the admin. Bots, their tokens and webhook deliveries are the
platform's (superusers); an organisation's administrators edit the
knowledge base of their organisation's help bots. Only a superuser may let
a bot use a webhook on an internal network address."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from bots import services
from bots.models import Bot, BotToken, DeliveryState, HelpBotSettings, KnowledgeArticle, Update, WebhookDelivery


class SuperuserAdmin(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)


class BotTokenInline(admin.TabularInline):
    model = BotToken
    extra = 0
    fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class HelpBotSettingsInline(admin.StackedInline):
    model = HelpBotSettings
    extra = 0
    raw_id_fields = ("human",)


@admin.register(Bot)
class BotAdmin(SuperuserAdmin):
    list_display = ("name", "username", "organisation", "is_verified", "is_staff_only", "is_active", "webhook_url")
    list_filter = ("is_verified", "is_staff_only", "is_active")
    search_fields = ("name", "username")
    raw_id_fields = ("organisation",)
    inlines = [HelpBotSettingsInline, BotTokenInline]
    actions = ["issue_token", "revoke_tokens"]
    fields = (
        "name",
        "username",
        "description",
        "organisation",
        "is_verified",
        "is_staff_only",
        "is_listed",
        "is_active",
        "webhook_url",
        "allow_internal_webhook",
        "user",
        "last_update_id",
    )
    readonly_fields = ("webhook_url", "user", "last_update_id")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields = tuple(self.readonly_fields)
        if obj is not None:
            fields += ("username",)
        if not request.user.is_superuser:
            fields += ("allow_internal_webhook",)
        return fields

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("user",) if obj is None else ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return tuple(field for field in self.fields if field not in ("user", "last_update_id", "webhook_url"))
        return tuple(self.fields)

    def save_model(self, request: HttpRequest, obj: Bot, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            services.bot_account_sync(bot=obj)
            return
        created = services.bot_create(
            username=obj.username,
            name=obj.name,
            description=obj.description,
            organisation=obj.organisation,
            is_verified=obj.is_verified,
            is_staff_only=obj.is_staff_only,
            actor=request.user,  # type: ignore[arg-type]
        )
        Bot.objects.filter(pk=created.pk).update(
            is_listed=obj.is_listed, is_active=obj.is_active, allow_internal_webhook=obj.allow_internal_webhook
        )
        obj.pk, obj.user_id = created.pk, created.user_id
        obj._state.adding = False
        obj.refresh_from_db()

    @admin.action(description=gettext_lazy("Issue a new token (shown once)"))
    def issue_token(self, request: HttpRequest, queryset: QuerySet[Bot]) -> None:
        for bot in queryset:
            token = services.bot_token_issue(bot=bot, actor=request.user)  # type: ignore[arg-type]
            self.message_user(
                request,
                _("New token of %(bot)s (copy it now, it is not shown again): %(token)s")
                % {"bot": bot, "token": token},
                messages.WARNING,
            )

    @admin.action(description=gettext_lazy("Revoke every token"))
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[Bot]) -> None:
        for token in BotToken.objects.filter(bot__in=queryset, revoked_at__isnull=True).select_related("bot"):
            services.bot_token_revoke(token=token, actor=request.user)  # type: ignore[arg-type]
        self.message_user(request, _("The tokens were revoked."), messages.SUCCESS)


@admin.register(KnowledgeArticle)
class KnowledgeArticleAdmin(admin.ModelAdmin):
    list_display = ("question", "bot", "is_published", "updated_at")
    list_filter = ("is_published", "bot")
    search_fields = ("question", "keywords", "answer")

    def get_queryset(self, request: HttpRequest) -> QuerySet[KnowledgeArticle]:
        from organisations.admin import organisation_scope

        queryset = super().get_queryset(request).select_related("bot")
        scope = organisation_scope(request)
        return queryset if scope is None else queryset.filter(bot__organisation__in=scope)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "bot":
            from organisations.admin import organisation_scope

            scope = organisation_scope(request)
            kwargs["queryset"] = Bot.objects.all() if scope is None else Bot.objects.filter(organisation__in=scope)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(SuperuserAdmin):
    list_display = ("update", "bot", "state", "attempts", "next_attempt_at", "last_error", "created_at")
    list_filter = ("state", "bot")
    list_select_related = ("bot", "update")
    fields = (
        "bot",
        "update",
        "state",
        "attempts",
        "next_attempt_at",
        "last_attempt_at",
        "last_error",
        "delivered_at",
        "created_at",
        "payload",
    )
    readonly_fields = fields
    actions = ["retry"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=gettext_lazy("update"))
    def payload(self, obj: WebhookDelivery) -> str:
        import json

        return json.dumps(obj.update.payload, ensure_ascii=False, indent=1)

    @admin.action(description=gettext_lazy("Retry the parked deliveries"))
    def retry(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = services.webhook_deliveries_retry(
            delivery_ids=list(queryset.filter(state=DeliveryState.PARKED).values_list("pk", flat=True)),
            actor=request.user,  # type: ignore[arg-type]
        )
        self.message_user(request, _("Deliveries sent again: %(count)d.") % {"count": count}, messages.SUCCESS)


@admin.register(Update)
class UpdateAdmin(SuperuserAdmin):
    list_display = ("bot", "update_id", "kind", "chat", "created_at", "confirmed_at")
    list_filter = ("kind", "bot")
    list_select_related = ("bot",)
    readonly_fields = ("bot", "update_id", "kind", "chat", "payload", "created_at", "confirmed_at", "answered_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
