"""REST API of review: the review queue, decisions and an item's history."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.permissions import REVIEW, access_item, access_project
from annotation.review import services as reviews
from annotation.review.selectors import STILL_ANNOTATABLE, blind_to, item_history, review_task_get, review_task_rows
from core.errors import ServiceError


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
        rows = review_task_rows(project=project, user=request.user, role=role)
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
        task = review_task_get(project=project, task_id=task_id)
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
        if blind_to(user=request.user, role=role, item=item):
            return Response({"detail": STILL_ANNOTATABLE}, status=status.HTTP_403_FORBIDDEN)
        return Response(self.Output(item_history(item=item), many=True).data)
