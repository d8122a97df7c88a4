"""REST API for explanations: `/api/projects/{id}/runs/{run}/outputs/{output}/explanation/`, next to the run's
outputs. GET reads the output's explanation; POST asks for it (queued on the "quality" queue, cached per run and
text, asked again after a failure). Owners and reviewers; annotators 403, outsiders 404.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.permissions import REVIEW
from core.api import REFUSED, ApiView
from training.explanations import selectors, services
from training.models import Explanation, ExplanationStatus
from training.runs.selectors import run_get_for_user

NOT_EXPLAINED = "This output has no explanation yet: POST to this address to ask for one."


class ExplanationSerializer(serializers.ModelSerializer):
    result = serializers.SerializerMethodField()

    class Meta:
        model = Explanation
        fields = ["id", "run", "item", "method", "status", "error", "result", "created_at", "finished_at"]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_result(self, explanation: Explanation) -> dict | None:
        """integrated_gradients: label, probability, probabilities, segments [{text, score}], delta, steps,
        truncated, explained_chars, tokens_used, tokens_total. span_integrated_gradients: spans [{start, end, label,
        text, tags, probability, score, baseline_score, delta, tolerance, converged, segments}], steps, converged,
        truncated. token_logprobs: tokens [{text, logprob, p}], mean_logprob, perplexity, truncated. Null until it
        has succeeded."""
        return explanation.result if explanation.status == ExplanationStatus.SUCCEEDED else None


def _output(request: Request, project_id: int, run_id: int, output_id: int):
    run, _ = run_get_for_user(user=request.user, project_id=project_id, run_id=run_id, roles=REVIEW)
    return selectors.output_get(run=run, output_id=output_id)


class ExplanationApi(ApiView):
    """GET: the output's explanation (404 until asked for). POST: ask for it; 202 while it is queued or running,
    200 once it is there (cached: the same text of the same run is explained once)."""

    @extend_schema(responses={200: ExplanationSerializer, **REFUSED})
    def get(self, request: Request, project_id: int, run_id: int, output_id: int) -> Response:
        explanation = selectors.explanation_for_output(output=_output(request, project_id, run_id, output_id))
        if explanation is None:
            raise Http404(NOT_EXPLAINED)
        return Response(ExplanationSerializer(explanation).data)

    @extend_schema(request=None, responses={200: ExplanationSerializer, 202: ExplanationSerializer, **REFUSED})
    def post(self, request: Request, project_id: int, run_id: int, output_id: int) -> Response:
        output = _output(request, project_id, run_id, output_id)
        explanation = services.explanation_request(output=output, user=self.user)
        done = explanation.status == ExplanationStatus.SUCCEEDED
        return Response(
            ExplanationSerializer(explanation).data, status=status.HTTP_200_OK if done else status.HTTP_202_ACCEPTED
        )
