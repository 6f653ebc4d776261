"""The audit log in the admin: read-only. A superuser sees every entry; an
organisation's administrator sees the entries of the organisations they
administer and the changes they made themselves.

The scope is defined by the organisations app, which sits above common: it
is imported inside the functions, never at module import time.
"""

import json
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("at", "actor", "action", "object_type", "object_repr", "organisation_id")
    list_filter = ("action", ("at", admin.DateFieldListFilter))
    list_select_related = ("actor",)
    search_fields = ("object_repr", "object_id")
    fields = ("at", "actor", "action", "object_type", "object_id", "object_repr", "organisation_id", "changes_display")
    readonly_fields = fields
    date_hierarchy = "at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEvent]:
        from organisations.admin import organisation_scope

        queryset = super().get_queryset(request)
        scope = organisation_scope(request)
        if scope is None:
            return queryset
        return queryset.filter(Q(organisation_id__in=scope.values("pk")) | Q(actor_id=request.user.pk))

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(_("Not found."))
        return obj

    @admin.display(description=gettext_lazy("changes"))
    def changes_display(self, event: AuditEvent) -> str:
        if not event.changes:
            return "—"
        return format_html("<pre>{}</pre>", json.dumps(event.changes, ensure_ascii=False, indent=2, sort_keys=True))

    def _may_use(self, request: HttpRequest) -> bool:
        from organisations.admin import user_may_use_admin

        return user_may_use_admin(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._may_use(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_use(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
