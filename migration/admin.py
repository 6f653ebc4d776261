"""Admin of the migration: uploading an export (imported by Celery, with its
progress and per-chat report on the page), the old chats and the notices
posted into them (permanent errors shown, and sent again on request).

Administrators see only their organisations' rows (organisations' scoping)."""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from migration import services
from migration.export import ExportInvalid, export_parse
from migration.models import ImportRun, ImportStatus, LegacyChat, LegacyNotice, NoticeStatus
from migration.selectors import organisation_by_inn
from organisations.admin.scoping import ScopedModelAdmin, organisation_in_scope, request_user

UPLOAD_MAX_BYTES_DEFAULT = 200 * 1024 * 1024


class ImportUploadForm(forms.ModelForm):
    export_file = forms.FileField(
        label=gettext_lazy("Export file (JSON)"),
        help_text=gettext_lazy("The export of the old messenger; it is checked as a whole before anything changes."),
    )

    class Meta:
        model = ImportRun
        fields = ("is_dry_run",)

    request: HttpRequest

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        upload = cleaned.get("export_file")
        if upload is None:
            return cleaned
        limit = getattr(settings, "LEGACY_IMPORT_MAX_BYTES", UPLOAD_MAX_BYTES_DEFAULT)
        if upload.size > limit:
            raise forms.ValidationError(_("The file is too large."))
        raw = upload.read()
        try:
            export = export_parse(raw)
        except ExportInvalid as error:
            raise forms.ValidationError([str(line) for line in error.message.splitlines()]) from error
        organisation = organisation_by_inn(inn=export.inn)
        if organisation is None or not organisation_in_scope(self.request, organisation.pk):
            raise forms.ValidationError(_("No organisation you administer has the INN %(inn)s.") % {"inn": export.inn})
        self.organisation = organisation
        self.content = raw.decode("utf-8")
        self.total = len(export.conversations)
        return cleaned


@admin.register(ImportRun)
class ImportRunAdmin(ScopedModelAdmin):
    list_display = ("file_name", "organisation", "is_dry_run", "status", "progress_text", "uploaded_by", "created_at")
    list_filter = ("status", "is_dry_run")
    list_select_related = ("organisation", "uploaded_by")
    add_form = ImportUploadForm
    add_fieldsets = ((None, {"fields": ("export_file", "is_dry_run")}),)
    readonly_fields = (
        "organisation",
        "file_name",
        "is_dry_run",
        "status",
        "progress",
        "uploaded_by",
        "started_at",
        "finished_at",
        "error",
        "report_table",
    )
    fields = readonly_fields
    change_form_template = "admin/migration/importrun/change_form.html"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form_class = super().get_form(request, obj, change, **kwargs)
        if obj is None:
            # The form checks the INN against the person's scope.
            return type("BoundImportUploadForm", (form_class,), {"request": request})
        return form_class

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ImportRun, form: Any, change: bool) -> None:
        run = services.import_run_create(
            actor=request_user(request),
            organisation=form.organisation,
            file_name=form.cleaned_data["export_file"].name,
            content=form.content,
            is_dry_run=form.cleaned_data["is_dry_run"],
            total=form.total,
        )
        obj.pk, obj.organisation, obj.file_name, obj.status = run.pk, run.organisation, run.file_name, run.status

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return None

    @admin.display(description=gettext_lazy("progress"))
    def progress_text(self, run: ImportRun) -> str:
        return f"{run.done} / {run.total}"

    @admin.display(description=gettext_lazy("progress"))
    def progress(self, run: ImportRun) -> str:
        return format_html(
            '<progress id="import-progress" value="{}" max="{}" aria-label="{}">{}%</progress> '
            '<span id="import-progress-text">{} / {} ({}%)</span>',
            run.done,
            max(run.total, 1),
            _("progress"),
            run.percent,
            run.done,
            run.total,
            run.percent,
        )

    @admin.display(description=gettext_lazy("result per chat"))
    def report_table(self, run: ImportRun) -> str:
        if not run.report:
            return "—"
        statuses = {"migrated": _("migrated"), "skipped": _("skipped"), "unchanged": _("unchanged")}
        if run.is_dry_run:
            statuses["migrated"] = _("will be migrated")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    line["peer_id"],
                    statuses.get(line["status"], line["status"]),
                    _(line["reason"]) if line.get("reason") else "—",
                    line.get("chat_id") or "—",
                    line.get("invited", 0),
                    "; ".join(f"{item['member_id']}: {_(item['reason'])}" for item in line.get("refused", [])) or "—",
                )
                for line in run.report
            ),
        )
        return format_html(
            '<table id="import-report"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>'
            "<th>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("Old chat (peer_id)"),
            _("Result"),
            _("Reason"),
            _("New chat"),
            _("Invited by SMS"),
            _("Members refused"),
            rows,
        )

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        original = context.get("original")
        context["is_in_progress"] = original is not None and original.status in (
            ImportStatus.QUEUED,
            ImportStatus.RUNNING,
        )
        return super().render_change_form(request, context, *args, **kwargs)


@admin.register(LegacyChat)
class LegacyChatAdmin(ScopedModelAdmin):
    list_display = ("peer_id", "title", "organisation", "chat", "is_read_only", "migrated_at", "notice_status")
    list_filter = ("is_read_only",)
    list_select_related = ("organisation", "chat", "notice")
    search_fields = ("=peer_id", "title")
    readonly_fields = (
        "organisation",
        "peer_id",
        "title",
        "chat",
        "owner",
        "migrated_at",
        "is_read_only",
        "members_added",
        "members_invited",
        "members_refused",
        "messages_imported",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=gettext_lazy("notice"))
    def notice_status(self, legacy: LegacyChat) -> str:
        notice = getattr(legacy, "notice", None)
        return notice.get_status_display() if notice is not None else "—"


@admin.register(LegacyNotice)
class LegacyNoticeAdmin(ScopedModelAdmin):
    organisation_lookup = "legacy_chat__organisation"
    list_display = ("legacy_chat", "status", "attempts", "error_code", "last_error", "sent_at", "updated_at")
    list_filter = ("status",)
    list_select_related = ("legacy_chat",)
    readonly_fields = (
        "legacy_chat",
        "status",
        "random_id",
        "text",
        "attempts",
        "error_code",
        "last_error",
        "legacy_message_id",
        "sent_at",
    )
    fields = readonly_fields
    actions = ["send_again"]

    def _may_administer(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if obj is None or obj.pk is None:
            return super()._may_administer(request, obj)
        return super()._may_administer(request, None) and organisation_in_scope(
            request,
            obj.legacy_chat.organisation_id,  # type: ignore[attr-defined]
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=gettext_lazy("Send the failed notices again"))
    def send_again(self, request: HttpRequest, queryset: QuerySet[LegacyNotice]) -> None:
        failed = list(queryset.filter(status=NoticeStatus.FAILED).values_list("pk", flat=True))
        for notice_id in failed:
            services.legacy_notice_retry(notice_id=notice_id, actor=request_user(request))
        message = ngettext(
            "%(count)d notice will be sent again.", "%(count)d notices will be sent again.", len(failed)
        ) % {"count": len(failed)}
        self.message_user(request, message, messages.SUCCESS)
