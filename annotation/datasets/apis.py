"""REST API of datasets: snapshots (list, create, read, download, compare) and the items as data (list, export)."""

from __future__ import annotations

from django.http import Http404, HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import renderers, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.datasets import services as snapshots
from annotation.datasets.items import item_get, item_list, items_export_rows
from annotation.datasets.responses import FORMATS as EXPORT_FORMATS
from annotation.datasets.responses import snapshot_export
from annotation.datasets.selectors import snapshot_get, snapshot_list, snapshot_pair
from annotation.models import Item, ItemStatus, Snapshot, Split
from annotation.permissions import MANAGE, REVIEW, access_project
from core.api import (
    DENIED,
    PAGE_PARAMETERS,
    REFUSED,
    SEED_MAX,
    ApiView,
    boolean,
    choice,
    jsonl_export_responses,
    moment,
    paginated,
    text,
    validated,
    whole_number,
)
from core.streaming import JSONL_MEDIA_TYPE, JsonLinesRenderer, jsonl_response

NO_SUCH_SNAPSHOT = "No such snapshot."


NO_SUCH_ITEM = "No such item."


class SnapshotSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = Snapshot
        fields = ["id", "name", "content_hash", "item_count", "seed", "manifest", "created_by", "created_at"]


def _snapshot(project_id: int, snapshot_id: int, request: Request) -> Snapshot:
    project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    snapshot = snapshot_get(project=project, snapshot_id=snapshot_id)
    if snapshot is None:
        raise Http404(NO_SUCH_SNAPSHOT)
    return snapshot


class SnapshotListApi(ApiView):
    """Owners and reviewers: the project's snapshots, newest first; the owner creates one."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=SEED_MAX)
        ratios = serializers.ListField(
            child=serializers.FloatField(min_value=0), min_length=3, max_length=3, required=False,
            default=list(snapshots.DEFAULT_RATIOS), help_text="Train, validation, test.",
        )
        group_field = serializers.CharField(required=False, allow_blank=True, default="")
        balance_mode = serializers.CharField(required=False, allow_blank=True, default="")
        allow_small_test = serializers.BooleanField(
            required=False, default=False,
            help_text="Make the snapshot even when its test split has fewer than LABELLOOP_MIN_TEST_PER_LABEL items "
            "of some label; its manifest then carries the warning.",
        )

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: paginated(SnapshotSerializer), **REFUSED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        self.filter_values(request)
        return self.page(request, snapshot_list(project=project), SnapshotSerializer)

    @extend_schema(request=InputSerializer, responses={201: SnapshotSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        snapshot = snapshots.snapshot_create(project=project, user=self.user, **data)
        return Response(SnapshotSerializer(snapshot).data, status=status.HTTP_201_CREATED)


class SnapshotDetailApi(ApiView):
    """Owners and reviewers: one snapshot, its content hash, split counts and manifest."""

    @extend_schema(responses={200: SnapshotSerializer, **DENIED})
    def get(self, request: Request, project_id: int, snapshot_id: int) -> Response:
        return Response(SnapshotSerializer(_snapshot(project_id, snapshot_id, request)).data)


class SnapshotDownloadApi(ApiView):
    """The canonical JSONL, whole or one split (?split=train|validation|test); span snapshots also as
    ?export=conll, labelstudio (Label Studio's JSON) or bio (the base model's tokens with BIO tags, JSONL)."""

    renderer_classes = [renderers.JSONRenderer, JsonLinesRenderer]
    filters = {"split": choice(Split.values), "export": choice(EXPORT_FORMATS)}

    @extend_schema(
        parameters=[
            OpenApiParameter("split", str, enum=Split.values, required=False),
            OpenApiParameter("export", str, enum=list(EXPORT_FORMATS), required=False),
        ],
        responses={(200, JSONL_MEDIA_TYPE): OpenApiTypes.BINARY, **REFUSED},
    )
    def get(self, request: Request, project_id: int, snapshot_id: int) -> HttpResponse | StreamingHttpResponse:
        snapshot = _snapshot(project_id, snapshot_id, request)
        values = self.filter_values(request)
        return snapshot_export(snapshot=snapshot, split=values.get("split", ""), fmt=values.get("export", ""))


class SnapshotCompareApi(ApiView):
    """Items added, removed and relabelled between two snapshots of the project (?old=&new=)."""

    filters = {"old": whole_number, "new": whole_number}

    @extend_schema(
        parameters=[OpenApiParameter("old", int, required=True), OpenApiParameter("new", int, required=True)],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The differences."), **REFUSED},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        wanted = self.filter_values(request)
        old, new = snapshot_pair(project=project, old_id=wanted.get("old"), new_id=wanted.get("new"))
        return Response(snapshots.snapshot_compare(old=old, new=new))


class ItemSerializer(serializers.ModelSerializer):
    split = serializers.ChoiceField(choices=Split.choices, allow_null=True, help_text="Given by its first snapshot.")
    final_value = serializers.JSONField(
        allow_null=True, help_text="The reviewed or agreed value of an approved item; null while you could annotate it."
    )

    class Meta:
        model = Item
        fields = [
            "id", "external_id", "text", "response", "metadata", "group_key", "status", "split", "final_value",
            "import_job", "created_at",
        ]


class ItemListApi(ApiView):
    """Owners and reviewers: the project's items in id order, with status, split and final value.

    Annotators get 403: the list shows final values, which the blind promise keeps from them.
    """

    filters = {
        "status": choice(ItemStatus.values),
        "split": choice(Split.values),
        "has_final_value": boolean,
        "external_id": text,
        "group_key": text,
        "q": text,
        "created_after": moment,
        "created_before": moment,
    }

    @extend_schema(
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("status", str, enum=ItemStatus.values),
            OpenApiParameter("split", str, enum=Split.values),
            OpenApiParameter("has_final_value", bool),
            OpenApiParameter("external_id", str),
            OpenApiParameter("group_key", str),
            OpenApiParameter("q", str, description="Text contains (ignoring case)."),
            OpenApiParameter("created_after", str, description="ISO 8601; inclusive."),
            OpenApiParameter("created_before", str, description="ISO 8601; exclusive."),
        ],
        responses={200: paginated(ItemSerializer), **REFUSED},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, role = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        items = item_list(project=project, viewer=self.user, role=role, **self.filter_values(request))
        return self.page(request, items, ItemSerializer)


class ItemDetailApi(ApiView):
    """Owners and reviewers: one item, its text, status, final label and split."""

    @extend_schema(responses={200: ItemSerializer, **DENIED})
    def get(self, request: Request, project_id: int, item_id: int) -> Response:
        project, role = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        item = item_get(project=project, viewer=self.user, role=role, item_id=item_id)
        if item is None:
            raise Http404(NO_SUCH_ITEM)
        return Response(ItemSerializer(item).data)


class ItemExportApi(ApiView):
    """Owners and reviewers: every item as JSON Lines, streamed in id order (constant memory)."""

    renderer_classes = [renderers.JSONRenderer, JsonLinesRenderer]

    @extend_schema(
        responses=jsonl_export_responses(
            "One JSON object per line: item_id, external_id, text, response, metadata, group_key, status, "
            "split, final_value, created_at."
        )
    )
    def get(self, request: Request, project_id: int) -> StreamingHttpResponse:
        project, role = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        rows = items_export_rows(project=project, viewer=self.user, role=role)
        return jsonl_response(rows, f"project-{project.pk}-items.jsonl")
