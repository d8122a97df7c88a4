"""REST API for rounds: the plan of the next round (GET, changes nothing), starting it (POST), the rounds so far.

Owners read the plan and start rounds; reviewers list rounds; annotators get 403 and outsiders 404.
A bad option answers 400 naming the field, and nothing changes.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.models import QueueOrder
from annotation.permissions import MANAGE, REVIEW, access_project
from core.api import DENIED, REFUSED, ApiView, validated
from training.models import Round
from training.rounds.charts import rounds_worse
from training.rounds.options import plan_options_parse
from training.rounds.selectors import round_list, round_plan
from training.rounds.services import round_advance

PLAN_PARAMETERS = [
    OpenApiParameter("run", OpenApiTypes.INT, description="A succeeded run; default the latest one."),
    OpenApiParameter("queue_order", OpenApiTypes.STR, enum=list(QueueOrder.values)),
    OpenApiParameter("random_share", OpenApiTypes.FLOAT, description="0 to 1"),
    OpenApiParameter("prelabels", OpenApiTypes.BOOL),
    OpenApiParameter("disagreement_confidence", OpenApiTypes.FLOAT, description="0.5 to 1"),
    OpenApiParameter("min_rating", OpenApiTypes.INT, description="1 to 5, for well-rated responses"),
    OpenApiParameter("examples", OpenApiTypes.INT, description="Examples listed per change, 0 to 100"),
]


class RoundSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    guideline_version = serializers.IntegerField(source="guideline_version.version", allow_null=True)
    snapshot_id = serializers.IntegerField(allow_null=True)
    runs = serializers.SerializerMethodField()
    figures = serializers.JSONField(help_text="main_metric, agreement, kappa, noise_rate, rating, items_labelled")
    changes = serializers.JSONField(help_text="Counts of what closing the round changed.")
    plan = serializers.JSONField(help_text="The options the owner chose when closing it.")
    started_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    closed_by = serializers.CharField(source="closed_by.username", allow_null=True, default=None)

    def get_runs(self, round_: Round) -> list[int]:
        if round_.pk is None:  # the first round, not written yet
            return []
        return sorted(run.pk for run in round_.runs.all())


class RoundListApi(ApiView):
    """Every round of the project, oldest first (the open one last), and where a round made things worse."""

    class OutputSerializer(serializers.Serializer):
        rounds = RoundSerializer(many=True)
        worse = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses={200: OutputSerializer, **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
        all_rounds = round_list(project=project)
        body = {"rounds": all_rounds, "worse": rounds_worse(all_rounds)}
        return Response(self.OutputSerializer(body).data)


class RoundPlanSerializer(serializers.Serializer):
    round = serializers.IntegerField()
    next_round = serializers.IntegerField()
    run = serializers.IntegerField(allow_null=True)
    options = serializers.JSONField()
    notes = serializers.ListField(child=serializers.CharField())
    corrections = serializers.JSONField(help_text="count, decide, review, examples")
    examples = serializers.JSONField(help_text="Well-rated responses: count, decide, review, examples")
    label_errors = serializers.JSONField(help_text="count, by_model, examples")
    queue = serializers.JSONField(help_text="count, order, random, scored, unscored, examples")
    prelabels = serializers.JSONField(help_text="enabled, count")


class RoundPlanApi(ApiView):
    """What starting the next round would change for these options; changes nothing."""

    @extend_schema(parameters=PLAN_PARAMETERS, responses={200: RoundPlanSerializer, **REFUSED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
        options = plan_options_parse(project=project, data=request.query_params)
        return Response(RoundPlanSerializer(round_plan(project=project, options=options).summary()).data)


class RoundAdvanceApi(ApiView):
    """Close the open round with the plan for these options and open the next; `round` makes a retry harmless."""

    class InputSerializer(serializers.Serializer):
        round = serializers.IntegerField(required=False, help_text="The round whose plan you saw; a retry is a no-op.")
        run = serializers.IntegerField(required=False)
        queue_order = serializers.ChoiceField(choices=QueueOrder.choices, required=False)
        random_share = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
        prelabels = serializers.BooleanField(required=False)
        disagreement_confidence = serializers.FloatField(required=False, min_value=0.5, max_value=1.0)
        min_rating = serializers.IntegerField(required=False, min_value=1, max_value=5)

    class OutputSerializer(serializers.Serializer):
        applied = serializers.BooleanField(help_text="False when the round was already closed: nothing changed.")
        closed = RoundSerializer()
        opened = RoundSerializer()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, 200: OutputSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
        data = dict(validated(self.InputSerializer, request.data))
        number = data.pop("round", None)
        options = plan_options_parse(project=project, data=data)
        result = round_advance(project=project, user=request.user, options=options, round_number=number)
        body = self.OutputSerializer({"applied": result.applied, "closed": result.closed, "opened": result.opened})
        return Response(body.data, status=status.HTTP_201_CREATED if result.applied else status.HTTP_200_OK)
