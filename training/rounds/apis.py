"""REST API for rounds: the rounds so far, the plan of the next round (GET, changes nothing), starting it (POST),
and the project's next-round settings the plan starts from (GET, PATCH).

Owners read the plan, start rounds and edit the settings; reviewers list rounds; annotators get 403 and outsiders
404. A bad option answers 400 naming the field, and nothing changes.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.models import Project, QueueOrder
from annotation.permissions import MANAGE, REVIEW, access_project
from annotation.projects.services import project_round_settings_set
from core.api import ID_MAX, PAGE_PARAMETERS, REFUSED, ApiView, paginated, text, validated
from training.models import Round
from training.rounds.charts import rounds_worse_by_number
from training.rounds.forms import rating_criteria_clean
from training.rounds.options import MAX_EXAMPLES, plan_options_parse
from training.rounds.selectors import round_list, round_plan, round_worst_slice
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
    """Every round of the project, oldest first (the open one last), each with what it made worse."""

    class OutputSerializer(RoundSerializer):
        worse = serializers.SerializerMethodField(help_text="Figures this round made worse than the round before.")

        worst_slice = serializers.SerializerMethodField(
            help_text="The worst flagged slice of the round's best run (training.md, per-slice figures); "
            "null when none of its runs was evaluated per slice."
        )

        def get_worse(self, round_: Round) -> list[str]:
            return self.context["worse"].get(round_.number, [])

        def get_worst_slice(self, round_: Round) -> dict[str, Any] | None:
            return round_worst_slice(round_)

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: paginated(OutputSerializer), **REFUSED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        self.filter_values(request)
        all_rounds = round_list(project=project)
        context = {"worse": rounds_worse_by_number(all_rounds)}
        return self.page(request, all_rounds, self.OutputSerializer, context=context)


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
    test_split = serializers.JSONField(
        help_text="Test-split items the plan leaves alone (the test split is sacred): count, corrections, examples, "
        "rating, model (counts only) and message"
    )


class RoundPlanApi(ApiView):
    """What starting the next round would change for these options; changes nothing."""

    # Each option is checked by plan_options_parse, with the same messages as the plan page's form.
    filters = {parameter.name: text for parameter in PLAN_PARAMETERS}

    @extend_schema(parameters=PLAN_PARAMETERS, responses={200: RoundPlanSerializer, **REFUSED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        options = plan_options_parse(project=project, data=self.filter_values(request))
        return Response(RoundPlanSerializer(round_plan(project=project, options=options).summary()).data)


class RoundAdvanceApi(ApiView):
    """Close the open round with the plan for these options and open the next; `round` makes a retry harmless."""

    class InputSerializer(serializers.Serializer):
        round = serializers.IntegerField(
            required=False, min_value=1, max_value=ID_MAX, help_text="The round whose plan you saw; a retry is a no-op."
        )
        run = serializers.IntegerField(required=False, min_value=1, max_value=ID_MAX)
        queue_order = serializers.ChoiceField(choices=QueueOrder.choices, required=False)
        random_share = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
        prelabels = serializers.BooleanField(required=False)
        disagreement_confidence = serializers.FloatField(required=False, min_value=0.5, max_value=1.0)
        min_rating = serializers.IntegerField(required=False, min_value=1, max_value=5)
        examples = serializers.IntegerField(
            required=False, min_value=0, max_value=MAX_EXAMPLES,
            help_text="Taken so a plan's options can be sent back as they are; it only sizes the plan's preview.",
        )

    class OutputSerializer(serializers.Serializer):
        applied = serializers.BooleanField(help_text="False when the round was already closed: nothing changed.")
        closed = RoundSerializer()
        opened = RoundSerializer()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, 200: OutputSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        data = dict(validated(self.InputSerializer, request.data))
        number = data.pop("round", None)
        options = plan_options_parse(project=project, data=data)
        result = round_advance(project=project, user=self.user, options=options, round_number=number)
        body = self.OutputSerializer({"applied": result.applied, "closed": result.closed, "opened": result.opened})
        return Response(body.data, status=status.HTTP_201_CREATED if result.applied else status.HTTP_200_OK)


class RoundSettingsApi(ApiView):
    """The project's next-round settings (the settings page's "Next round" form): where the plan's options start.
    PATCH changes only the fields sent."""

    class OutputSerializer(serializers.Serializer):
        queue_order = serializers.ChoiceField(choices=QueueOrder.choices)
        random_share = serializers.FloatField(help_text="0.2 puts a random item in every 5th queue slot.")
        disagreement_confidence = serializers.FloatField(
            help_text="A model this sure against a final label sends the item back to review."
        )
        show_prelabels = serializers.BooleanField(help_text="Whether annotators see the model's pre-labels.")
        show_model_confidence = serializers.BooleanField(help_text="Whether raters see the model's confidence.")
        rating_criteria = serializers.ListField(child=serializers.CharField(), help_text="Rated 1-5 each.")

    class InputSerializer(serializers.Serializer):
        queue_order = serializers.ChoiceField(choices=QueueOrder.choices, required=False)
        random_share = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
        disagreement_confidence = serializers.FloatField(required=False, min_value=0.5, max_value=1.0)
        show_prelabels = serializers.BooleanField(required=False)
        show_model_confidence = serializers.BooleanField(required=False)
        rating_criteria = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False)

        def validate_rating_criteria(self, names: list[str]) -> list[str]:
            try:
                return rating_criteria_clean(names)
            except ValueError as exc:
                raise serializers.ValidationError(str(exc)) from None

    @extend_schema(responses={200: OutputSerializer, **REFUSED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        return Response(self.OutputSerializer(project).data)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **REFUSED})
    def patch(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        project = project_round_settings_set(project=project, **{**_round_settings(project), **data})
        return Response(self.OutputSerializer(project).data)


def _round_settings(project: Project) -> dict:
    """The settings as they are, so a PATCH keeps every field it does not send."""
    return {
        "queue_order": project.queue_order,
        "random_share": project.random_share,
        "disagreement_confidence": project.disagreement_confidence,
        "show_prelabels": project.show_prelabels,
    }
