"""Django admin for superusers and the organisations' own administrators.

A superuser sees everything. Anyone else with an active administrator
membership may use the admin without Django model permissions and sees only
the rows of the organisations they administer (for an authority, its whole
subtree: `selectors.administered_organisations`). Every choice a form offers
(organisations, people) is cut to that scope, and every save goes through
the services, so the audit log records it; the few plain saves left record
their audit entry here.
"""

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminURLFieldWidget, ForeignKeyRawIdWidget
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, ForeignKey, Model, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache

from accounts.models import User
from accounts.services import phone_normalise
from common.errors import ApplicationError
from common.services import audit_record, model_changes
from organisations import importing, selectors, services
from organisations.models import (
    AUTHORITY_KINDS,
    EDUCATIONAL_KINDS,
    Guardianship,
    GuardianshipCode,
    ImportJob,
    Membership,
    Organisation,
    Role,
    StudyGroup,
    StudyGroupStudent,
    StudyGroupTeacher,
    VerificationRequest,
    VerificationStatus,
)

if TYPE_CHECKING:
    from django.contrib.admin.options import BaseModelAdmin

    _ScopedBase = BaseModelAdmin[Any]
else:
    from django.contrib.admin.options import BaseModelAdmin as _ScopedBase


# --- Who may use the admin, and what they see -----------------------------------------------------------------


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def user_is_administrator(request: HttpRequest) -> bool:
    """Whether the signed-in person administers at least one organisation;
    asked many times per admin page, so remembered on the request."""
    cached = getattr(request, "_parta_is_administrator", None)
    if cached is None:
        cached = selectors.administered_organisations(user=_user(request)).exists()
        setattr(request, "_parta_is_administrator", cached)  # noqa: B010
    return bool(cached)


def user_may_use_admin(request: HttpRequest) -> bool:
    user = _user(request)
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or user_is_administrator(request)


def organisation_scope(request: HttpRequest) -> QuerySet[Organisation] | None:
    """The organisations the person administers, or None for "all" (superusers)."""
    user = _user(request)
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


def administered_users(*, user: User, roles: tuple[str, ...] | None = None) -> QuerySet[User]:
    """People with an active membership (of `roles`, if given) in an
    organisation `user` administers; everyone for a superuser."""
    if user.is_superuser and user.is_active:
        users = User.objects.all()
        if roles is None:
            return users
        return users.filter(pk__in=Membership.objects.active().filter(role__in=roles).values("user_id"))
    memberships = Membership.objects.active().filter(
        organisation__in=selectors.administered_organisations(user=user).values("pk")
    )
    if roles is not None:
        memberships = memberships.filter(role__in=roles)
    return User.objects.filter(pk__in=memberships.values("user_id"))


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
            return administered_users(user=_user(request))
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


def _phone_clean(value: str) -> str:
    try:
        return phone_normalise(value)
    except ApplicationError as error:
        raise ValidationError(error.message) from None


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


# --- Organisations and the import -----------------------------------------------------------------------------

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


class ImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("File (CSV or XLSX)"),
        widget=forms.ClearableFileInput(
            attrs={"accept": ".csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
        ),
    )


@admin.register(Organisation)
class OrganisationAdmin(ScopedModelAdmin):
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
        return _user(request).is_superuser and _user(request).is_active

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
                updated = services.organisation_update(actor=_user(request), organisation=original, **fields)
                obj.path = updated.path
            return
        fields = {name: getattr(obj, name) for name in form.cleaned_data if name in model_fields}
        created = services.organisation_create(actor=_user(request), **fields)
        obj.pk = created.pk
        obj.path = created.path
        obj.time_zone = created.time_zone
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Organisation) -> None:
        audit_record(actor=_user(request), action="organisation.delete", target=obj, organisation_id=obj.pk)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Organisation]) -> None:
        for organisation in queryset:
            self.delete_model(request, organisation)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        context["show_import"] = (
            obj is not None and obj.kind in EDUCATIONAL_KINDS and self.has_change_permission(request, obj)
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/import/",
                self.admin_site.admin_view(self.import_view),
                name="{}_{}_import".format(*info),
            ),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Upload a class list; on any error nothing is imported and the
        page shows every row's errors."""
        organisation: Organisation = self.get_object(request, unquote(object_id))
        if not self.has_change_permission(request, organisation):
            raise PermissionDenied
        if organisation.kind not in EDUCATIONAL_KINDS:
            raise Http404(_("Classes are imported into a school, a kindergarten or a college."))
        job: ImportJob | None = None
        form = ImportForm(request.POST, request.FILES) if request.method == "POST" else ImportForm()
        if form.is_bound and form.is_valid():
            job = importing.import_members(
                actor=_user(request), organisation=organisation, uploaded_file=form.cleaned_data["file"]
            )
            if job.status == ImportJob.Status.DONE:
                self.message_user(
                    request,
                    _("Imported %(rows)d rows from %(file)s.") % {"rows": job.rows_imported, "file": job.file_name},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(request.path)
            self.message_user(
                request, _("Nothing was imported: correct the errors below and upload the file again."), messages.ERROR
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import classes and members"),
            "subtitle": str(organisation),
            "opts": self.opts,
            "original": organisation,
            "has_view_permission": True,
            "form": form,
            "job": job,
            "columns": importing.COLUMNS,
            "max_rows": importing.MAX_ROWS,
            "recent_jobs": ImportJob.objects.filter(organisation=organisation)[:5],
        }
        return TemplateResponse(request, "admin/organisations/organisation/import_members.html", context)


# --- Memberships and the verification queue ------------------------------------------------------------------


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
        actor = _user(request)
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
            services.membership_end(actor=_user(request), membership=membership)
            ended += 1
        self.message_user(request, _("Memberships ended: %(count)d.") % {"count": ended}, messages.SUCCESS)


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
                services.verification_decide(actor=_user(request), membership=membership, approve=approve)
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


# --- Study groups ---------------------------------------------------------------------------------------------


class StudyGroupForm(forms.ModelForm):
    class Meta:
        model = StudyGroup
        fields = ("organisation", "name", "grade", "academic_year", "homeroom_teacher")

    def clean_name(self) -> str:
        return "".join(self.cleaned_data["name"].split()).upper()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        organisation = cleaned.get("organisation") or getattr(self.instance, "organisation", None)
        name, year = cleaned.get("name"), cleaned.get("academic_year")
        if organisation is not None and name and year:
            duplicates = StudyGroup.objects.filter(organisation=organisation, name=name, academic_year=year)
            if duplicates.exclude(pk=self.instance.pk).exists():
                self.add_error(
                    "name", _("This organisation already has the class %(name)s that year.") % {"name": name}
                )
        return cleaned


class StudyGroupTeacherInline(OrganisationScopeMixin, admin.TabularInline):  # type: ignore[misc]
    model = StudyGroupTeacher
    organisation_lookup = "group__organisation"
    fields = ("teacher", "subject")
    raw_id_fields = ("teacher",)
    extra = 0

    def foreign_key_choices(self, db_field: ForeignKey, request: HttpRequest) -> QuerySet[Any] | None:
        if db_field.name == "teacher" and organisation_scope(request) is not None:
            return administered_users(user=_user(request), roles=(Role.TEACHER, Role.ADMINISTRATOR, Role.STAFF))
        return super().foreign_key_choices(db_field, request)


class StudyGroupStudentInline(OrganisationScopeMixin, admin.TabularInline):  # type: ignore[misc]
    model = StudyGroupStudent
    organisation_lookup = "group__organisation"
    fields = ("student", "joined_at")
    readonly_fields = ("joined_at",)
    raw_id_fields = ("student",)
    extra = 0

    def foreign_key_choices(self, db_field: ForeignKey, request: HttpRequest) -> QuerySet[Any] | None:
        if db_field.name == "student" and organisation_scope(request) is not None:
            return administered_users(user=_user(request), roles=(Role.STUDENT,))
        return super().foreign_key_choices(db_field, request)


@admin.register(StudyGroup)
class StudyGroupAdmin(ScopedModelAdmin):
    form = StudyGroupForm
    list_display = ("name", "academic_year", "organisation", "homeroom_teacher", "student_count")
    list_filter = ("academic_year", ("organisation", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("organisation", "homeroom_teacher")
    search_fields = ("name",)
    fields = ("organisation", "name", "grade", "academic_year", "homeroom_teacher")
    raw_id_fields = ("homeroom_teacher",)
    inlines = (StudyGroupTeacherInline, StudyGroupStudentInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).annotate(student_total=Count("studygroupstudent", distinct=True))

    @admin.display(description=gettext_lazy("students"), ordering="student_total")
    def student_count(self, group: Any) -> int:
        return int(getattr(group, "student_total", 0))

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"academic_year": selectors.current_academic_year(), **super().get_changeform_initial_data(request)}

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("organisation",) if obj is not None else ()

    def foreign_key_choices(self, db_field: ForeignKey, request: HttpRequest) -> QuerySet[Any] | None:
        scope = organisation_scope(request)
        if db_field.name == "organisation":
            organisations = Organisation.objects.all() if scope is None else scope
            return organisations.filter(kind__in=EDUCATIONAL_KINDS)
        if db_field.name == "homeroom_teacher" and scope is not None:
            return administered_users(user=_user(request), roles=(Role.TEACHER, Role.ADMINISTRATOR, Role.STAFF))
        return super().foreign_key_choices(db_field, request)

    def save_model(self, request: HttpRequest, obj: StudyGroup, form: Any, change: bool) -> None:
        actor = _user(request)
        if not change:
            group = services.study_group_create(
                actor=actor,
                organisation=obj.organisation,
                name=obj.name,
                academic_year=obj.academic_year,
                grade=obj.grade,
                homeroom_teacher=obj.homeroom_teacher,
            )
            obj.pk = group.pk
            obj._state.adding = False
            obj.refresh_from_db()
            return
        tracked = ["name", "grade", "academic_year", "homeroom_teacher"]
        previous = StudyGroup.objects.get(pk=obj.pk)
        changes = model_changes(obj, tracked, {name: getattr(previous, name) for name in tracked})
        if not changes:
            return
        # No service renames a class or changes its homeroom teacher: a plain
        # save, audited here.
        obj.save()
        audit_record(
            actor=actor, action="study_group.update", target=obj, organisation_id=obj.organisation_id, changes=changes
        )
        if "homeroom_teacher" in changes and obj.homeroom_teacher is not None:
            # The homeroom teacher teaches the class and is a teacher there.
            services.study_group_teacher_add(actor=actor, group=obj, teacher=obj.homeroom_teacher)

    def save_formset(self, request: HttpRequest, form: Any, formset: BaseInlineFormSet, change: bool) -> None:
        if formset.model is StudyGroupStudent:
            self._students_save(request, form.instance, formset)
        elif formset.model is StudyGroupTeacher:
            self._teachers_save(request, form.instance, formset)
        else:
            super().save_formset(request, form, formset, change)

    def _students_save(self, request: HttpRequest, group: StudyGroup, formset: Any) -> None:
        actor = _user(request)
        formset.save(commit=False)
        for link in formset.deleted_objects:
            services.study_group_student_remove(actor=actor, group=group, student=link.student)
        for link, changed in formset.changed_objects:
            if "student" in changed:
                previous = StudyGroupStudent.objects.select_related("student").get(pk=link.pk)
                services.study_group_student_remove(actor=actor, group=group, student=previous.student)
                services.study_group_student_add(actor=actor, group=group, student=link.student)
        for link in formset.new_objects:
            services.study_group_student_add(actor=actor, group=group, student=link.student)

    def _teachers_save(self, request: HttpRequest, group: StudyGroup, formset: Any) -> None:
        actor = _user(request)
        formset.save(commit=False)
        for link in formset.deleted_objects:
            self._teacher_remove(actor=actor, group=group, link=link)
        for link, changed in formset.changed_objects:
            previous = StudyGroupTeacher.objects.get(pk=link.pk)
            if "teacher" in changed:
                self._teacher_remove(actor=actor, group=group, link=previous)
                services.study_group_teacher_add(actor=actor, group=group, teacher=link.teacher, subject=link.subject)
            elif "subject" in changed:
                # No service changes a subject: a plain save, audited here.
                link.save(update_fields=["subject"])
                audit_record(
                    actor=actor,
                    action="study_group.teacher_update",
                    target=group,
                    organisation_id=group.organisation_id,
                    changes={"teacher": link.teacher_id, "subject": [previous.subject, link.subject]},
                )
        for link in formset.new_objects:
            services.study_group_teacher_add(actor=actor, group=group, teacher=link.teacher, subject=link.subject)

    @staticmethod
    def _teacher_remove(*, actor: User, group: StudyGroup, link: StudyGroupTeacher) -> None:
        # No service takes a teacher off a class: a plain delete, audited here.
        deleted, _rows = StudyGroupTeacher.objects.filter(pk=link.pk).delete()
        if deleted:
            audit_record(
                actor=actor,
                action="study_group.teacher_remove",
                target=group,
                organisation_id=group.organisation_id,
                changes={"teacher": link.teacher_id},
            )

    def delete_model(self, request: HttpRequest, obj: StudyGroup) -> None:
        audit_record(actor=_user(request), action="study_group.delete", target=obj, organisation_id=obj.organisation_id)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[StudyGroup]) -> None:
        for group in queryset:
            self.delete_model(request, group)


# --- Guardianship ---------------------------------------------------------------------------------------------


class StudentOfOrganisationForm(forms.ModelForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        student, organisation = cleaned.get("student"), cleaned.get("organisation")
        if student is not None and organisation is not None:
            is_student = (
                Membership.objects.active().filter(user=student, organisation=organisation, role=Role.STUDENT).exists()
            )
            if not is_student:
                self.add_error("student", _("The student does not study in this organisation."))
        return cleaned


class GuardianshipAddForm(PersonFieldsMixin, StudentOfOrganisationForm):
    class Meta:
        model = Guardianship
        fields = ("student", "organisation")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        student, phone = cleaned.get("student"), cleaned.get("phone")
        if student is not None and phone and student.phone.as_e164 == phone:
            self.add_error("phone", _("A student cannot be their own guardian."))
        return cleaned


def _student_choices(request: HttpRequest) -> QuerySet[User] | None:
    if organisation_scope(request) is None:
        return None
    return administered_users(user=_user(request), roles=(Role.STUDENT,))


@admin.register(Guardianship)
class GuardianshipAdmin(ScopedModelAdmin):
    add_form = GuardianshipAddForm
    list_display = ("parent", "student", "organisation", "source", "created_at", "ended_at")
    list_filter = (ActiveFilter, "source", ("organisation", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("parent", "student", "organisation")
    search_fields = ("parent__last_name", "parent__phone", "student__last_name", "student__phone")
    raw_id_fields = ("student",)
    actions = ("end_guardianships",)
    add_fieldsets = (
        (gettext_lazy("Parent"), {"fields": ("phone", "last_name", "first_name", "middle_name")}),
        (gettext_lazy("Student"), {"fields": ("student", "organisation")}),
    )
    fields = ("parent", "student", "organisation", "source", "created_by", "created_at", "ended_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields if obj is not None else ()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_end_permission(self, request: HttpRequest) -> bool:
        return self._may_administer(request)

    def foreign_key_choices(self, db_field: ForeignKey, request: HttpRequest) -> QuerySet[Any] | None:
        if db_field.name == "student":
            return _student_choices(request)
        return super().foreign_key_choices(db_field, request)

    def save_model(self, request: HttpRequest, obj: Guardianship, form: Any, change: bool) -> None:
        actor = _user(request)
        parent = form.person(actor=actor, organisation=obj.organisation)
        guardianship = services.guardianship_link(
            actor=actor, parent=parent, student=obj.student, organisation=obj.organisation
        )
        obj.pk = guardianship.pk
        obj._state.adding = False
        obj.refresh_from_db()

    @admin.action(description=gettext_lazy("End the selected guardianships"), permissions=["end"])
    def end_guardianships(self, request: HttpRequest, queryset: QuerySet[Guardianship]) -> None:
        ended = 0
        for guardianship in queryset.filter(ended_at__isnull=True):
            services.guardianship_end(actor=_user(request), guardianship=guardianship)
            ended += 1
        self.message_user(request, _("Guardianships ended: %(count)d.") % {"count": ended}, messages.SUCCESS)


class GuardianshipCodeForm(StudentOfOrganisationForm):
    valid_days = forms.IntegerField(label=gettext_lazy("valid for, days"), min_value=1, max_value=365, initial=30)

    class Meta:
        model = GuardianshipCode
        fields = ("student", "organisation")


@admin.register(GuardianshipCode)
class GuardianshipCodeAdmin(ScopedModelAdmin):
    """Codes that link a parent to a student. The plain code is shown once,
    right after it is issued; only its HMAC is stored."""

    form = GuardianshipCodeForm
    list_display = ("student", "organisation", "created_by", "created_at", "expires_at", "used_at", "used_by")
    list_filter = (("organisation", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("student", "organisation", "created_by", "used_by")
    search_fields = ("student__last_name", "student__phone")
    raw_id_fields = ("student",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("student", "organisation", "valid_days")
        return ("student", "organisation", "created_by", "created_at", "expires_at", "used_at", "used_by")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.get_fields(request, obj) if obj is not None else ()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def foreign_key_choices(self, db_field: ForeignKey, request: HttpRequest) -> QuerySet[Any] | None:
        if db_field.name == "student":
            return _student_choices(request)
        return super().foreign_key_choices(db_field, request)

    def save_model(self, request: HttpRequest, obj: GuardianshipCode, form: Any, change: bool) -> None:
        code, record = services.guardianship_code_issue(
            actor=_user(request),
            student=obj.student,
            organisation=obj.organisation,
            valid_days=form.cleaned_data["valid_days"],
        )
        obj.pk = record.pk
        obj._state.adding = False
        obj.refresh_from_db()
        self.message_user(
            request,
            _(
                "The code for %(student)s: %(code)s. Give it to the parent; it is shown only this once "
                "and is valid until %(date)s."
            )
            % {"student": obj.student, "code": code, "date": obj.expires_at.date().isoformat()},
            messages.SUCCESS,
        )

    def delete_model(self, request: HttpRequest, obj: GuardianshipCode) -> None:
        audit_record(
            actor=_user(request), action="guardianship_code.delete", target=obj, organisation_id=obj.organisation_id
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[GuardianshipCode]) -> None:
        for code in queryset:
            self.delete_model(request, code)


# --- Imports --------------------------------------------------------------------------------------------------


@admin.register(ImportJob)
class ImportJobAdmin(ScopedModelAdmin):
    """The record of every import with its error report; imports start from
    the organisation's page."""

    list_display = ("file_name", "organisation", "status", "rows_total", "rows_imported", "created_by", "created_at")
    list_filter = ("status", ("organisation", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("organisation", "created_by")
    fields = ("organisation", "file_name", "status", "rows_total", "rows_imported", "created_by", "created_at")
    readonly_fields = (*fields, "error_report")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return (*self.fields, "error_report")

    @admin.display(description=gettext_lazy("errors"))
    def error_report(self, job: ImportJob) -> str:
        if not job.errors:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((error.get("row") or "—", error.get("column") or "—", error.get("message", "")) for error in job.errors),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("Row"),
            _("Column"),
            _("Error"),
            rows,
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
