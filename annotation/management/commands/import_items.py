"""`manage.py import_items`: import a JSONL or CSV file into a project, as its owner would through the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.http import Http404

from annotation.imports.importers import ALL_OTHER_FIELDS, FORMATS
from annotation.imports.services import import_create
from annotation.models import ImportStatus, LabelsAs, Project
from core.errors import ServiceError

MAPPING_OPTIONS = {
    "text_field": "text",
    "response_field": "response",
    "id_field": "external_id",
    "group_field": "group_key",
    "prelabel_field": "prelabel",
}


class Command(BaseCommand):
    help = (
        "Import items from a JSONL or CSV file. Small files import now; bigger ones go to the 'imports' "
        "queue (run `manage.py rqworker imports`) unless --now is given. A file with any bad row imports nothing, "
        "unless --partial is given: then the valid rows are imported and the others listed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", type=int, required=True, help="Project id.")
        parser.add_argument("--file", required=True, help="Path to the .jsonl or .csv file.")
        parser.add_argument("--format", choices=FORMATS, help="Default: from the file's extension.")
        parser.add_argument("--user", help="An owner of the project who imports (default: its creator).")
        parser.add_argument("--text-field", help="Source field of the text or prompt (default: text, then prompt).")
        parser.add_argument("--response-field", help="Source field of the response (default: response).")
        parser.add_argument("--id-field", help="Source field of the external id (default: id, then external_id).")
        parser.add_argument("--group-field", help="Source field of the group key (default: group_key, then group).")
        parser.add_argument(
            "--prelabel-field", help="Source field of the pre-label (default: label, labels, prelabel)."
        )
        parser.add_argument(
            "--metadata-fields",
            help=f'Comma-separated fields kept as metadata; "{ALL_OTHER_FIELDS}" (default) keeps all other fields, '
            '"" keeps none.',
        )
        parser.add_argument(
            "--labels-as",
            choices=LabelsAs.values,
            default=LabelsAs.SUGGESTION,
            help="What the label column becomes: suggestion (pre-labels shown to annotators, the default), "
            "annotation (one annotation per item by the project's import account), final (items approved).",
        )
        parser.add_argument(
            "--partial",
            action="store_true",
            help="Import the valid rows and list the others (line and field), instead of importing nothing.",
        )
        parser.add_argument("--now", action="store_true", help="Import in this process whatever the file's size.")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(pk=options["project"], archived_at__isnull=True).first()
        if project is None:
            raise CommandError(f"No project with id {options['project']}.")
        user = project.created_by
        if options["user"]:
            named = get_user_model().objects.filter(username=options["user"]).first()
            if named is None:
                raise CommandError(f"No user named {options['user']!r}.")
            user = named
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No file at {path}.")

        try:
            with path.open("rb") as fileobj:
                job = import_create(
                    project=project,
                    user=user,
                    file_name=path.name,
                    fileobj=fileobj,
                    file_format=options["format"],
                    mapping=self._mapping(options),
                    labels_as=options["labels_as"],
                    partial=options["partial"],
                    inline=True if options["now"] else None,
                )
        except (Http404, PermissionDenied) as exc:
            raise CommandError(f"{user} is not an owner of project {project.pk}.") from exc
        except ServiceError as exc:
            raise CommandError(exc.message) from exc

        if job.status == ImportStatus.PENDING:
            self.stdout.write(f"Import {job.pk} queued on 'imports'; a worker (manage.py rqworker imports) runs it.")
            return
        if job.status == ImportStatus.FAILED:
            for error in job.errors:
                self.stderr.write(error["message"])
            raise CommandError(f"{job.file_name}: nothing imported.")
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {job.rows_imported} items from {job.file_name} into {project.name!r} "
                f"({job.duplicates} exact duplicates skipped)."
            )
        )
        for example in job.duplicate_examples:
            of = f"line {example['first_line']}" if "first_line" in example else f"item {example['item_id']}"
            self.stdout.write(f"  line {example['line']} duplicates {of}")
        if job.rows_rejected:
            self.stderr.write(f"{job.rows_rejected} rows with errors were not imported:")
            for error in job.errors:
                self.stderr.write(f"  {error['message']}")

    @staticmethod
    def _mapping(options: dict[str, Any]) -> dict[str, Any]:
        mapping: dict[str, Any] = {
            key: options[opt] for opt, key in MAPPING_OPTIONS.items() if options[opt] is not None
        }
        fields = options["metadata_fields"]
        if fields is not None:
            fields = fields.strip()
            mapping["metadata"] = (
                fields if fields == ALL_OTHER_FIELDS else [f.strip() for f in fields.split(",") if f.strip()]
            )
        return mapping
