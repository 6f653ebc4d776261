"""python manage.py import_legacy_chats EXPORT.json [--dry-run] [--report REPORT.json] (SPEC §9.1)."""

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from migration.export import ExportInvalid, export_parse
from migration.services import export_import, report_summary


class Command(BaseCommand):
    help = "Import an organisation's chats from an export of the old messenger (SPEC §9.1)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("export", help="the export file (JSON, UTF-8)")
        parser.add_argument("--dry-run", action="store_true", help="report what would happen, change nothing")
        parser.add_argument("--report", help="write the per-conversation report (JSON list) to this file")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["export"])
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise CommandError(f"{path}: {error.strerror}") from error
        try:
            export = export_parse(raw)
        except ExportInvalid as error:
            raise CommandError(f"{path}: the export is invalid, nothing was changed:\n{error}") from error
        show_bar = not options["no_progress"] and options.get("verbosity", 1) > 0
        with tqdm(
            total=len(export.conversations),
            unit="chat",
            desc="dry run" if options["dry_run"] else "import",
            disable=not show_bar,
            file=sys.stderr,
        ) as bar:
            try:
                results = export_import(export=export, dry_run=options["dry_run"], progress=bar.update)
            except ExportInvalid as error:
                raise CommandError(f"{path}: nothing was changed:\n{error}") from error
        report = [result.as_report() for result in results]
        if options["report"]:
            Path(options["report"]).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
        summary = report_summary(results)
        prefix = "Dry run, nothing changed: " if options["dry_run"] else ""
        self.stdout.write(
            prefix
            + f"{summary['migrated']} migrated, {summary['unchanged']} unchanged, {summary['skipped']} skipped "
            + f"of {len(results)} conversations."
        )
