"""The import of classes and members from an organisation's admin page,
and the record of every import with its error report."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from organisations import importing
from organisations.admin.scoping import ScopedModelAdmin, request_user
from organisations.models import EDUCATIONAL_KINDS, ImportJob, Organisation


class ImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("File (CSV or XLSX)"),
        widget=forms.ClearableFileInput(
            attrs={"accept": ".csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
        ),
    )


class OrganisationImportAdmin(ScopedModelAdmin):
    """The organisation admin's import page: "Import" on the page of a
    school, a kindergarten or a college for whoever may change it."""

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
                actor=request_user(request), organisation=organisation, uploaded_file=form.cleaned_data["file"]
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
