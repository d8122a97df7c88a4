"""REST API of review: review tasks (listed, read, decided) and an item's history."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.models import DecisionSource, ReviewReason, ReviewStatus
from annotation.permissions import MANAGE, REVIEW, access_item, access_project, access_review_task
from annotation.review.selectors import item_history_for, review_task_rows_of, review_tasks
from annotation.review.services import (
    BULK_MAX,
    REASON_MAX,
    REVIEW_ACTIONS,
    item_overrule,
    review_act,
    review_bulk_accept,
    review_bulk_plan,
)
from core.api import CONFLICT, ID_MAX, PAGE_PARAMETERS, REFUSED, ApiView, choice, paginated, validated
from core.errors import ServiceError


class AnnotationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    annotator = serializers.CharField()
    value = serializers.JSONField()
    unsure = serializers.BooleanField()
    note = serializers.CharField()
    guideline_version = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class ReviewTaskSerializer(serializers.Serializer):
    """A review task with its reasons and every current annotation of its item."""

    id = serializers.IntegerField(source="task.pk")
    item_id = serializers.IntegerField(source="item.pk")
    text = serializers.CharField(source="item.text")
    status = serializers.ChoiceField(choices=ReviewStatus.choices, source="task.status")
    reasons = serializers.ListField(source="task.reasons", child=serializers.ChoiceField(choices=ReviewReason.choices))
    noise_score = serializers.FloatField(
        source="task.noise_score",
        allow_null=True,
        help_text="A noise flag's task: the scan's probability (0-1) that the final label is right (its flag's score; "
        "the page shows it as a percentage). Null on other tasks.",
    )
    suggested_value = serializers.JSONField(source="task.suggested_value", allow_null=True)
    routing = serializers.JSONField(
        source="task.routing",
        allow_null=True,
        help_text='The routing the task was opened under, {"policy", "budget", "review_all"}: it is explained and '
        "decided by it whatever the project's settings say now (null: a task closed before this was recorded).",
    )
    created_at = serializers.DateTimeField(source="task.created_at")
    resolved_at = serializers.DateTimeField(source="task.resolved_at", allow_null=True)
    annotations = AnnotationOutputSerializer(many=True)


class ReviewTaskListApi(ApiView):
    """Review tasks, most urgent first: by the task's most urgent reason (disagreement, doubt, unsure, then noise,
    model, rating and correction, audit last), then oldest first (`?status=open` for the queue); an owner does not
    see the tasks of items they could still annotate themselves (blind). `reason` takes one value."""

    filters = {"status": choice(ReviewStatus.values), "reason": choice(ReviewReason.values)}

    @extend_schema(
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("status", str, enum=ReviewStatus.values),
            OpenApiParameter(
                "reason",
                str,
                enum=ReviewReason.values,
                description="Tasks with this reason among theirs; one value (given twice: 400 naming `reason`).",
            ),
        ],
        responses={200: paginated(ReviewTaskSerializer), **REFUSED},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, role = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        tasks = review_tasks(project=project, user=self.user, role=role, **self.filter_values(request))
        return self.page(request, tasks, ReviewTaskSerializer, complete=review_task_rows_of)


class ReviewTaskDetailApi(ApiView):
    """Owners and reviewers: one review task, with the votes and suggestions its reviewer sees."""

    @extend_schema(responses={200: ReviewTaskSerializer, **REFUSED})
    def get(self, request: Request, project_id: int, task_id: int) -> Response:
        task, _ = access_review_task(user=self.user, project_id=project_id, task_id=task_id)
        return Response(ReviewTaskSerializer(review_task_rows_of([task])[0]).data)


FINAL_SOURCES = (DecisionSource.REVIEWER, DecisionSource.WEIGHTED)  # what a review decision can end as

# What each action decides from, beside the optional `reason` (accept, fix) or the `comment` (send_back).
ACTION_TAKES = {"accept": "annotation_id", "fix": "value", "send_back": "comment"}
FIELD_ONLY_WITH = (
    "{field} goes only with action {owner} ({what}); {action} takes {takes}, so the {field} would be ignored."
)
FIX_NEEDS_VALUE = (
    "fix takes value: the final value, in the task type's shape ({\"label\": ...} on a single-label project)."
)
REASON_NOT_WITH_SEND_BACK = (
    "reason goes with accept or fix (why this final value); send_back takes comment, so the reason would be ignored."
)
FIELD_OWNER = {"annotation_id": "accept", "value": "fix", "comment": "send_back"}
FIELD_WHAT = {
    "annotation_id": "the annotation made final",
    "value": "the final value",
    "comment": "what to look at again",
}


class ReviewDecideApi(ApiView):
    """Accept an annotation, fix the value, or send the item back to its annotators."""

    class InputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=REVIEW_ACTIONS)
        annotation_id = serializers.IntegerField(
            required=False, min_value=1, max_value=ID_MAX, help_text="accept: the annotation made final.")
        value = serializers.JSONField(required=False, help_text="fix: the final value, in the task type's shape.")
        reason = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=REASON_MAX, help_text="accept, fix: why."
        )
        comment = serializers.CharField(
            required=False, allow_blank=True, default="", help_text="send_back: what to look at again."
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            """A field another action takes (annotation_id with fix, a value with accept, a comment with accept...) is
            refused rather than dropped: the caller meant it. An empty comment is no comment."""
            action = attrs["action"]
            if action == "fix" and attrs.get("value") is None:
                raise serializers.ValidationError({"value": [FIX_NEEDS_VALUE]})
            sent = self.initial_data if isinstance(self.initial_data, dict) else {}
            if action == "send_back" and str(sent.get("reason") or "").strip():
                raise serializers.ValidationError({"reason": [REASON_NOT_WITH_SEND_BACK]})
            for field, owner in FIELD_OWNER.items():
                given = sent.get(field)
                if field in sent and given not in (None, "") and action != owner:
                    message = FIELD_ONLY_WITH.format(
                        field=field, owner=owner, what=FIELD_WHAT[field], action=action, takes=ACTION_TAKES[action]
                    )
                    raise serializers.ValidationError({field: [message]})
            return attrs

    class OutputSerializer(serializers.Serializer):
        task_id = serializers.IntegerField()
        status = serializers.ChoiceField(choices=ReviewStatus.choices)
        decision_id = serializers.IntegerField(allow_null=True)
        value = serializers.JSONField(allow_null=True, help_text="The item's final value now.")
        final_source = serializers.ChoiceField(
            choices=[(c, label) for c, label in DecisionSource.choices if c in FINAL_SOURCES],
            allow_null=True,
            help_text="reviewer: your value is final; weighted: adaptive routing weighed it with every other "
            "judgement of the item and the vote kept another value (yours is in the item's history).",
        )

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **REFUSED, **CONFLICT})
    def post(self, request: Request, project_id: int, task_id: int) -> Response:
        task, _ = access_review_task(user=self.user, project_id=project_id, task_id=task_id)
        data = validated(self.InputSerializer, request.data)
        try:
            decision = review_act(reviewer=self.user, task=task, **data)
        except ServiceError as exc:
            if exc.field == "annotation":  # the review page's form field; this body calls it annotation_id
                exc.field = "annotation_id"
            raise
        out = {
            "task_id": task.pk,
            "status": task.status,
            "decision_id": decision.pk if decision else None,
            "value": decision.value if decision else None,
            "final_source": decision.source if decision else None,
        }
        return Response(self.OutputSerializer(out).data)


class ReviewBulkAcceptApi(ApiView):
    """Accept the agreed value of several audit tasks at once: one ordinary review decision per item. Refused
    (400, nothing written) when any task is not an audit sample of this project whose annotators agreed; a chosen
    task closed meanwhile is left as it is and its item listed in `already_closed` (409 when all were)."""

    class InputSerializer(serializers.Serializer):
        task_ids = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=ID_MAX),
            min_length=1,
            max_length=BULK_MAX,
            error_messages={
                "min_length": "Name at least one review task to accept.",
                "max_length": f"At most {BULK_MAX} review tasks at once; send the rest in another request.",
            },
        )

    class DecisionSerializer(serializers.Serializer):
        task_id = serializers.IntegerField(source="review_task_id")
        item_id = serializers.IntegerField()
        decision_id = serializers.IntegerField(source="pk")
        value = serializers.JSONField()

    class OutputSerializer(serializers.Serializer):
        accepted = serializers.ListField(child=serializers.DictField())
        already_closed = serializers.ListField(
            child=serializers.IntegerField(),
            help_text="Items whose task was closed meanwhile (decided, sent back, withdrawn): left as they are.",
        )

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, role = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        data = validated(self.InputSerializer, request.data)
        plan = review_bulk_plan(project=project, user=self.user, role=role, task_ids=data["task_ids"])
        result = review_bulk_accept(reviewer=self.user, plan=plan)
        accepted = [self.DecisionSerializer(d).data for d in result.decisions]
        return Response({"accepted": accepted, "already_closed": result.already_closed})


class ItemHistoryApi(ApiView):
    """Everything that happened to one item, in time order; refused (403) while the caller could still annotate it."""

    class OutputSerializer(serializers.Serializer):
        at = serializers.DateTimeField()
        kind = serializers.CharField()
        who = serializers.CharField()
        summary = serializers.CharField()
        value = serializers.CharField()
        guideline_version = serializers.IntegerField(allow_null=True)

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: paginated(OutputSerializer), **REFUSED})
    def get(self, request: Request, project_id: int, item_id: int) -> Response:
        item, role = access_item(user=self.user, project_id=project_id, item_id=item_id, roles=REVIEW)
        self.filter_values(request)
        return self.page(request, item_history_for(user=self.user, role=role, item=item), self.OutputSerializer)


class ItemOverruleApi(ApiView):
    """The owner makes their label an approved item's final one outright, with a reason (weighted vote or not)."""

    class InputSerializer(serializers.Serializer):
        value = serializers.JSONField(help_text="The final value, in the task type's shape.")
        reason = serializers.CharField(allow_blank=True, help_text="Why: the item's history keeps it (at most 1000).")
        confirm_test_split = serializers.BooleanField(
            default=False, help_text="Required (true) for a test-split item: the test split judges the model."
        )

    class OutputSerializer(serializers.Serializer):
        decision_id = serializers.IntegerField()
        value = serializers.JSONField(help_text="The item's final value now.")
        reason = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **REFUSED})
    def post(self, request: Request, project_id: int, item_id: int) -> Response:
        item, _ = access_item(user=self.user, project_id=project_id, item_id=item_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        decision = item_overrule(owner=self.user, item=item, **data)
        return Response({"decision_id": decision.pk, "value": decision.value, "reason": decision.reason})
