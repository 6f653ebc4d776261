"""Organisations: their page, scoped like everything else, with the place
in the tree and the verified flag left to whoever administers the parent."""

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AdminURLFieldWidget
from django.core.exceptions import ValidationError
from django.db.models import ForeignKey, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.services import audit_record
from organisations import services
from organisations.admin.importing import OrganisationImportAdmin
from organisations.admin.scoping import organisation_in_scope, organisation_scope, request_user, user_may_use_admin
from organisations.models import AUTHORITY_KINDS, Organisation

STRUCTURE_FIELDS = ("kind", "parent", "is_verified")


class OrganisationForm(forms.ModelForm):
    website = forms.URLField(
        label=gettext_lazy("website"),
        required=False,
        max_length=200,
        assume_scheme="https",
        widget=AdminURLFieldWidget,
    )

    class Meta:
        model = Organisation
        fields = (
            "kind",
            "full_name",
            "short_name",
            "parent",
            "is_verified",
            "inn",
            "ogrn",
            "region",
            "municipality",
            "address",
            "time_zone",
            "phone",
            "email",
            "website",
            "logo",
        )

    def clean_parent(self) -> Organisation | None:
        parent: Organisation | None = self.cleaned_data.get("parent")
        if parent is not None and self.instance.pk and parent.path.startswith(self.instance.path):
            raise ValidationError(_("An organisation cannot be placed inside itself."))
        return parent


@admin.register(Organisation)
class OrganisationAdmin(OrganisationImportAdmin):
    organisation_lookup = "pk"
    form = OrganisationForm
    list_display = ("short_name", "kind", "region", "municipality", "inn", "is_verified", "parent")
    list_filter = ("kind", "is_verified", ("region", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("region", "parent")
    search_fields = ("short_name", "full_name", "inn", "ogrn", "municipality")
    fieldsets = (
        (None, {"fields": ("kind", "full_name", "short_name", "parent", "is_verified")}),
        (gettext_lazy("Registration"), {"fields": ("inn", "ogrn")}),
        (gettext_lazy("Location"), {"fields": ("region", "municipality", "address", "time_zone")}),
        (gettext_lazy("Contacts"), {"fields": ("phone", "email", "website", "logo")}),
    )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # New organisations go below an authority the person administers.
        scope = organisation_scope(request)
        if scope is None:
            return user_may_use_admin(request)
        return scope.filter(kind__in=AUTHORITY_KINDS).exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request_user(request).is_superuser and request_user(request).is_active

    def _administers_parent(self, request: HttpRequest, obj: Organisation) -> bool:
        if organisation_scope(request) is None:
            return True
        return obj.parent_id is not None and organisation_in_scope(request, obj.parent_id)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Kind, place in the tree and the verified flag belong to whoever
        # administers the parent: a school must not make itself an authority
        # (and so widen its own scope) or leave its authority's subtree.
        if obj is not None and not self._administers_parent(request, obj):
            return STRUCTURE_FIELDS
        return ()

    def foreign_key_choices(self, db_field: ForeignKey, request: HttpRequest) -> QuerySet[Any] | None:
        scope = organisation_scope(request)
        if db_field.name == "parent" and scope is not None:
            return scope.filter(kind__in=AUTHORITY_KINDS)
        if db_field.name == "region":
            return None
        return super().foreign_key_choices(db_field, request)

    def formfield_for_foreignkey(self, db_field: ForeignKey, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "parent" and organisation_scope(request) is not None:
            kwargs["required"] = True
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Organisation, form: Any, change: bool) -> None:
        model_fields = {model_field.name for model_field in Organisation._meta.concrete_fields}
        if change:
            fields = {name: getattr(obj, name) for name in form.changed_data if name in model_fields}
            if fields:
                original = Organisation.objects.get(pk=obj.pk)
                updated = services.organisation_update(actor=request_user(request), organisation=original, **fields)
                obj.path = updated.path
            return
        fields = {name: getattr(obj, name) for name in form.cleaned_data if name in model_fields}
        created = services.organisation_create(actor=request_user(request), **fields)
        obj.pk = created.pk
        obj.path = created.path
        obj.time_zone = created.time_zone
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Organisation) -> None:
        audit_record(actor=request_user(request), action="organisation.delete", target=obj, organisation_id=obj.pk)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Organisation]) -> None:
        for organisation in queryset:
            self.delete_model(request, organisation)
