"""REST API for imports: upload a file, then follow its job."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import parsers, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.imports.importers import FORMATS, MAPPING_KEYS
from annotation.imports.selectors import import_list, import_queue_place
from annotation.imports.services import import_create, import_get_for_user, import_progress
from annotation.models import ImportJob, ImportStatus, LabelsAs
from annotation.permissions import MANAGE, access_project
from core.api import (
    DENIED,
    PAGE_PARAMETERS,
    REFUSED,
    ApiView,
    ErrorSerializer,
    QueuePlaceSerializer,
    choice,
    paginated,
    validated,
)
from core.errors import ServiceError


class ImportProgressSerializer(serializers.Serializer):
    percent = serializers.IntegerField()
    phase = serializers.CharField()
    done = serializers.BooleanField()
    state = serializers.ChoiceField(choices=["queued", "running", "succeeded", "partial", "failed"])


class ImportJobSerializer(serializers.ModelSerializer):
    """An import and how far it got; `errors` name the line and field of every bad row.

    All-or-nothing (`partial` false): a bad row fails the import and nothing is written. Partial: the valid rows
    are written, the `rows_rejected` others stay listed in `errors` of the succeeded import.
    """

    created_by = serializers.CharField(source="created_by.username")
    progress = serializers.SerializerMethodField()
    queue = serializers.SerializerMethodField()
    queue_position = serializers.SerializerMethodField(
        help_text="while pending: how many jobs are ahead of it in the imports queue; else null"
    )

    class Meta:
        model = ImportJob
        fields = [
            "id", "file_name", "file_format", "mapping", "labels_as", "partial", "status", "progress", "total_bytes",
            "processed_bytes", "rows_read", "rows_imported", "rows_rejected", "duplicates", "duplicate_examples",
            "errors",
            "created_by", "created_at", "started_at", "finished_at", "queue", "queue_position",
        ]

    @extend_schema_field(ImportProgressSerializer)
    def get_progress(self, job: ImportJob) -> dict[str, Any]:
        return ImportProgressSerializer(import_progress(job)).data

    @extend_schema_field(QueuePlaceSerializer(allow_null=True))
    def get_queue(self, job: ImportJob) -> dict[str, Any] | None:
        place = import_queue_place(job)
        return place.as_json() if place else None

    @extend_schema_field(OpenApiTypes.INT)
    def get_queue_position(self, job: ImportJob) -> int | None:
        return (self.get_queue(job) or {}).get("position")


class ImportListApi(ApiView):
    """Owner: the project's imports, newest first; upload a JSONL or CSV file of items.

    A small file is imported before the answer comes (status succeeded or failed); a big one is queued:
    poll the import until `progress.done`.
    """

    parser_classes = [parsers.JSONParser, parsers.MultiPartParser, parsers.FormParser]
    filters = {"status": choice(ImportStatus.values)}

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(
            help_text="JSONL (one JSON object a line), CSV with a header row, CoNLL/BIO or Label Studio's JSON "
            "export (span projects), UTF-8."
        )
        file_format = serializers.ChoiceField(
            choices=list(FORMATS), required=False, allow_null=True, default=None,
            help_text="Left out: taken from the file's extension.",
        )
        mapping = serializers.JSONField(
            binary=True, required=False, allow_null=True, default=None,
            help_text=f'JSON object: which column holds what, e.g. {{"text": "prompt"}}; keys {list(MAPPING_KEYS)}.',
        )
        labels_as = serializers.ChoiceField(
            choices=LabelsAs.choices, required=False, default=LabelsAs.SUGGESTION,
            help_text="What the label column becomes: suggestions (pre-labels), one annotation per item by the "
            "project's import account, or final labels (items approved as imported).",
        )
        # DRF's metaclass moves declared fields off the class, so this does not shadow Serializer.partial
        partial = serializers.BooleanField(  # type: ignore[assignment]
            required=False, default=False,
            help_text="true: import the valid rows and report the others (line and field) in `errors`; "
            "false (default): a file with any bad row imports nothing.",
        )

    @extend_schema(
        parameters=[*PAGE_PARAMETERS, OpenApiParameter("status", str, enum=ImportStatus.values)],
        responses={200: paginated(ImportJobSerializer), **REFUSED},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        return self.page(request, import_list(project=project, **self.filter_values(request)), ImportJobSerializer)

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        responses={201: ImportJobSerializer, **REFUSED, 413: ErrorSerializer},
    )
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        upload = data["file"]
        try:
            job = import_create(
                project=project,
                user=self.user,
                file_name=upload.name,
                fileobj=upload,
                file_format=data["file_format"],
                mapping=data["mapping"],
                labels_as=data["labels_as"],
                partial=data["partial"],
            )
        except ServiceError as exc:
            if exc.field in MAPPING_KEYS:  # a mapping key: say where it sits in this request
                raise ServiceError(exc.message, field=f"mapping.{exc.field}") from exc
            raise
        return Response(ImportJobSerializer(job).data, status=status.HTTP_201_CREATED)


class ImportDetailApi(ApiView):
    """Owner: an import's status and progress; poll it until `progress.done`."""

    @extend_schema(responses={200: ImportJobSerializer, **DENIED})
    def get(self, request: Request, project_id: int, import_id: int) -> Response:
        job = import_get_for_user(user=self.user, project_id=project_id, job_id=import_id)
        return Response(ImportJobSerializer(job).data)
