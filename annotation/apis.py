"""REST API of the annotation workspace: projects, members, labels, guidelines, imports, the annotate loop,
progress and the annotations export. One class per operation, each with its nested serializers.

Every API starts with `access_project` / `access_item`: outsiders get 404 (ids reveal nothing), members
whose role does not allow the operation 403, anonymous callers 401. Writes go through one service;
a `ServiceError` answers 400 `{"detail": message, "field": field}`, and so does invalid input.

Blind promise: nothing an annotator can reach here carries another annotator's value. The annotate
endpoints only ever read the caller's own claim, draft and annotation, and the export (everyone's
values side by side) is for owners and reviewers only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import parsers, renderers, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors
from .forms import HOTKEY_RESERVED, LABEL_LISTED_TWICE, RESERVED_HOTKEYS
from .guidelines import diff_lines, render_markdown
from .importers import CSV, JSONL, MAPPING_KEYS
from .models import Annotation, Claim, GoalMetric, ImportJob, Label, Project, Role, TaskType
from .permissions import ANNOTATE, MANAGE, REVIEW, access_item, access_project
from .services import ServiceError
from .services.annotations import (
    GUIDELINES_NOT_ACKNOWLEDGED,
    annotation_submit,
    annotation_undo,
    claim_next,
    claim_skip,
    draft_save,
    guideline_state,
)
from .services.imports import import_create, import_get_for_user, import_progress
from .services.projects import (
    LEASE_MAX_SECONDS,
    LEASE_MIN_SECONDS,
    guideline_acknowledge,
    guideline_current,
    guideline_publish,
    label_create,
    membership_set_role,
    project_archive,
    project_create,
    project_set_lease,
    project_set_overlap,
)
from .views import DRAFT_NOT_HELD

NO_GUIDELINES = "This project has no guidelines yet."
GUIDELINE_NOT_CURRENT = "This is not the current guideline version: read the current one and acknowledge that."
JSONL_MEDIA_TYPE = "application/jsonl"


# --- Shared machinery: schema names, error shape, the JSONL renderer -------------------------------


class ApiSchema(AutoSchema):
    """Names components and operations after the API class they belong to.

    Every API nests classes called InputSerializer/OutputSerializer; without this they would all be one
    `Input` component and the schema would be wrong (`LabelCreateApi.InputSerializer` → `LabelCreateInput`).
    """

    def get_serializer_name(self, serializer: serializers.BaseSerializer, direction: str) -> str:
        parts = type(serializer).__qualname__.split(".")
        return "".join(part.removesuffix("Api").removesuffix("Serializer") for part in parts)

    def get_operation_id(self) -> str:
        """The API's own name (`LabelCreateApi` → `label_create`): one class per operation makes it unique."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(self.view).__name__.removesuffix("Api")).lower()


class ErrorSerializer(serializers.Serializer):
    """What every refusal looks like; `errors` lists every invalid field when the input had several."""

    detail = serializers.CharField()
    field = serializers.CharField(allow_null=True, required=False)
    errors = serializers.JSONField(required=False)


def _first_error(detail: Any, field: str | None = None) -> tuple[str | None, str]:
    """The first (field path, message) of a DRF validation error, e.g. ("labels.1", "This field ...")."""
    if not detail:
        return field, "Invalid input."
    if isinstance(detail, Mapping):
        key, value = next(iter(detail.items()))
        path = None if key == "non_field_errors" else f"{field}.{key}" if field else str(key)
        return _first_error(value, path)
    if isinstance(detail, list):
        return _first_error(detail[0], field)
    return field, str(detail)


class ApiView(APIView):
    """Base of this module's APIs: one error shape, and schema names that stay distinct."""

    schema = ApiSchema()

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ServiceError):
            return Response({"detail": exc.message, "field": exc.field}, status=status.HTTP_400_BAD_REQUEST)
        if isinstance(exc, ValidationError):
            field, message = _first_error(exc.detail)
            body = {"detail": message, "field": field, "errors": exc.detail}
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)


class JsonLinesRenderer(renderers.BaseRenderer):
    """Lets a client ask for `application/jsonl`; an error on that route still comes back as one JSON line."""

    media_type = JSONL_MEDIA_TYPE
    format = "jsonl"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return (json.dumps(data, ensure_ascii=False) + "\n").encode() if data is not None else b""


# What a member with the wrong role (403) or an outsider (404) gets.
DENIED = {403: ErrorSerializer, 404: ErrorSerializer}
REFUSED = {400: ErrorSerializer, **DENIED}


def _validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- Projects --------------------------------------------------------------------------------------


class LabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "name", "color", "hotkey", "position"]


class ProjectSerializer(serializers.Serializer):
    """A project as the caller sees it: its settings, their role, its labels and current guideline version."""

    id = serializers.IntegerField(source="project.pk")
    name = serializers.CharField(source="project.name")
    description = serializers.CharField(source="project.description")
    task_type = serializers.ChoiceField(choices=TaskType.choices, source="project.task_type")
    goal_metric = serializers.ChoiceField(choices=GoalMetric.choices, source="project.goal_metric")
    overlap = serializers.IntegerField(source="project.overlap")
    lease_seconds = serializers.IntegerField(source="project.lease_seconds")
    audit_rate = serializers.FloatField(source="project.audit_rate")
    review_all = serializers.BooleanField(source="project.review_all")
    created_at = serializers.DateTimeField(source="project.created_at")
    role = serializers.ChoiceField(choices=Role.choices)
    labels = LabelSerializer(many=True)
    guideline_version = serializers.IntegerField(allow_null=True)


class ProjectListApi(ApiView):
    """The caller's projects, newest first, archived ones left out."""

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(source="project.pk")
        name = serializers.CharField(source="project.name")
        task_type = serializers.ChoiceField(choices=TaskType.choices, source="project.task_type")
        role = serializers.ChoiceField(choices=Role.choices)
        created_at = serializers.DateTimeField(source="project.created_at")

    @extend_schema(responses={200: OutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        memberships = selectors.project_memberships_for_user(user=request.user)
        return Response(self.OutputSerializer(memberships, many=True).data)


class ProjectCreateApi(ApiView):
    """Any signed-in user may start a project and becomes its owner."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        task_type = serializers.ChoiceField(choices=TaskType.choices, default=TaskType.SINGLE_LABEL)
        labels = serializers.ListField(
            child=serializers.CharField(max_length=100), required=False, default=list,
            help_text="Label names in order; hotkeys 1-9 follow it. Empty for instruction projects.",
        )
        overlap = serializers.IntegerField(min_value=1, max_value=20, default=2)
        lease_seconds = serializers.IntegerField(min_value=LEASE_MIN_SECONDS, max_value=LEASE_MAX_SECONDS, default=900)
        goal_metric = serializers.ChoiceField(
            choices=GoalMetric.choices, required=False, allow_null=True, default=None,
            help_text="Left out: macro F1 for classification, ROUGE-L for instruction projects.",
        )
        guidelines = serializers.CharField(
            required=False, allow_blank=True, default="", trim_whitespace=False,
            help_text="Markdown, published as version 1.",
        )

        def validate_labels(self, names: list[str]) -> list[str]:
            seen: set[str] = set()
            for name in names:
                if name.casefold() in seen:
                    raise serializers.ValidationError(LABEL_LISTED_TWICE.format(name=name))
                seen.add(name.casefold())
            return names

    @extend_schema(request=InputSerializer, responses={201: ProjectSerializer, 400: ErrorSerializer})
    def post(self, request: Request) -> Response:
        data = _validated(self.InputSerializer, request.data)
        project = project_create(owner=request.user, **data)
        overview = selectors.project_overview(project=project, role=Role.OWNER)
        return Response(ProjectSerializer(overview).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(ApiView):
    @extend_schema(responses={200: ProjectSerializer, **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, role = access_project(user=request.user, project_id=project_id)
        return Response(ProjectSerializer(selectors.project_overview(project=project, role=role)).data)


class ProjectUpdateApi(ApiView):
    """Owner: change overlap and lease. Claims already taken keep the lease they were given."""

    class InputSerializer(serializers.Serializer):
        overlap = serializers.IntegerField(min_value=1, max_value=20, required=False)
        lease_seconds = serializers.IntegerField(
            min_value=LEASE_MIN_SECONDS, max_value=LEASE_MAX_SECONDS, required=False
        )

    @extend_schema(request=InputSerializer, responses={200: ProjectSerializer, **REFUSED})
    def patch(self, request: Request, project_id: int) -> Response:
        project, role = access_project(user=request.user, project_id=project_id, roles=MANAGE)
        data = _validated(self.InputSerializer, request.data)
        if data.get("overlap", project.overlap) != project.overlap:
            project_set_overlap(project=project, overlap=data["overlap"])
        if data.get("lease_seconds", project.lease_seconds) != project.lease_seconds:
            project_set_lease(project=project, lease_seconds=data["lease_seconds"])
        return Response(ProjectSerializer(selectors.project_overview(project=project, role=role)).data)


class ProjectArchiveApi(ApiView):
    """Owner: deleting a project archives it; nothing anyone did is removed, and it leaves every list."""

    @extend_schema(responses={204: None, **DENIED})
    def delete(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
        project_archive(project=project)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Members ---------------------------------------------------------------------------------------


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    role = serializers.ChoiceField(choices=Role.choices)
    created_at = serializers.DateTimeField()


class MemberListApi(ApiView):
    @extend_schema(responses={200: MemberSerializer(many=True), **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id)
        return Response(MemberSerializer(selectors.membership_list(project=project), many=True).data)


class MemberSetApi(ApiView):
    """Owner: add a user by username, or change their role; the last owner cannot step down."""

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        role = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(request=InputSerializer, responses={200: MemberSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
        data = _validated(self.InputSerializer, request.data)
        membership = membership_set_role(project=project, username=data["username"], role=data["role"])
        return Response(MemberSerializer(membership).data)


# --- Labels ----------------------------------------------------------------------------------------


class LabelListApi(ApiView):
    @extend_schema(responses={200: LabelSerializer(many=True), **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id)
        return Response(LabelSerializer(selectors.label_list(project=project), many=True).data)


class LabelCreateApi(ApiView):
    """Owner: add a label at the end of the list."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        color = serializers.RegexField(
            r"^#[0-9a-fA-F]{6}$", required=False, allow_blank=True, default="",
            error_messages={"invalid": "Use a hex colour such as #1f77b4."},
            help_text="Left out: the next colour of the default palette.",
        )
        hotkey = serializers.CharField(
            max_length=1, required=False, allow_blank=True, allow_null=True, default=None,
            help_text="Left out: the next digit while there is one; empty: no hotkey.",
        )

        def validate_hotkey(self, key: str | None) -> str | None:
            if key and key in RESERVED_HOTKEYS:
                raise serializers.ValidationError(HOTKEY_RESERVED)
            return key

    @extend_schema(request=InputSerializer, responses={201: LabelSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
        data = _validated(self.InputSerializer, request.data)
        label = label_create(project=project, name=data["name"], color=data["color"], hotkey=data["hotkey"])
        return Response(LabelSerializer(label).data, status=status.HTTP_201_CREATED)


# --- Guidelines ------------------------------------------------------------------------------------


class GuidelineVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    change_note = serializers.CharField()
    author = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()


class GuidelineListApi(ApiView):
    """Every published version, newest first."""

    @extend_schema(responses={200: GuidelineVersionSerializer(many=True), **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id)
        versions = selectors.guideline_versions(project=project)
        return Response(GuidelineVersionSerializer(versions, many=True).data)


class GuidelineCurrentApi(ApiView):
    """The current version, as Markdown and as sanitised HTML, and whether the caller acknowledged it."""

    class OutputSerializer(serializers.Serializer):
        version = serializers.IntegerField(source="guideline.version")
        body = serializers.CharField(source="guideline.body")
        html = serializers.CharField(help_text="The body rendered, every tag outside a safe list removed.")
        change_note = serializers.CharField(source="guideline.change_note")
        author = serializers.CharField(source="guideline.created_by.username")
        created_at = serializers.DateTimeField(source="guideline.created_at")
        acknowledged = serializers.BooleanField(help_text="Whether the caller acknowledged this version.")

    @extend_schema(responses={200: OutputSerializer, **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id)
        guideline, needs_ack = guideline_state(user=request.user, project=project)
        if guideline is None:
            raise Http404(NO_GUIDELINES)
        out = {"guideline": guideline, "html": render_markdown(guideline.body), "acknowledged": not needs_ack}
        return Response(self.OutputSerializer(out).data)


class GuidelinePublishApi(ApiView):
    """Owner: publish a new version; annotators must acknowledge it before their next item.

    The answer shows what changed against the previous version, line by line, and the rendered HTML.
    """

    class InputSerializer(serializers.Serializer):
        body = serializers.CharField(trim_whitespace=False, help_text="Markdown.")
        change_note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")

    class OutputSerializer(serializers.Serializer):
        class DiffLineSerializer(serializers.Serializer):
            kind = serializers.ChoiceField(choices=["same", "added", "removed"])
            text = serializers.CharField()

        version = serializers.IntegerField(source="guideline.version")
        body = serializers.CharField(source="guideline.body")
        change_note = serializers.CharField(source="guideline.change_note")
        author = serializers.CharField(source="guideline.created_by.username")
        created_at = serializers.DateTimeField(source="guideline.created_at")
        html = serializers.CharField()
        previous_version = serializers.IntegerField(allow_null=True)
        diff = DiffLineSerializer(many=True)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
        data = _validated(self.InputSerializer, request.data)
        previous = guideline_current(project=project)
        guideline = guideline_publish(
            project=project, author=request.user, body=data["body"], change_note=data["change_note"]
        )
        changes = diff_lines(previous.body if previous else "", guideline.body)
        out = {
            "guideline": guideline,
            "html": render_markdown(guideline.body),
            "previous_version": previous.version if previous else None,
            "diff": [{"kind": kind, "text": text} for kind, text in changes],
        }
        return Response(self.OutputSerializer(out).data, status=status.HTTP_201_CREATED)


class GuidelineAcknowledgeApi(ApiView):
    """Any member: confirm having read the current version. Naming the version read guards against
    acknowledging one published after the reader loaded theirs."""

    class InputSerializer(serializers.Serializer):
        version = serializers.IntegerField(required=False, help_text="The version read; left out: the current one.")

    class OutputSerializer(serializers.Serializer):
        version = serializers.IntegerField(source="guideline_version.version")
        acknowledged_at = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id)
        data = _validated(self.InputSerializer, request.data)
        current = guideline_current(project=project)
        if current is None:
            raise ServiceError(NO_GUIDELINES)
        if data.get("version", current.version) != current.version:
            raise ServiceError(GUIDELINE_NOT_CURRENT, field="version")
        ack = guideline_acknowledge(user=request.user, version=current)
        return Response(self.OutputSerializer(ack).data)


# --- Imports --------------------------------------------------------------------------------------


class ImportProgressSerializer(serializers.Serializer):
    percent = serializers.IntegerField()
    phase = serializers.CharField()
    done = serializers.BooleanField()


class ImportJobSerializer(serializers.ModelSerializer):
    """An import and how far it got; `errors` name the line and field of every bad row (nothing is written then)."""

    created_by = serializers.CharField(source="created_by.username")
    progress = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id", "file_name", "file_format", "mapping", "status", "progress", "total_bytes", "processed_bytes",
            "rows_read", "rows_imported", "duplicates", "duplicate_examples", "errors", "created_by", "created_at",
            "started_at", "finished_at",
        ]

    @extend_schema_field(ImportProgressSerializer)
    def get_progress(self, job: ImportJob) -> dict[str, Any]:
        return ImportProgressSerializer(import_progress(job)).data


class ImportCreateApi(ApiView):
    """Owner: upload a JSONL or CSV file of items. A small file is imported before the answer comes
    (status succeeded or failed); a big one is queued: poll the import until it is done."""

    parser_classes = [parsers.MultiPartParser, parsers.FormParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(help_text="JSONL (one JSON object a line) or CSV with a header row, UTF-8.")
        file_format = serializers.ChoiceField(
            choices=[JSONL, CSV], required=False, allow_null=True, default=None,
            help_text="Left out: taken from the file's extension.",
        )
        mapping = serializers.JSONField(
            binary=True, required=False, allow_null=True, default=None,
            help_text=f'JSON object: which column holds what, e.g. {{"text": "prompt"}}; keys {list(MAPPING_KEYS)}.',
        )

    @extend_schema(request=InputSerializer, responses={201: ImportJobSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
        data = _validated(self.InputSerializer, request.data)
        upload = data["file"]
        try:
            job = import_create(
                project=project,
                user=request.user,
                file_name=upload.name,
                fileobj=upload,
                file_format=data["file_format"],
                mapping=data["mapping"],
            )
        except ServiceError as exc:
            if exc.field in MAPPING_KEYS:  # a mapping key: say where it sits in this request
                raise ServiceError(exc.message, field=f"mapping.{exc.field}") from exc
            raise
        return Response(ImportJobSerializer(job).data, status=status.HTTP_201_CREATED)


class ImportDetailApi(ApiView):
    """Owner: an import's status and progress; poll it until `progress.done`."""

    @extend_schema(responses={200: ImportJobSerializer, **DENIED})
    def get(self, request: Request, project_id: int, job_id: int) -> Response:
        job = import_get_for_user(user=request.user, project_id=project_id, job_id=job_id)
        return Response(ImportJobSerializer(job).data)


# --- The annotate loop -----------------------------------------------------------------------------


class DraftSerializer(serializers.Serializer):
    value = serializers.JSONField()
    unsure = serializers.BooleanField()
    note = serializers.CharField(allow_blank=True)
    updated_at = serializers.DateTimeField()


class ClaimedItemSerializer(serializers.Serializer):
    """The item the caller holds, with their own draft: never anyone else's work (blind)."""

    item_id = serializers.IntegerField(source="claim.item.pk")
    external_id = serializers.CharField(source="claim.item.external_id")
    text = serializers.CharField(source="claim.item.text")
    response = serializers.CharField(
        source="claim.item.response", help_text="Instruction projects: the imported response to edit or judge."
    )
    metadata = serializers.JSONField(source="claim.item.metadata")
    claimed_at = serializers.DateTimeField(source="claim.claimed_at")
    lease_expires_at = serializers.DateTimeField(source="claim.lease_expires_at")
    draft = DraftSerializer(allow_null=True)
    prelabel = serializers.JSONField(
        required=False, help_text="A suggested value (imported or the model's); only when the owner shows pre-labels."
    )


def _claimed(request: Request, claim: Claim, *, project: Project, fresh: bool = False) -> dict[str, Any]:
    """A claim with the caller's draft; a fresh claim cannot have one, so it costs no query."""
    draft = None if fresh else selectors.draft_get(user=request.user, item=claim.item)
    claimed: dict[str, Any] = {"claim": claim, "draft": draft}
    if project.show_prelabels and claim.item.prelabel is not None:
        claimed["prelabel"] = claim.item.prelabel  # pre-labels bias blind labelling: absent unless shown
    return claimed


class NextItemApi(ApiView):
    """Claim the next item (or get back the one already held).

    204 when nothing is left for the caller; 409 while the current guidelines are not acknowledged.
    """

    class NeedsAckSerializer(ErrorSerializer):
        guideline_version = serializers.IntegerField()

    @extend_schema(
        request=None,
        responses={
            200: ClaimedItemSerializer,
            204: OpenApiResponse(description="Nothing is left for you to annotate."),
            409: NeedsAckSerializer,
            **DENIED,
        },
    )
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=ANNOTATE)
        state = claim_next(annotator=request.user, project=project)
        if state.needs_ack:
            body = {
                "detail": GUIDELINES_NOT_ACKNOWLEDGED,
                "field": "guidelines",
                "guideline_version": state.guideline.version,
            }
            return Response(body, status=status.HTTP_409_CONFLICT)
        if state.claim is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ClaimedItemSerializer(_claimed(request, state.claim, project=project, fresh=state.fresh)).data)


class AnnotationSerializer(serializers.ModelSerializer):
    guideline_version = serializers.IntegerField(source="guideline_version.version", allow_null=True)

    class Meta:
        model = Annotation
        fields = ["id", "item_id", "value", "unsure", "note", "guideline_version", "created_at"]


class AnnotationSubmitApi(ApiView):
    """Store the caller's value for an item they hold. Sending the same submission twice stores it once."""

    class InputSerializer(serializers.Serializer):
        value = serializers.JSONField(
            help_text='{"label": name} (single-label), {"labels": [names]} (multi-label) or {"response": text}.'
        )
        unsure = serializers.BooleanField(default=False)
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)

    @extend_schema(request=InputSerializer, responses={200: AnnotationSerializer, **REFUSED})
    def post(self, request: Request, project_id: int, item_id: int) -> Response:
        item, _ = access_item(user=request.user, project_id=project_id, item_id=item_id, roles=ANNOTATE)
        data = _validated(self.InputSerializer, request.data)
        labels = selectors.label_list(project=item.project)
        annotation = annotation_submit(
            annotator=request.user,
            item=item,
            value=data["value"],
            label_names=[label.name for label in labels],
            unsure=data["unsure"],
            note=data["note"],
        )
        return Response(AnnotationSerializer(annotation).data)


class ClaimSkipApi(ApiView):
    """Give an item back with a reason; the caller is not offered it again."""

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(allow_blank=True, max_length=500)

    class OutputSerializer(serializers.Serializer):
        item_id = serializers.IntegerField()
        status = serializers.CharField()
        reason = serializers.CharField(source="skip_reason")

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **REFUSED})
    def post(self, request: Request, project_id: int, item_id: int) -> Response:
        item, _ = access_item(user=request.user, project_id=project_id, item_id=item_id, roles=ANNOTATE)
        data = _validated(self.InputSerializer, request.data)
        claim = claim_skip(annotator=request.user, item=item, reason=data["reason"])
        return Response(self.OutputSerializer(claim).data)


class AnnotationUndoApi(ApiView):
    """Take back the caller's latest submission while nobody has reviewed it: the item is theirs again,
    its value kept as their draft."""

    @extend_schema(request=None, responses={200: ClaimedItemSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=ANNOTATE)
        claim = annotation_undo(annotator=request.user, project=project)
        return Response(ClaimedItemSerializer(_claimed(request, claim, project=project)).data)


class DraftSaveApi(ApiView):
    """Autosave whatever the caller has so far, valid or not yet, while they hold the item (409 after)."""

    class InputSerializer(serializers.Serializer):
        value = serializers.JSONField()
        unsure = serializers.BooleanField(default=False)
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)

    @extend_schema(request=InputSerializer, responses={200: DraftSerializer, 409: ErrorSerializer, **REFUSED})
    def post(self, request: Request, project_id: int, item_id: int) -> Response:
        item, _ = access_item(user=request.user, project_id=project_id, item_id=item_id, roles=ANNOTATE)
        data = _validated(self.InputSerializer, request.data)
        if selectors.claim_active_get(user=request.user, project=item.project, item_id=item.pk) is None:
            return Response({"detail": DRAFT_NOT_HELD, "field": None}, status=status.HTTP_409_CONFLICT)
        draft = draft_save(annotator=request.user, item=item, **data)
        return Response(DraftSerializer(draft).data)


# --- Progress --------------------------------------------------------------------------------------


class ProjectProgressApi(ApiView):
    """Item counts by stage, for every member: counts only, no values."""

    class OutputSerializer(serializers.Serializer):
        total = serializers.IntegerField()
        done = serializers.IntegerField(help_text="Items with all their annotations (annotated, in review, approved).")
        in_annotation = serializers.IntegerField()
        new = serializers.IntegerField()
        percent = serializers.IntegerField()

    @extend_schema(responses={200: OutputSerializer, **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id)
        return Response(self.OutputSerializer(selectors.project_progress(project=project)).data)


class MyProgressApi(ApiView):
    """What the caller has annotated, skipped and holds, and how much is still open to them."""

    class OutputSerializer(serializers.Serializer):
        submitted = serializers.IntegerField()
        skipped = serializers.IntegerField()
        holding = serializers.IntegerField()
        open_for_me = serializers.IntegerField()
        percent = serializers.IntegerField()

    @extend_schema(responses={200: OutputSerializer, **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=ANNOTATE)
        return Response(self.OutputSerializer(selectors.annotator_progress(user=request.user, project=project)).data)


# --- Export ----------------------------------------------------------------------------------------


def _jsonl(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"


class AnnotationExportApi(ApiView):
    """Every submitted annotation as JSON Lines, streamed: one line per annotation, items in id order.

    Owners and reviewers only: it shows every annotator's value, which the blind promise keeps from
    annotators (403).
    """

    renderer_classes = [renderers.JSONRenderer, JsonLinesRenderer]

    @extend_schema(
        responses={
            (200, JSONL_MEDIA_TYPE): OpenApiResponse(
                response=OpenApiTypes.STR,
                description=(
                    "One JSON object per line: item_id, external_id, text, annotator, value, unsure, note, "
                    "guideline_version, created_at."
                ),
            ),
            **DENIED,
        }
    )
    def get(self, request: Request, project_id: int) -> StreamingHttpResponse:
        project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
        lines = _jsonl(selectors.annotations_export_rows(project=project))
        response = StreamingHttpResponse(lines, content_type=f"{JSONL_MEDIA_TYPE}; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="project-{project.pk}-annotations.jsonl"'
        return response
