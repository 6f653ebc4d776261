"""Who may use the admin and what they see there.

A superuser sees everything. Anyone else with an active administrator
membership may use the admin without Django model permissions and sees only
the rows of the organisations they administer (for an authority, its whole
subtree: `selectors.administered_organisations`). Every choice a form offers
(organisations, people) is cut to that scope.
"""

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import ForeignKey, Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache

from accounts.models import User
from common.errors import ApplicationError
from organisations import selectors
from organisations.models import Organisation, StudyGroup

if TYPE_CHECKING:
    from django.contrib.admin.options import BaseModelAdmin

    _ScopedBase = BaseModelAdmin[Any]
else:
    from django.contrib.admin.options import BaseModelAdmin as _ScopedBase


def request_user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def user_is_administrator(request: HttpRequest) -> bool:
    """Whether the signed-in person administers at least one organisation;
    asked many times per admin page, so remembered on the request."""
    cached = getattr(request, "_parta_is_administrator", None)
    if cached is None:
        cached = selectors.administered_organisations(user=request_user(request)).exists()
        setattr(request, "_parta_is_administrator", cached)  # noqa: B010
    return bool(cached)


def user_may_use_admin(request: HttpRequest) -> bool:
    user = request_user(request)
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or user_is_administrator(request)


def organisation_scope(request: HttpRequest) -> QuerySet[Organisation] | None:
    """The organisations the person administers, or None for "all" (superusers)."""
    user = request_user(request)
    if user.is_superuser and user.is_active:
        return None
    return selectors.administered_organisations(user=user)


def organisation_in_scope(request: HttpRequest, organisation_id: int | None) -> bool:
    scope = organisation_scope(request)
    if scope is None:
        return True
    if organisation_id is None:
        return False
    cache: dict[int, bool] = getattr(request, "_parta_organisation_in_scope", None) or {}
    if organisation_id not in cache:
        cache[organisation_id] = scope.filter(pk=organisation_id).exists()
        setattr(request, "_parta_organisation_in_scope", cache)  # noqa: B010
    return cache[organisation_id]


def _safe_next(request: HttpRequest) -> str:
    candidate = request.GET.get("next", "")
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def _site_has_permission(request: HttpRequest) -> bool:
    return user_may_use_admin(request)


@never_cache
def _site_login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    """The admin has no sign-in form of its own: people sign in by phone on
    the portal and come back. Someone signed in without admin access gets
    403, not a loop between the two sign-in pages."""
    next_url = _safe_next(request) or reverse("admin:index")
    if request.user.is_authenticated:
        if user_may_use_admin(request):
            return HttpResponseRedirect(next_url)
        raise PermissionDenied
    return redirect_to_login(next_url, login_url=reverse("accounts:login"))


# The default site stays (other apps register on it); only who may enter
# and where they sign in change.
admin.site.has_permission = _site_has_permission  # type: ignore[method-assign]
admin.site.login = _site_login  # type: ignore[method-assign,assignment]
admin.site.site_header = gettext_lazy("Parta administration")
admin.site.site_title = gettext_lazy("Parta administration")
admin.site.index_title = gettext_lazy("Organisations, members and classes")


class ScopedRawIdWidget(ForeignKeyRawIdWidget):
    """A raw-id input that names only objects of the allowed choices: the
    stock widget would print the name of any id typed into the form."""

    def __init__(self, *args: Any, queryset: QuerySet[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queryset = queryset

    def label_and_url_for_value(self, value: Any) -> tuple[str, str]:
        key = self.rel.get_related_field().name
        try:
            is_allowed = self.queryset.filter(**{key: value}).exists()
        except (ValueError, TypeError, ValidationError):
            is_allowed = False
        if not is_allowed:
            return "", ""
        return super().label_and_url_for_value(value)


class OrganisationScopeMixin(_ScopedBase):
    """Scopes a ModelAdmin or an inline to the organisations the person
    administers: rows, object permissions and the choices of every foreign
    key. `organisation_lookup` is the path from the model to Organisation."""

    organisation_lookup = "organisation"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        scope = organisation_scope(request)
        if scope is None:
            return queryset
        return queryset.filter(**{self.organisation_lookup + "__in": scope.values("pk")})

    def _may_administer(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if not user_may_use_admin(request):
            return False
        if obj is None or obj.pk is None:
            return True
        organisation_id = obj.pk if isinstance(obj, Organisation) else getattr(obj, "organisation_id", None)
        return organisation_in_scope(request, organisation_id)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return user_may_use_admin(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_administer(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:  # type: ignore[override]
        return self._may_administer(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_administer(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_administer(request, obj)

    def foreign_key_choices(self, db_field: ForeignKey, request: HttpRequest) -> QuerySet[Any] | None:
        """The choices of a foreign key for this person; None keeps Django's."""
        scope = organisation_scope(request)
        if scope is None:
            return None
        related = db_field.related_model
        if related is Organisation:
            return scope
        if related is User:
            return selectors.administered_users(user=request_user(request))
        if related is StudyGroup:
            return StudyGroup.objects.filter(organisation__in=scope.values("pk"))
        return None

    def formfield_for_foreignkey(self, db_field: ForeignKey, request: HttpRequest, **kwargs: Any) -> Any:
        if "queryset" not in kwargs:
            queryset = self.foreign_key_choices(db_field, request)
            if queryset is not None:
                kwargs["queryset"] = queryset
                if db_field.name in self.raw_id_fields and "widget" not in kwargs:
                    kwargs["widget"] = ScopedRawIdWidget(
                        db_field.remote_field, self.admin_site, using=kwargs.get("using"), queryset=queryset
                    )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ScopedModelAdmin(OrganisationScopeMixin, admin.ModelAdmin):  # type: ignore[misc]
    """A ModelAdmin scoped by organisation; an object outside the scope is
    404, exactly like one that does not exist."""

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(_("Not found."))
        return obj

    # An add form of its own (a person by phone instead of a choice of accounts).
    add_form: type[forms.ModelForm] | None = None
    add_fieldsets: Any = None

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None and self.add_fieldsets is not None:
            return self.add_fieldsets
        return super().get_fieldsets(request, obj)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None and self.add_form is not None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change, **kwargs)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # The forms check what they can; a service may still refuse (the
        # data changed meanwhile). The transaction is rolled back by then.
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class ActiveFilter(admin.SimpleListFilter):
    title = gettext_lazy("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", _("active")), ("ended", _("ended"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "active":
            return queryset.filter(ended_at__isnull=True)
        if self.value() == "ended":
            return queryset.filter(ended_at__isnull=False)
        return queryset
