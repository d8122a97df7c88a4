"""REST API of pre-labelling: suggestion runs (start, follow, figures), their suggestions with provenance, their uses.

Owners start runs and switch their uses; owners and reviewers read them; annotators get 403 (suggestions reach
them only as pre-labels, through the annotate API, when the owner shows them).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.permissions import MANAGE, REVIEW, access_project
from core.api import DENIED, PAGE_PARAMETERS, REFUSED, SEED_MAX, ApiView, QueuePlaceSerializer, paginated, validated
from training.models import Suggestion, SuggestionMethod, SuggestionRun
from training.suggestions import selectors
from training.suggestions import services as suggestions

NO_SUCH_RUN = "No such suggestion run."


class SuggestionRunSerializer(serializers.ModelSerializer):
    provenance = serializers.SerializerMethodField()
    queue = serializers.SerializerMethodField()

    class Meta:
        model = SuggestionRun
        fields = [
            "id", "method", "model_name", "status", "progress", "message", "eta_seconds", "params", "summary",
            "used_for_ordering", "shown_as_prelabels", "created_at", "started_at", "finished_at", "provenance",
            "queue",
        ]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_provenance(self, run: SuggestionRun) -> dict[str, Any]:
        return selectors.provenance(run)

    @extend_schema_field(QueuePlaceSerializer(allow_null=True))
    def get_queue(self, run: SuggestionRun) -> dict[str, Any] | None:
        place = suggestions.suggestion_run_queue_place(run)
        return place.as_json() if place else None


def _run(request: Request, project_id: int, run_id: int, roles: frozenset[str] = REVIEW) -> SuggestionRun:
    project, _ = access_project(user=request.user, project_id=project_id, roles=roles)
    run = selectors.suggestion_run_get(project=project, run_id=run_id)
    if run is None:
        raise Http404(NO_SUCH_RUN)
    return run


class SuggestionRunListApi(ApiView):
    """The project's suggestion runs, newest first; owners start one (queued: 202, poll it)."""

    class InputSerializer(serializers.Serializer):
        method = serializers.ChoiceField(choices=SuggestionMethod.values)
        max_items = serializers.IntegerField(
            required=False, min_value=1, help_text="Unlabelled items to score (each method has its own limit)."
        )
        seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=SEED_MAX)

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: paginated(SuggestionRunSerializer), **REFUSED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        return self.page(request, selectors.suggestion_run_list(project=project), SuggestionRunSerializer)

    @extend_schema(request=InputSerializer, responses={202: SuggestionRunSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        run = suggestions.suggestion_run_start(
            project=project, user=self.user, method=data["method"], max_items=data.get("max_items"), seed=data["seed"]
        )
        return Response(SuggestionRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class SuggestionRunDetailApi(ApiView):
    """One run: status, progress and ETA, its figures beside the baselines, its uses; PATCH switches the uses."""

    class InputSerializer(serializers.Serializer):
        use_for_ordering = serializers.BooleanField()
        show_as_prelabels = serializers.BooleanField(
            help_text="Pre-labels bias blind annotation: off by default, and off again when set false."
        )

    @extend_schema(responses={200: SuggestionRunSerializer, **DENIED})
    def get(self, request: Request, project_id: int, run_id: int) -> Response:
        return Response(SuggestionRunSerializer(_run(request, project_id, run_id)).data)

    @extend_schema(request=InputSerializer, responses={200: SuggestionRunSerializer, **REFUSED})
    def patch(self, request: Request, project_id: int, run_id: int) -> Response:
        run = _run(request, project_id, run_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        run = suggestions.suggestion_run_apply(
            run=run, use_for_ordering=data["use_for_ordering"], show_as_prelabels=data["show_as_prelabels"]
        )
        return Response(SuggestionRunSerializer(run).data)


class SuggestionListApi(ApiView):
    """A run's suggestions, least sure first, each with its provenance."""

    class OutputSerializer(serializers.ModelSerializer):
        provenance = serializers.SerializerMethodField()

        class Meta:
            model = Suggestion
            fields = ["item_id", "value", "score", "probabilities", "created_at", "provenance"]

        @extend_schema_field(OpenApiTypes.OBJECT)
        def get_provenance(self, suggestion: Suggestion) -> dict[str, Any]:
            return self.context["provenance"]

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: paginated(OutputSerializer), **REFUSED})
    def get(self, request: Request, project_id: int, run_id: int) -> Response:
        run = _run(request, project_id, run_id)
        return self.page(
            request,
            selectors.suggestion_list(run=run),
            self.OutputSerializer,
            context={"provenance": selectors.provenance(run)},
        )
