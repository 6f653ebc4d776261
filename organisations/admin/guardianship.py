"""Guardianship: parents linked to students by the school, and the
single-use codes with which parents link themselves."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import ForeignKey, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from common.services import audit_record
from organisations import selectors, services
from organisations.admin.memberships import PersonFieldsMixin
from organisations.admin.scoping import ActiveFilter, ScopedModelAdmin, organisation_scope, request_user
from organisations.models import Guardianship, GuardianshipCode, Role


class StudentOfOrganisationForm(forms.ModelForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        student, organisation = cleaned.get("student"), cleaned.get("organisation")
        if (
            student is not None
            and organisation is not None
            and not selectors.user_is_student(user=student, organisation=organisation)
        ):
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
    return selectors.administered_users(user=request_user(request), roles=(Role.STUDENT,))


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
        actor = request_user(request)
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
            services.guardianship_end(actor=request_user(request), guardianship=guardianship)
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
            actor=request_user(request),
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
            actor=request_user(request),
            action="guardianship_code.delete",
            target=obj,
            organisation_id=obj.organisation_id,
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[GuardianshipCode]) -> None:
        for code in queryset:
            self.delete_model(request, code)
