"""REST API for snapshots: list, create, read, download and compare."""

from __future__ import annotations

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.datasets import services as snapshots
from annotation.datasets.responses import snapshot_stream
from annotation.datasets.selectors import snapshot_get, snapshot_list, snapshot_pair
from annotation.models import Snapshot
from annotation.permissions import MANAGE, REVIEW, access_project
from annotation.review.apis import _error
from core.errors import ServiceError


class SnapshotOutput(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = Snapshot
        fields = ["id", "name", "content_hash", "item_count", "seed", "manifest", "created_by", "created_at"]


def _snapshot(project_id: int, snapshot_id: int, request: Request) -> Snapshot:
    project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    snapshot = snapshot_get(project=project, snapshot_id=snapshot_id)
    if snapshot is None:
        raise Http404("No such snapshot.")
    return snapshot


class SnapshotListApi(APIView):
    @extend_schema(responses=SnapshotOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
        rows = snapshot_list(project=project)
        return Response(SnapshotOutput(rows, many=True).data)


class SnapshotCreateApi(APIView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        seed = serializers.IntegerField(required=False, default=0)
        ratios = serializers.ListField(
            child=serializers.FloatField(min_value=0), min_length=3, max_length=3, required=False,
            default=list(snapshots.DEFAULT_RATIOS),
        )
        group_field = serializers.CharField(required=False, allow_blank=True, default="")
        balance_mode = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(request=Input, responses=SnapshotOutput)
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            snapshot = snapshots.snapshot_create(project=project, user=request.user, **data.validated_data)
        except ServiceError as exc:
            return _error(exc)
        return Response(SnapshotOutput(snapshot).data, status=status.HTTP_201_CREATED)


class SnapshotDetailApi(APIView):
    @extend_schema(responses=SnapshotOutput)
    def get(self, request: Request, project_id: int, snapshot_id: int) -> Response:
        return Response(SnapshotOutput(_snapshot(project_id, snapshot_id, request)).data)


class SnapshotDownloadApi(APIView):
    """The canonical JSONL, whole or one split (?split=train|validation|test)."""

    @extend_schema(
        parameters=[OpenApiParameter("split", str, enum=["train", "validation", "test"], required=False)],
        responses={(200, "application/jsonl"): OpenApiTypes.BINARY, 400: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, project_id: int, snapshot_id: int) -> StreamingHttpResponse | Response:
        snapshot = _snapshot(project_id, snapshot_id, request)
        split = request.query_params.get("split", "")
        try:
            return snapshot_stream(snapshot=snapshot, split=split)
        except ServiceError as exc:
            return _error(exc)


class SnapshotCompareApi(APIView):
    """Items added, removed and relabelled between two snapshots of the project (?old=&new=)."""

    @extend_schema(
        parameters=[OpenApiParameter("old", int, required=True), OpenApiParameter("new", int, required=True)],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
        try:
            old, new = snapshot_pair(
                project=project, old_id=request.query_params.get("old"), new_id=request.query_params.get("new")
            )
        except ServiceError as exc:
            return _error(exc)
        return Response(snapshots.snapshot_compare(old=old, new=new))
