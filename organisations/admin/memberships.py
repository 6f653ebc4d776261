"""Memberships: a person added by phone number with a role, the position
edited, memberships ended (never deleted)."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from accounts.services import phone_normalise
from common.errors import ApplicationError
from common.services import audit_record, model_changes
from organisations import importing, services
from organisations.admin.scoping import ActiveFilter, ScopedModelAdmin, request_user
from organisations.models import Membership, Organisation


def _phone_clean(value: str) -> str:
    try:
        return phone_normalise(value)
    except ApplicationError as error:
        raise ValidationError(error.message) from None


class PersonFieldsMixin(forms.Form):
    """The person by phone number: an administrator does not pick from all
    accounts; an existing account keeps its own name."""

    phone = forms.CharField(label=gettext_lazy("phone number"), max_length=64)
    last_name = forms.CharField(label=gettext_lazy("last name"), max_length=80)
    first_name = forms.CharField(label=gettext_lazy("first name"), max_length=80)
    middle_name = forms.CharField(label=gettext_lazy("middle name"), max_length=80, required=False)

    def clean_phone(self) -> str:
        return _phone_clean(self.cleaned_data["phone"])

    def person(self, *, actor: User, organisation: Organisation) -> User:
        return importing.user_get_or_create(
            actor=actor,
            organisation=organisation,
            phone=self.cleaned_data["phone"],
            last_name=self.cleaned_data["last_name"],
            first_name=self.cleaned_data["first_name"],
            middle_name=self.cleaned_data.get("middle_name", ""),
        )


class MembershipAddForm(PersonFieldsMixin, forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("organisation", "role", "position")


@admin.register(Membership)
class MembershipAdmin(ScopedModelAdmin):
    add_form = MembershipAddForm
    list_display = ("user", "user_phone", "organisation", "role", "position", "verification_status", "ended_at")
    list_filter = (ActiveFilter, "role", "verification_status", ("organisation", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("user", "organisation")
    search_fields = ("user__last_name", "user__first_name", "user__phone", "position")
    actions = ("end_memberships",)
    add_fieldsets = (
        (None, {"fields": ("phone", "last_name", "first_name", "middle_name")}),
        (gettext_lazy("Role"), {"fields": ("organisation", "role", "position")}),
    )
    fields = (
        "user",
        "organisation",
        "role",
        "position",
        "verification_status",
        "verified_at",
        "verified_by",
        "started_at",
        "ended_at",
    )

    @admin.display(description=gettext_lazy("phone number"), ordering="user__phone")
    def user_phone(self, membership: Membership) -> str:
        return str(membership.user.phone)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.ended_at is not None:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A membership ends (membership_end), it is not deleted: the badge
        # and the admin access go with it and the history stays.
        return False

    def has_end_permission(self, request: HttpRequest) -> bool:
        return self._may_administer(request)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return tuple(name for name in self.fields if name != "position")

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        actor = request_user(request)
        if change:
            old_position = Membership.objects.values_list("position", flat=True).get(pk=obj.pk)
            changes = model_changes(obj, ["position"], {"position": old_position})
            if changes:
                obj.save(update_fields=["position", "updated_at"])
                audit_record(
                    actor=actor,
                    action="membership.update",
                    target=obj,
                    organisation_id=obj.organisation_id,
                    changes=changes,
                )
            return
        person = form.person(actor=actor, organisation=obj.organisation)
        membership = services.membership_create(
            actor=actor, user=person, organisation=obj.organisation, role=obj.role, position=obj.position
        )
        obj.pk = membership.pk
        obj._state.adding = False
        obj.refresh_from_db()

    @admin.action(description=gettext_lazy("End the selected memberships"), permissions=["end"])
    def end_memberships(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        ended = 0
        for membership in queryset.filter(ended_at__isnull=True).select_related("user"):
            services.membership_end(actor=request_user(request), membership=membership)
            ended += 1
        self.message_user(request, _("Memberships ended: %(count)d.") % {"count": ended}, messages.SUCCESS)
