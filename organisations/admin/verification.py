"""The verification queue: educators who asked their organisation to
confirm their role; approving grants the verified badge."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.errors import ApplicationError
from organisations import services
from organisations.admin.scoping import ScopedModelAdmin, request_user
from organisations.models import Membership, VerificationRequest, VerificationStatus


@admin.register(VerificationRequest)
class VerificationRequestAdmin(ScopedModelAdmin):
    """Educators who asked to be verified; approving grants the badge."""

    list_display = ("user", "user_phone", "organisation", "role", "position", "verification_requested_at")
    list_filter = ("role", ("organisation", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("user", "organisation")
    search_fields = ("user__last_name", "user__first_name", "user__phone")
    ordering = ("verification_requested_at", "id")
    actions = ("approve", "reject")
    fields = ("user", "organisation", "role", "position", "verification_requested_at")
    readonly_fields = fields

    @admin.display(description=gettext_lazy("phone number"), ordering="user__phone")
    def user_phone(self, membership: Membership) -> str:
        return str(membership.user.phone)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return (
            super()
            .get_queryset(request)
            .filter(verification_status=VerificationStatus.REQUESTED, ended_at__isnull=True)
            .filter(role__in=services.VERIFIABLE_ROLES)
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_verify_permission(self, request: HttpRequest) -> bool:
        return self._may_administer(request)

    def _decide(self, request: HttpRequest, queryset: QuerySet[Any], *, approve: bool) -> int:
        decided = 0
        # Plain memberships, not the proxy: the audit log names the membership.
        memberships = Membership.objects.filter(pk__in=queryset.values("pk")).select_related("user", "organisation")
        for membership in memberships:
            try:
                services.verification_decide(actor=request_user(request), membership=membership, approve=approve)
            except ApplicationError as error:
                self.message_user(request, f"{membership.user}: {error.message}", messages.ERROR)
                continue
            decided += 1
        return decided

    @admin.action(description=gettext_lazy("Verify the selected educators"), permissions=["verify"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        count = self._decide(request, queryset, approve=True)
        self.message_user(request, _("Educators verified: %(count)d.") % {"count": count}, messages.SUCCESS)

    @admin.action(description=gettext_lazy("Reject the selected requests"), permissions=["verify"])
    def reject(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        count = self._decide(request, queryset, approve=False)
        self.message_user(request, _("Requests rejected: %(count)d.") % {"count": count}, messages.SUCCESS)
