"""REST API for review, quality, noise scans and snapshots: one class per operation.

Every API starts with `access_project` / `access_item` (404 outside the project, 403 for the wrong
role) and calls one service or selector; errors from services come back as 400 naming the field.
"""

from __future__ import annotations

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors_review
from .models import NoiseScan, Snapshot
from .permissions import ANY_ROLE, MANAGE, REVIEW, access_item, access_project
from .services import ServiceError, quality, reviews, snapshots
from .views_review import snapshot_stream


def _error(exc: ServiceError) -> Response:
    return Response({"detail": exc.message, "field": exc.field}, status=status.HTTP_400_BAD_REQUEST)


class AnnotationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    annotator = serializers.CharField()
    value = serializers.JSONField()
    unsure = serializers.BooleanField()
    note = serializers.CharField()
    guideline_version = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class ReviewTaskListApi(APIView):
    """Open review tasks, most urgent first (the first 50), each with its reasons and every annotator's label."""

    class Output(serializers.Serializer):
        id = serializers.IntegerField(source="task.pk")
        item_id = serializers.IntegerField(source="item.pk")
        text = serializers.CharField(source="item.text")
        reasons = serializers.ListField(source="task.reasons", child=serializers.CharField())
        noise_score = serializers.FloatField(source="task.noise_score", allow_null=True)
        suggested_value = serializers.JSONField(source="task.suggested_value", allow_null=True)
        created_at = serializers.DateTimeField(source="task.created_at")
        annotations = AnnotationOutput(many=True)

    @extend_schema(responses=Output(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project, role = access_project(user=request.user, project_id=project_id, roles=REVIEW)
        rows = selectors_review.review_task_rows(project=project, user=request.user, role=role)
        return Response(self.Output(rows, many=True).data)


class ReviewDecideApi(APIView):
    """accept an annotation, fix the value, or send the item back to its annotators."""

    class Input(serializers.Serializer):
        action = serializers.ChoiceField(choices=["accept", "fix", "send_back"])
        annotation_id = serializers.IntegerField(required=False)
        value = serializers.JSONField(required=False)
        reason = serializers.CharField(required=False, allow_blank=True, default="")
        comment = serializers.CharField(required=False, allow_blank=True, default="")

    class Output(serializers.Serializer):
        task_id = serializers.IntegerField()
        status = serializers.CharField()
        decision_id = serializers.IntegerField(allow_null=True)
        value = serializers.JSONField(allow_null=True)

    @extend_schema(request=Input, responses=Output)
    def post(self, request: Request, project_id: int, task_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
        task = selectors_review.review_task_get(project=project, task_id=task_id)
        if task is None:
            raise Http404("No such review task.")
        task.item.project = project
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        decision = None
        try:
            if d["action"] == "accept":
                if "annotation_id" not in d:
                    raise ServiceError(reviews.NOT_AN_ANNOTATION, field="annotation_id")
                decision = reviews.review_accept(
                    reviewer=request.user, task=task, annotation_id=d["annotation_id"], reason=d["reason"]
                )
            elif d["action"] == "fix":
                decision = reviews.review_decide(
                    reviewer=request.user, task=task, value=d.get("value"), reason=d["reason"]
                )
            else:
                reviews.review_send_back(reviewer=request.user, task=task, comment=d["comment"])
        except ServiceError as exc:
            return _error(exc)
        out = {
            "task_id": task.pk,
            "status": task.status,
            "decision_id": decision.pk if decision else None,
            "value": decision.value if decision else None,
        }
        return Response(self.Output(out).data)


class ItemHistoryApi(APIView):
    class Output(serializers.Serializer):
        at = serializers.DateTimeField()
        kind = serializers.CharField()
        who = serializers.CharField()
        summary = serializers.CharField()
        value = serializers.CharField()
        guideline_version = serializers.IntegerField(allow_null=True)

    @extend_schema(responses=Output(many=True))
    def get(self, request: Request, project_id: int, item_id: int) -> Response:
        item, role = access_item(user=request.user, project_id=project_id, item_id=item_id, roles=REVIEW)
        if selectors_review.blind_to(user=request.user, role=role, item=item):
            return Response({"detail": selectors_review.STILL_ANNOTATABLE}, status=status.HTTP_403_FORBIDDEN)
        return Response(self.Output(selectors_review.item_history(item=item), many=True).data)


class QualityApi(APIView):
    """Agreement, accuracy, confusion and trend; an annotator gets only their own accuracy."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, project_id: int) -> Response:
        project, role = access_project(user=request.user, project_id=project_id, roles=ANY_ROLE)
        return Response(selectors_review.quality_report(project=project, user=request.user, role=role))


class NoiseScanOutput(serializers.ModelSerializer):
    class Meta:
        model = NoiseScan
        fields = ["id", "status", "progress", "message", "params", "summary", "created_at", "started_at", "finished_at"]


class NoiseScanStartApi(APIView):
    class Input(serializers.Serializer):
        seed = serializers.IntegerField(required=False, default=0)

    @extend_schema(request=Input, responses=NoiseScanOutput)
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            scan = quality.noise_scan_start(project=project, user=request.user, params=dict(data.validated_data))
        except ServiceError as exc:
            return _error(exc)
        return Response(NoiseScanOutput(scan).data, status=status.HTTP_202_ACCEPTED)


class NoiseScanDetailApi(APIView):
    @extend_schema(responses=NoiseScanOutput)
    def get(self, request: Request, project_id: int, scan_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
        scan = NoiseScan.objects.filter(project=project, pk=scan_id).first()
        if scan is None:
            raise Http404("No such scan.")
        return Response(NoiseScanOutput(scan).data)


class SnapshotOutput(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = Snapshot
        fields = ["id", "name", "content_hash", "item_count", "seed", "manifest", "created_by", "created_at"]


def _snapshot(project_id: int, snapshot_id: int, request: Request) -> Snapshot:
    project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
    snapshot = selectors_review.snapshot_get(project=project, snapshot_id=snapshot_id)
    if snapshot is None:
        raise Http404("No such snapshot.")
    return snapshot


class SnapshotListApi(APIView):
    @extend_schema(responses=SnapshotOutput(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
        rows = selectors_review.snapshot_list(project=project)
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
            old, new = selectors_review.snapshot_pair(
                project=project, old_id=request.query_params.get("old"), new_id=request.query_params.get("new")
            )
        except ServiceError as exc:
            return _error(exc)
        return Response(snapshots.snapshot_compare(old=old, new=new))
