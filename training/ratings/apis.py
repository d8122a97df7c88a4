"""REST API for rating model outputs: the next output to rate, rating it, blind A/B comparisons, exports.

Every route is nested under its project (`/api/projects/{project_id}/runs/{run_id}/ratings/...`,
`/api/projects/{project_id}/comparisons/...`); each class starts with an access check (outsiders 404,
annotators 403, reviewers and owners rate, owners create comparisons and read their results). Lists are paged.
Blind: what a rater reaches of a comparison (the list, one comparison, next, preferences) names no run and no
output: the item, the prompt, two response texts and a side. Only owners see which runs a comparison pits.
"""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import renderers, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.permissions import MANAGE, REVIEW, access_project
from core.api import (
    ID_MAX,
    PAGE_PARAMETERS,
    REFUSED,
    ApiView,
    boolean,
    choice,
    jsonl_export_responses,
    paginated,
    text,
    validated,
)
from core.errors import ServiceError
from core.streaming import JsonLinesRenderer, jsonl_response
from training.models import Comparison, Rating, Verdict
from training.ratings.selectors import (
    KIND_LABELLED,
    KIND_TEST,
    KIND_UNLABELLED,
    RatingTask,
    comparison_get_for_user,
    comparison_next,
    comparison_progress,
    comparison_rows,
    comparison_runs_get,
    comparison_summary,
    preference_pairs,
    rating_list,
    rating_next,
    rating_output_get,
    rating_run_get_for_user,
    ratings_export_rows,
)
from training.ratings.services import CHOICES, comparison_create, preference_submit, rating_submit


class RatingOutputSerializer(serializers.Serializer):
    """One output to rate; `confidence` and `probabilities` are null unless the owner shows them to raters."""

    id = serializers.IntegerField(source="output.pk")
    run_id = serializers.IntegerField(source="output.run_id")
    item_id = serializers.IntegerField(source="output.item_id")
    external_id = serializers.CharField(source="output.item.external_id")
    text = serializers.CharField(source="output.item.text")
    kind = serializers.ChoiceField(choices=[KIND_TEST, KIND_UNLABELLED, KIND_LABELLED])
    value = serializers.JSONField(source="output.value")
    confidence = serializers.FloatField(allow_null=True)
    probabilities = serializers.JSONField(allow_null=True)


class RatingSerializer(serializers.ModelSerializer):
    rater = serializers.CharField(source="rater.username")
    guideline_version = serializers.IntegerField(source="guideline_version.version", allow_null=True)

    class Meta:
        model = Rating
        fields = [
            "id",
            "output",
            "item",
            "run",
            "rater",
            "verdict",
            "scores",
            "correction",
            "note",
            "guideline_version",
            "seconds_spent",
            "created_at",
        ]


def _output_row(task: RatingTask, project_shows_confidence: bool) -> dict | None:
    if task.output is None:
        return None
    shown = project_shows_confidence
    return {
        "output": task.output,
        "kind": task.kind,
        "confidence": task.output.confidence if shown else None,
        "probabilities": task.output.probabilities if shown else None,
    }


class RatingNextApi(ApiView):
    """The next output of this run the caller has not rated (test split first), and how many are left."""

    class OutputSerializer(serializers.Serializer):
        remaining = serializers.IntegerField()
        output = RatingOutputSerializer(allow_null=True)

    @extend_schema(responses={200: OutputSerializer, **REFUSED})
    def get(self, request: Request, project_id: int, run_id: int) -> Response:
        run, _ = rating_run_get_for_user(user=self.user, project_id=project_id, run_id=run_id)
        task = rating_next(run=run, rater=self.user)
        row = _output_row(task, run.project.show_model_confidence)
        return Response(self.OutputSerializer({"remaining": task.remaining, "output": row}).data)


class RatingListApi(ApiView):
    """GET: the run's ratings, oldest first (`current=true`: only the latest per output and rater).
    POST: rate one output: classification `verdict` (+ `correction` {"label"} / {"labels"} when wrong); spans
    `verdict` (+ `correction` {"spans": [{"start", "end", "label"}, ...]} when wrong: code-point offsets into the
    item's text, checked as annotations are); instruction `scores` {criterion: 1-5} for every criterion (+ optional
    `correction` {"response"}). Appended, never updated."""

    filters = {"current": boolean, "rater": text, "verdict": choice(Verdict.values)}

    class InputSerializer(serializers.Serializer):
        output_id = serializers.IntegerField(min_value=1, max_value=ID_MAX)
        verdict = serializers.ChoiceField(choices=Verdict.choices, required=False, allow_blank=True, default="")
        correction = serializers.JSONField(required=False, allow_null=True, default=None)
        scores = serializers.DictField(required=False, default=dict)
        note = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
        seconds_spent = serializers.FloatField(required=False, default=0.0, min_value=0.0)

    @extend_schema(
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("current", OpenApiTypes.BOOL, description="Only the latest rating per output and rater."),
            OpenApiParameter("rater", OpenApiTypes.STR, description="Only this rater's (a username)."),
            OpenApiParameter("verdict", OpenApiTypes.STR, enum=list(Verdict.values)),
        ],
        responses={200: paginated(RatingSerializer), **REFUSED},
    )
    def get(self, request: Request, project_id: int, run_id: int) -> Response:
        run, _ = rating_run_get_for_user(user=self.user, project_id=project_id, run_id=run_id)
        return self.page(request, rating_list(run=run, **self.filter_values(request)), RatingSerializer)

    @extend_schema(request=InputSerializer, responses={201: RatingSerializer, **REFUSED})
    def post(self, request: Request, project_id: int, run_id: int) -> Response:
        run, _ = rating_run_get_for_user(user=self.user, project_id=project_id, run_id=run_id)
        data = validated(self.InputSerializer, request.data)
        output = rating_output_get(run=run, output_id=data.pop("output_id"))
        if data["correction"] is not None and not isinstance(data["correction"], dict):
            raise ServiceError("A correction is a JSON object.", field="correction")
        rating = rating_submit(rater=self.user, output=output, project=run.project, **data)
        return Response(RatingSerializer(rating).data, status=status.HTTP_201_CREATED)


class ComparisonSerializer(serializers.Serializer):
    """A comparison; `run_a` and `run_b` are null for raters who are not owners, so the A/B stays blind."""

    id = serializers.IntegerField()
    project_id = serializers.IntegerField()
    run_a = serializers.SerializerMethodField()
    run_b = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def _reveal(self, comparison: Comparison, run_id: int) -> int | None:
        return run_id if self.context.get("owner") else None

    def get_run_a(self, comparison: Comparison) -> int | None:
        return self._reveal(comparison, comparison.run_a_id)

    def get_run_b(self, comparison: Comparison) -> int | None:
        return self._reveal(comparison, comparison.run_b_id)


class ComparisonListApi(ApiView):
    """GET: the project's blind A/B comparisons, newest first (owners, reviewers). POST (owners): a comparison of
    two succeeded runs of an instruction project (the same pair returns the existing one)."""

    class InputSerializer(serializers.Serializer):
        run_a = serializers.IntegerField(min_value=1, max_value=ID_MAX)
        run_b = serializers.IntegerField(min_value=1, max_value=ID_MAX)

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: paginated(ComparisonSerializer), **REFUSED})
    def get(self, request: Request, project_id: int) -> Response:
        project, role = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        self.filter_values(request)
        rows = comparison_rows(project=project)
        return self.page(request, rows, ComparisonSerializer, context={"owner": role in MANAGE})

    @extend_schema(request=InputSerializer, responses={201: ComparisonSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        run_a, run_b = comparison_runs_get(project=project, run_a=data["run_a"], run_b=data["run_b"])
        comparison = comparison_create(project=project, user=self.user, run_a=run_a, run_b=run_b)
        body = ComparisonSerializer(comparison, context={"owner": True}).data
        return Response(body, status=status.HTTP_201_CREATED)


class ComparisonDetailApi(ApiView):
    """One comparison, and how many of its prompts the caller has judged."""

    class OutputSerializer(ComparisonSerializer):
        total = serializers.SerializerMethodField(help_text="Prompts both runs answered.")
        judged = serializers.SerializerMethodField(help_text="Of those, how many the caller has judged.")

        def get_total(self, comparison: Comparison) -> int:
            return self.context["progress"]["total"]

        def get_judged(self, comparison: Comparison) -> int:
            return self.context["progress"]["judged"]

    @extend_schema(responses={200: OutputSerializer, **REFUSED})
    def get(self, request: Request, project_id: int, comparison_id: int) -> Response:
        comparison, role = comparison_get_for_user(
            user=self.user, project_id=project_id, comparison_id=comparison_id
        )
        progress = comparison_progress(comparison=comparison, rater=self.user)
        context = {"owner": role in MANAGE, "progress": progress}
        return Response(self.OutputSerializer(comparison, context=context).data)


class BlindPairSerializer(serializers.Serializer):
    """A prompt and two responses by side: nothing tells which run wrote which."""

    item_id = serializers.IntegerField()
    prompt = serializers.CharField()
    response_1 = serializers.CharField()
    response_2 = serializers.CharField()


class ComparisonNextApi(ApiView):
    """The next prompt of this comparison the caller has not judged, with "response_1" and "response_2"."""

    class OutputSerializer(serializers.Serializer):
        remaining = serializers.IntegerField()
        pair = BlindPairSerializer(allow_null=True)

    @extend_schema(responses={200: OutputSerializer, **REFUSED})
    def get(self, request: Request, project_id: int, comparison_id: int) -> Response:
        comparison, _ = comparison_get_for_user(
            user=self.user, project_id=project_id, comparison_id=comparison_id
        )
        pair = comparison_next(comparison=comparison, rater=self.user)
        body = {"remaining": pair.remaining if pair else 0, "pair": pair}
        return Response(self.OutputSerializer(body).data)


class ComparisonPreferenceApi(ApiView):
    """The caller's choice for one prompt by side: "1", "2" or "tie". Appended; the latest counts."""

    class InputSerializer(serializers.Serializer):
        item_id = serializers.IntegerField(min_value=1, max_value=ID_MAX)
        choice = serializers.ChoiceField(choices=CHOICES)

    class OutputSerializer(serializers.Serializer):
        item_id = serializers.IntegerField()
        choice = serializers.CharField()
        remaining = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer, **REFUSED})
    def post(self, request: Request, project_id: int, comparison_id: int) -> Response:
        comparison, _ = comparison_get_for_user(
            user=self.user, project_id=project_id, comparison_id=comparison_id
        )
        data = validated(self.InputSerializer, request.data)
        preference_submit(comparison=comparison, rater=self.user, **data)
        pair = comparison_next(comparison=comparison, rater=self.user)
        body = {**data, "remaining": pair.remaining if pair else 0}
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)


class ComparisonResultsApi(ApiView):
    """Owners: wins per run and ties over every rater's current choice."""

    class OutputSerializer(serializers.Serializer):
        run_a = serializers.IntegerField(source="comparison.run_a_id")
        run_b = serializers.IntegerField(source="comparison.run_b_id")
        wins_a = serializers.IntegerField()
        wins_b = serializers.IntegerField()
        ties = serializers.IntegerField()
        raters = serializers.IntegerField()

    @extend_schema(responses={200: OutputSerializer, **REFUSED})
    def get(self, request: Request, project_id: int, comparison_id: int) -> Response:
        comparison, _ = comparison_get_for_user(
            user=self.user, project_id=project_id, comparison_id=comparison_id, roles=MANAGE
        )
        return Response(self.OutputSerializer(comparison_summary(comparison=comparison)).data)



class RatingsExportApi(ApiView):
    """Every current rating (the latest per output and rater) as JSON Lines, streamed."""

    renderer_classes = [renderers.JSONRenderer, JsonLinesRenderer]

    @extend_schema(
        responses=jsonl_export_responses(
            "One JSON object per line: item_id, external_id, text, run_id, output, verdict, scores, correction, "
            "note, rater, guideline_version, seconds_spent, created_at. Span outputs and corrections carry each "
            'span\'s "text" beside its offsets.'
        )
    )
    def get(self, request: Request, project_id: int) -> StreamingHttpResponse:
        project, _ = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        return jsonl_response(ratings_export_rows(project=project), f"project-{project.pk}-ratings.jsonl")


class PreferencePairsExportApi(ApiView):
    """Preference pairs for TRL's DPOTrainer: {"prompt", "chosen", "rejected"} per line, streamed."""

    renderer_classes = [renderers.JSONRenderer, JsonLinesRenderer]

    @extend_schema(
        responses=jsonl_export_responses(
            'Exactly {"prompt", "chosen", "rejected"} per line: blind A/B choices (ties skipped), then corrected '
            "responses chosen over the model's own."
        )
    )
    def get(self, request: Request, project_id: int) -> StreamingHttpResponse:
        project, _ = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        return jsonl_response(preference_pairs(project=project), f"project-{project.pk}-dpo-pairs.jsonl")
