"""Classes with their teachers and students. Every change of who is in a
class goes through the services, so it is audited and the class chats
follow."""

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Count, ForeignKey, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.services import audit_record, model_changes
from organisations import selectors, services
from organisations.admin.scoping import OrganisationScopeMixin, ScopedModelAdmin, organisation_scope, request_user
from organisations.models import EDUCATIONAL_KINDS, Organisation, Role, StudyGroup, StudyGroupStudent, StudyGroupTeacher

# Who may teach a class or be its homeroom teacher.
TEACHER_ROLES = (Role.TEACHER, Role.ADMINISTRATOR, Role.STAFF)


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
        if (
            organisation is not None
            and name
            and year
            and selectors.study_group_name_taken(
                organisation=organisation, name=name, academic_year=year, exclude_id=self.instance.pk
            )
        ):
            self.add_error("name", _("This organisation already has the class %(name)s that year.") % {"name": name})
        return cleaned


class StudyGroupTeacherInline(OrganisationScopeMixin, admin.TabularInline):  # type: ignore[misc]
    model = StudyGroupTeacher
    organisation_lookup = "group__organisation"
    fields = ("teacher", "subject")
    raw_id_fields = ("teacher",)
    extra = 0

    def foreign_key_choices(self, db_field: ForeignKey, request: HttpRequest) -> QuerySet[Any] | None:
        if db_field.name == "teacher" and organisation_scope(request) is not None:
            return selectors.administered_users(user=request_user(request), roles=TEACHER_ROLES)
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
            return selectors.administered_users(user=request_user(request), roles=(Role.STUDENT,))
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
            return selectors.administered_users(user=request_user(request), roles=TEACHER_ROLES)
        return super().foreign_key_choices(db_field, request)

    def save_model(self, request: HttpRequest, obj: StudyGroup, form: Any, change: bool) -> None:
        actor = request_user(request)
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
        previous = StudyGroup.objects.get(pk=obj.pk)
        if obj.name != previous.name:
            # Through the service: audited, and the class chats take the name.
            obj.name = services.study_group_rename(actor=actor, group=previous, name=obj.name).name
        tracked = ["grade", "academic_year", "homeroom_teacher"]
        changes = model_changes(obj, tracked, {name: getattr(previous, name) for name in tracked})
        if not changes:
            return
        # No service changes a class's grade, year or homeroom teacher: a
        # plain save, audited here.
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
        actor = request_user(request)
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
        actor = request_user(request)
        formset.save(commit=False)
        for link in formset.deleted_objects:
            services.study_group_teacher_remove(actor=actor, group=group, teacher=link.teacher)
        for link, changed in formset.changed_objects:
            previous = StudyGroupTeacher.objects.select_related("teacher").get(pk=link.pk)
            if "teacher" in changed:
                services.study_group_teacher_remove(actor=actor, group=group, teacher=previous.teacher)
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

    def delete_model(self, request: HttpRequest, obj: StudyGroup) -> None:
        audit_record(
            actor=request_user(request), action="study_group.delete", target=obj, organisation_id=obj.organisation_id
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[StudyGroup]) -> None:
        for group in queryset:
            self.delete_model(request, group)
