"""REST API for training: start runs on snapshots, follow them, cancel, resume, download, predict.

One class per operation, each starting with an access check: runs are reached by id alone under /api/runs/,
and a run's project decides who may see it (outsiders 404, annotators 403, reviewers read, owners everything).
Invalid training settings answer 400 with `errors` naming every invalid field; nothing is queued then.

The predict endpoint runs the model in the web process: each process loads a run's model once and keeps the
few most recently used (training/serving.py), so only the first request of a run pays for loading it.
"""

from __future__ import annotations

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.models import Snapshot
from annotation.permissions import MANAGE, REVIEW, access_project
from core.api import DENIED, REFUSED, ApiView, ErrorSerializer, validated
from core.errors import ServiceError
from training.models import ModelOutput, PredictionBatch, PredictionScope, RunEvent, RunStatus, TrainingRun
from training.runs import selectors, services
from training.runs.responses import artifact_response
from training.spec import METHODS, TrainingSpec

MAX_PREDICT_TEXTS = 64


MAX_PREDICT_CHARS = 20_000


PREDICT_ONE_OF = 'Send either "texts" or "prompts": a list of 1 to {n} strings.'


OUTPUTS_PAGE = 100


class TrainingApiView(ApiView):
    """The annotation API's error shape, plus every invalid field of a run's settings under `errors`."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, services.RunInputError):
            return Response(
                {"detail": exc.message, "field": exc.field, "errors": exc.errors}, status=status.HTTP_400_BAD_REQUEST
            )
        return super().handle_exception(exc)


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project_id = serializers.IntegerField()
    snapshot_id = serializers.IntegerField()
    snapshot_hash = serializers.CharField()
    name = serializers.CharField()
    task = serializers.CharField()
    base_model = serializers.CharField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    cancel_requested = serializers.BooleanField()
    resumed_from = serializers.IntegerField(source="resumed_from_id", allow_null=True)
    progress = serializers.JSONField()
    error = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class RunDetailSerializer(RunSerializer):
    spec = serializers.JSONField()
    metrics = serializers.JSONField(help_text="outcome, rows per split, and test metrics beside the baselines")
    has_artifact = serializers.SerializerMethodField()
    resume_step = serializers.SerializerMethodField(help_text="The checkpoint step a resume would continue from.")

    def get_has_artifact(self, run: TrainingRun) -> bool:
        return selectors.run_artifact_path(run) is not None

    def get_resume_step(self, run: TrainingRun) -> int | None:
        if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
            return None
        point = selectors.run_resume_point(run)
        return point.step if point else None


class PredictionBatchSerializer(serializers.ModelSerializer):
    class Meta:
        model = PredictionBatch
        fields = ["id", "run", "scope", "status", "total", "done", "written", "error", "created_at", "finished_at"]


def _run(request: Request, run_id: int, roles: frozenset[str]) -> TrainingRun:
    run, _ = selectors.run_get_for_user(user=request.user, run_id=run_id, roles=roles)
    return run


class RunListApi(TrainingApiView):
    """The project's runs, newest first."""

    @extend_schema(responses={200: RunSerializer(many=True), **DENIED})
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=REVIEW)
        return Response(RunSerializer(selectors.run_list(project=project), many=True).data)


class RunDefaultsApi(TrainingApiView):
    """The settings a new run of this project starts from (?method=lora|ia3|full) and the base models offered."""

    class OutputSerializer(serializers.Serializer):
        task = serializers.CharField()
        spec = serializers.JSONField()
        base_models = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        parameters=[OpenApiParameter("method", OpenApiTypes.STR, enum=list(METHODS))],
        responses={200: OutputSerializer, **REFUSED},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
        task = selectors.project_task(project)
        if task is None:
            raise ServiceError(services.MULTI_LABEL_UNSUPPORTED, field="task")
        method = request.query_params.get("method", "lora")
        if method not in METHODS:
            raise ServiceError(f"method must be one of: {', '.join(METHODS)}", field="method")
        spec = TrainingSpec.defaults(task, method=method).to_dict()
        return Response(
            self.OutputSerializer({"task": task, "spec": spec, "base_models": selectors.base_model_names(task)}).data
        )


class RunStartApi(TrainingApiView):
    """Start a run on a snapshot; `spec` fields left out take the task's defaults (see runs/defaults/)."""

    class InputSerializer(serializers.Serializer):
        snapshot_id = serializers.IntegerField()
        name = serializers.CharField(required=False, allow_blank=True, default="")
        spec = serializers.DictField(required=False, default=dict, help_text="TrainingSpec fields (training/spec.py)")

    @extend_schema(request=InputSerializer, responses={201: RunDetailSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=request.user, project_id=project_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        snapshot = Snapshot.objects.filter(project=project, pk=data["snapshot_id"]).first()
        if snapshot is None:
            raise Http404("No such snapshot.")
        snapshot.project = project
        run = services.run_start(snapshot=snapshot, user=request.user, spec_data=data["spec"], name=data["name"])
        return Response(RunDetailSerializer(run).data, status=status.HTTP_201_CREATED)


class RunDetailApi(TrainingApiView):
    @extend_schema(responses={200: RunDetailSerializer, **DENIED})
    def get(self, request: Request, run_id: int) -> Response:
        return Response(RunDetailSerializer(_run(request, run_id, REVIEW)).data)


class RunEventsApi(TrainingApiView):
    """Progress, validation and log events in order; `?after=<event id>` returns only newer ones."""

    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = RunEvent
            fields = ["id", "kind", "step", "data", "created_at"]

    @extend_schema(
        parameters=[OpenApiParameter("after", OpenApiTypes.INT)],
        responses={200: OutputSerializer(many=True), **REFUSED},
    )
    def get(self, request: Request, run_id: int) -> Response:
        run = _run(request, run_id, REVIEW)
        try:
            after = int(request.query_params.get("after", 0))
        except ValueError:
            raise ServiceError("after must be an event id (a whole number)", field="after") from None
        return Response(self.OutputSerializer(run.events.filter(pk__gt=after), many=True).data)


class RunCancelApi(TrainingApiView):
    """A queued run is cancelled at once; a running one stops within one training step and keeps its model."""

    @extend_schema(request=None, responses={200: RunDetailSerializer, **REFUSED})
    def post(self, request: Request, run_id: int) -> Response:
        run = services.run_cancel(run=_run(request, run_id, MANAGE), user=request.user)
        return Response(RunDetailSerializer(run).data)


class RunResumeApi(TrainingApiView):
    """A new run on the same snapshot and settings, continuing from this failed or cancelled run's checkpoint."""

    @extend_schema(request=None, responses={201: RunDetailSerializer, **REFUSED})
    def post(self, request: Request, run_id: int) -> Response:
        new = services.run_resume(run=_run(request, run_id, MANAGE), user=request.user)
        return Response(RunDetailSerializer(new).data, status=status.HTTP_201_CREATED)


class RunArtifactApi(TrainingApiView):
    """The trained model as a zip: adapter or model safetensors, configs, tokenizer, run.json, model card."""

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.BINARY, description="a zip file"), **DENIED})
    def get(self, request: Request, run_id: int) -> StreamingHttpResponse:
        return artifact_response(_run(request, run_id, MANAGE))


class RunPredictApi(TrainingApiView):
    """Labels with their probabilities (classification) or generated responses (instruction) for a few texts."""

    class InputSerializer(serializers.Serializer):
        texts = serializers.ListField(
            child=serializers.CharField(max_length=MAX_PREDICT_CHARS, trim_whitespace=False),
            required=False, min_length=1, max_length=MAX_PREDICT_TEXTS,
        )
        prompts = serializers.ListField(
            child=serializers.CharField(max_length=MAX_PREDICT_CHARS, trim_whitespace=False),
            required=False, min_length=1, max_length=MAX_PREDICT_TEXTS,
        )

        def validate(self, attrs: dict) -> dict:
            if ("texts" in attrs) == ("prompts" in attrs):
                raise ValidationError(PREDICT_ONE_OF.format(n=MAX_PREDICT_TEXTS))
            return attrs

    class OutputSerializer(serializers.Serializer):
        run = serializers.IntegerField()
        task = serializers.CharField()
        predictions = serializers.ListField(
            child=serializers.DictField(),
            help_text='{"label", "probabilities", "confidence", "entropy"} or {"response"}, in input order',
        )

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **REFUSED})
    def post(self, request: Request, run_id: int) -> Response:
        run = _run(request, run_id, MANAGE)
        data = validated(self.InputSerializer, request.data)
        if selectors.run_artifact_path(run) is None:
            raise ServiceError(services.NO_ARTIFACT)
        from training.runs import serving

        predictions = serving.predict(run, data.get("texts") or data["prompts"])
        return Response(self.OutputSerializer({"run": run.pk, "task": run.task, "predictions": predictions}).data)


class PredictionBatchStartApi(TrainingApiView):
    """Queue predictions for the test split and/or the items without a final label; existing outputs are kept."""

    class InputSerializer(serializers.Serializer):
        scope = serializers.ChoiceField(choices=PredictionScope.choices, default=PredictionScope.TEST_AND_UNLABELLED)

    @extend_schema(request=InputSerializer, responses={201: PredictionBatchSerializer, **REFUSED})
    def post(self, request: Request, run_id: int) -> Response:
        run = _run(request, run_id, MANAGE)
        data = validated(self.InputSerializer, request.data)
        batch = services.prediction_batch_start(run=run, user=request.user, scope=data["scope"])
        return Response(PredictionBatchSerializer(batch).data, status=status.HTTP_201_CREATED)


class PredictionBatchDetailApi(TrainingApiView):
    @extend_schema(responses={200: PredictionBatchSerializer, **DENIED})
    def get(self, request: Request, run_id: int, batch_id: int) -> Response:
        run = _run(request, run_id, REVIEW)
        batch = run.prediction_batches.filter(pk=batch_id).first()
        if batch is None:
            raise Http404("No such prediction batch.")
        return Response(PredictionBatchSerializer(batch).data)


class RunOutputsApi(TrainingApiView):
    """The run's outputs by item id, a page at a time (?offset=, ?limit= up to 100)."""

    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = ModelOutput
            fields = ["item", "value", "probabilities", "confidence", "uncertainty", "created_at"]

    @extend_schema(
        parameters=[OpenApiParameter("offset", OpenApiTypes.INT), OpenApiParameter("limit", OpenApiTypes.INT)],
        responses={200: OutputSerializer(many=True), 400: ErrorSerializer, **DENIED},
    )
    def get(self, request: Request, run_id: int) -> Response:
        run = _run(request, run_id, REVIEW)
        try:
            offset = max(int(request.query_params.get("offset", 0)), 0)
            limit = min(max(int(request.query_params.get("limit", OUTPUTS_PAGE)), 1), OUTPUTS_PAGE)
        except ValueError:
            raise ServiceError("offset and limit must be whole numbers", field="offset") from None
        outputs = ModelOutput.objects.filter(run=run).order_by("item_id")[offset : offset + limit]
        return Response(self.OutputSerializer(outputs, many=True).data)
