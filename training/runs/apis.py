"""REST API for training runs: start runs on snapshots, follow them, cancel, resume, distil, download, predict.

Every route is nested under the project that owns the run (`/api/projects/{project_id}/runs/...`), and the
project decides who may reach it: outsiders 404, annotators 403 (blind to model outputs), reviewers read,
owners everything. Lists are paged (`limit`, `offset`) and filtered through each class's `filters`. Invalid
training settings answer 400 with `errors` naming every invalid field; nothing is queued then.

The predict endpoint runs the model in the web process: each process loads a run's model once and keeps the
few most recently used (training/runs/serving.py), so only the first request of a run pays for loading it.
"""

from __future__ import annotations

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.datasets.selectors import snapshot_get
from annotation.models import Split
from annotation.permissions import MANAGE, REVIEW, access_project
from core.api import (
    ID_MAX,
    PAGE_PARAMETERS,
    REFUSED,
    ApiView,
    QueuePlaceSerializer,
    boolean,
    choice,
    number,
    paginated,
    text,
    validated,
    whole_number,
)
from core.errors import ServiceError
from training.models import ModelOutput, PredictionBatch, PredictionScope, RunEvent, RunStatus, TrainingRun
from training.runs import selectors, services
from training.runs.responses import artifact_response, model_card_response
from training.spec import METHODS, TrainingSpec

MAX_PREDICT_TEXTS = 64


MAX_PREDICT_CHARS = 20_000


PREDICT_ONE_OF = 'Send either "texts" or "prompts": a list of 1 to {n} strings.'


SNAPSHOT_NOT_FOUND = "No such snapshot in this project."


class BaselineComparisonSerializer(serializers.Serializer):
    """The model against its best baseline on the test split (absent for runs evaluated before comparisons)."""

    metric = serializers.CharField(help_text="macro_f1 (classification) or rouge_l (generation)")
    best_baseline = serializers.CharField(help_text="the baseline with the best test figure on `metric`")
    difference = serializers.FloatField(help_text="model minus best baseline")
    difference_interval = serializers.ListField(
        child=serializers.FloatField(), help_text="95% paired-bootstrap interval of the difference: [low, high]"
    )
    verdict = serializers.CharField(help_text='"better", "not_better" or "too_small_to_tell"')
    message = serializers.CharField(help_text="the sentence the run page shows")


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project_id = serializers.IntegerField()
    snapshot_id = serializers.IntegerField()
    snapshot_hash = serializers.CharField()
    augmentation_id = serializers.IntegerField(
        allow_null=True, help_text="The augmentation whose rows joined the train split, or null."
    )
    name = serializers.CharField()
    task = serializers.CharField()
    base_model = serializers.CharField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    cancel_requested = serializers.BooleanField()
    resumed_from = serializers.IntegerField(source="resumed_from_id", allow_null=True)
    teacher = serializers.IntegerField(
        source="teacher_id", allow_null=True, help_text="knowledge distillation: the run this one is a student of"
    )
    progress = serializers.JSONField()
    error = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    comparison = serializers.SerializerMethodField()
    queue = serializers.SerializerMethodField()
    queue_position = serializers.SerializerMethodField(
        help_text="while queued: how many jobs are ahead of it in the training queue; else null"
    )

    @extend_schema_field(BaselineComparisonSerializer(allow_null=True))
    def get_comparison(self, run: TrainingRun) -> dict | None:
        return ((run.metrics or {}).get("test") or {}).get("comparison")

    @extend_schema_field(QueuePlaceSerializer(allow_null=True))
    def get_queue(self, run: TrainingRun) -> dict | None:
        place = selectors.run_queue_place(run)
        return place.as_json() if place else None

    @extend_schema_field(OpenApiTypes.INT)
    def get_queue_position(self, run: TrainingRun) -> int | None:
        return (self.get_queue(run) or {}).get("position")


class RunDetailSerializer(RunSerializer):
    spec = serializers.JSONField()
    metrics = serializers.JSONField(
        help_text=(
            "outcome, rows per split, and `test`: the test figures with `intervals` (95% bootstrap, per headline "
            "figure), `baselines` (each with its figures, intervals, `method` and the settings `chosen` on "
            "validation) and `comparison` (as the top-level field)"
        )
    )
    has_artifact = serializers.SerializerMethodField()
    resume_step = serializers.SerializerMethodField(help_text="The checkpoint step a resume would continue from.")
    students = serializers.SerializerMethodField(help_text="ids of the runs distilled from this one, newest first")
    distillation = serializers.SerializerMethodField(
        help_text=(
            "a student run's comparison with its teacher (null for other runs; figures absent until evaluated): "
            "`teacher_run`, `temperature`, `alpha`, `rows` (train, unlabelled), `n` test items, `student` and "
            "`teacher` each with `accuracy`, `macro_f1`, `intervals` (95% bootstrap) and `speed` (`items_per_s`: "
            "median of the timed `passes` over the test texts, taking turns), `difference` (student minus teacher: "
            "`value`, paired-bootstrap `interval`), `agreement` (share of test items both predict alike), `sizes` "
            "(`parameters`, `weights_bytes` loaded to predict, `layers`, per model)"
        )
    )

    def get_has_artifact(self, run: TrainingRun) -> bool:
        return selectors.run_artifact_path(run) is not None

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_students(self, run: TrainingRun) -> list[int]:
        return [student.pk for student in selectors.run_students(run)]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_distillation(self, run: TrainingRun) -> dict | None:
        if run.teacher_id is None:
            return None
        return {"teacher_run": run.teacher_id, **((run.metrics or {}).get("distillation") or {})}

    def get_resume_step(self, run: TrainingRun) -> int | None:
        if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
            return None
        point = selectors.run_resume_point(run)
        return point.step if point else None


class PredictionBatchSerializer(serializers.ModelSerializer):
    queue = serializers.SerializerMethodField()
    queue_position = serializers.SerializerMethodField(
        help_text="while queued: how many jobs are ahead of it in the training queue; else null"
    )
    progress = serializers.SerializerMethodField()

    class Meta:
        model = PredictionBatch
        fields = [
            "id", "run", "scope", "status", "total", "done", "written", "error", "created_at", "finished_at",
            "queue", "queue_position", "progress",
        ]

    @extend_schema_field(QueuePlaceSerializer(allow_null=True))
    def get_queue(self, batch: PredictionBatch) -> dict | None:
        place = selectors.prediction_batch_queue_place(batch)
        return place.as_json() if place else None

    @extend_schema_field(OpenApiTypes.INT)
    def get_queue_position(self, batch: PredictionBatch) -> int | None:
        return (self.get_queue(batch) or {}).get("position")

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_progress(self, batch: PredictionBatch) -> dict:
        """done of total, percent, rate (items/s) and an ETA from this batch's own rate."""
        return selectors.prediction_batch_progress(batch)


def _run(request: Request, project_id: int, run_id: int, roles: frozenset[str]) -> TrainingRun:
    run, _ = selectors.run_get_for_user(user=request.user, project_id=project_id, run_id=run_id, roles=roles)
    return run


class RunListApi(ApiView):
    """GET: the project's runs, newest first (owners, reviewers). POST: start a run on a snapshot (owners);
    `spec` fields left out take the task's defaults (see runs/defaults/)."""

    filters = {"status": choice(RunStatus.values), "snapshot": whole_number}

    class InputSerializer(serializers.Serializer):
        snapshot_id = serializers.IntegerField(min_value=1, max_value=ID_MAX)
        name = serializers.CharField(required=False, allow_blank=True, default="")
        spec = serializers.DictField(required=False, default=dict, help_text="TrainingSpec fields (training/spec.py)")
        augmentation_id = serializers.IntegerField(
            required=False, allow_null=True, default=None, min_value=1, max_value=ID_MAX,
            help_text="A succeeded augmentation of this snapshot: its rows join the train split.",
        )

    @extend_schema(
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("status", OpenApiTypes.STR, enum=list(RunStatus.values)),
            OpenApiParameter("snapshot", OpenApiTypes.INT, description="Only runs trained on this snapshot."),
        ],
        responses={200: paginated(RunSerializer), **REFUSED},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=REVIEW)
        values = self.filter_values(request)
        runs = selectors.run_list(project=project, status=values.get("status"), snapshot_id=values.get("snapshot"))
        return self.page(request, runs, RunSerializer)

    @extend_schema(request=InputSerializer, responses={201: RunDetailSerializer, **REFUSED})
    def post(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        data = validated(self.InputSerializer, request.data)
        snapshot = snapshot_get(project=project, snapshot_id=data["snapshot_id"])
        if snapshot is None:
            raise ServiceError(SNAPSHOT_NOT_FOUND, field="snapshot_id")
        run = services.run_start(
            snapshot=snapshot,
            user=self.user,
            spec_data=data["spec"],
            name=data["name"],
            augmentation_id=data["augmentation_id"],
        )
        return Response(RunDetailSerializer(run).data, status=status.HTTP_201_CREATED)


class RunDefaultsApi(ApiView):
    """The settings a new run of this project starts from (?method=lora|ia3|full) and the base models offered."""

    filters = {"method": choice(METHODS)}

    class OutputSerializer(serializers.Serializer):
        task = serializers.CharField()
        spec = serializers.JSONField()
        base_models = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        parameters=[OpenApiParameter("method", OpenApiTypes.STR, enum=list(METHODS))],
        responses={200: OutputSerializer, **REFUSED},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project, _ = access_project(user=self.user, project_id=project_id, roles=MANAGE)
        method = self.filter_values(request).get("method", "lora")
        task = selectors.project_task(project)
        if task is None:
            raise ServiceError(services.no_recipe_message(project), field="task")
        spec = TrainingSpec.defaults(task, method=method).to_dict()
        return Response(
            self.OutputSerializer({"task": task, "spec": spec, "base_models": selectors.base_model_names(task)}).data
        )


class RunDetailApi(ApiView):
    """One run: its settings, status, progress, test metrics, and whether it has a model or a checkpoint."""

    @extend_schema(responses={200: RunDetailSerializer, **REFUSED})
    def get(self, request: Request, project_id: int, run_id: int) -> Response:
        return Response(RunDetailSerializer(_run(request, project_id, run_id, REVIEW)).data)


class RunEventListApi(ApiView):
    """Progress, validation and log events in order; `?after=<event id>` returns only newer ones."""

    filters = {"after": whole_number, "kind": choice(RunEvent.Kind.values)}

    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = RunEvent
            fields = ["id", "kind", "step", "data", "created_at"]

    @extend_schema(
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("after", OpenApiTypes.INT, description="Only events after this event id."),
            OpenApiParameter("kind", OpenApiTypes.STR, enum=list(RunEvent.Kind.values)),
        ],
        responses={200: paginated(OutputSerializer), **REFUSED},
    )
    def get(self, request: Request, project_id: int, run_id: int) -> Response:
        run = _run(request, project_id, run_id, REVIEW)
        values = self.filter_values(request)
        events = selectors.run_events(run=run, after=values.get("after"), kind=values.get("kind"))
        return self.page(request, events, self.OutputSerializer)


class RunCancelApi(ApiView):
    """A queued run is cancelled at once; a running one stops within one training step and keeps its model."""

    @extend_schema(request=None, responses={200: RunDetailSerializer, **REFUSED})
    def post(self, request: Request, project_id: int, run_id: int) -> Response:
        run = services.run_cancel(run=_run(request, project_id, run_id, MANAGE), user=self.user)
        return Response(RunDetailSerializer(run).data)


class RunResumeApi(ApiView):
    """A new run on the same snapshot and settings, continuing from this failed or cancelled run's checkpoint."""

    @extend_schema(request=None, responses={201: RunDetailSerializer, **REFUSED})
    def post(self, request: Request, project_id: int, run_id: int) -> Response:
        new = services.run_resume(run=_run(request, project_id, run_id, MANAGE), user=self.user)
        return Response(RunDetailSerializer(new).data, status=status.HTTP_201_CREATED)


class RunDistilApi(ApiView):
    """Start a student of this finished classification run (knowledge distillation) on its snapshot: `spec` fields
    left out take the student defaults (the same encoder with half its layers, trained whole, temperature 2, alpha
    0.5, unlabelled items included); the student must be smaller than its teacher. 201 with the queued run."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(required=False, allow_blank=True, default="")
        spec = serializers.DictField(
            required=False,
            default=dict,
            help_text="TrainingSpec fields (training/spec.py), e.g. student_layers, distill_temperature, "
            "distill_alpha, distill_unlabelled",
        )

    @extend_schema(request=InputSerializer, responses={201: RunDetailSerializer, **REFUSED})
    def post(self, request: Request, project_id: int, run_id: int) -> Response:
        teacher = _run(request, project_id, run_id, MANAGE)
        data = validated(self.InputSerializer, request.data)
        student = services.run_distil(teacher=teacher, user=self.user, spec_data=data["spec"], name=data["name"])
        return Response(RunDetailSerializer(student).data, status=status.HTTP_201_CREATED)


class RunSpanPrelabelsApi(ApiView):
    """A span run's spans on items nobody has annotated yet become their pre-annotations (from the outputs its
    prediction batch wrote; the test split is never touched). 400 for a run that is not a span run or has none."""

    class OutputSerializer(serializers.Serializer):
        written = serializers.IntegerField()

    @extend_schema(request=None, responses={200: OutputSerializer, **REFUSED})
    def post(self, request: Request, project_id: int, run_id: int) -> Response:
        written = services.run_span_prelabels_apply(run=_run(request, project_id, run_id, MANAGE), user=self.user)
        return Response(self.OutputSerializer({"written": written}).data)


class RunArtifactApi(ApiView):
    """The trained model as a zip: adapter or model safetensors, configs, tokenizer, run.json, model card."""

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.BINARY, description="a zip file"), **REFUSED})
    def get(self, request: Request, project_id: int, run_id: int) -> StreamingHttpResponse:
        return artifact_response(_run(request, project_id, run_id, MANAGE))


class RunModelCardApi(ApiView):
    """The model card (the artifact's README.md, Markdown): data snapshot and hash, splits, metrics with
    intervals, baselines, intended use and limits, and a plain transformers + peft loading snippet."""

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.STR, description="Markdown text"), **REFUSED})
    def get(self, request: Request, project_id: int, run_id: int) -> HttpResponse:
        return model_card_response(_run(request, project_id, run_id, REVIEW))


class RunPredictApi(ApiView):
    """Labels with their probabilities (classification), generated responses (instruction) or spans (span runs)
    for a few texts."""

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
            help_text=(
                '{"label", "probabilities", "confidence", "entropy"}, {"response"} or (span runs) {"spans", '
                '"confidence"}, in input order'
            ),
        )

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **REFUSED})
    def post(self, request: Request, project_id: int, run_id: int) -> Response:
        run = _run(request, project_id, run_id, MANAGE)
        data = validated(self.InputSerializer, request.data)
        if selectors.run_artifact_path(run) is None:
            raise ServiceError(services.NO_ARTIFACT)
        from training.runs import serving  # loads torch: only the processes that predict pay for it

        predictions = serving.predict(run, data.get("texts") or data["prompts"])
        return Response(self.OutputSerializer({"run": run.pk, "task": run.task, "predictions": predictions}).data)


class PredictionBatchListApi(ApiView):
    """GET: the run's prediction batches, newest first (owners, reviewers). POST: queue predictions for the test
    split and/or the items without a final label (owners); existing outputs are kept."""

    class InputSerializer(serializers.Serializer):
        scope = serializers.ChoiceField(choices=PredictionScope.choices, default=PredictionScope.TEST_AND_UNLABELLED)

    @extend_schema(parameters=PAGE_PARAMETERS, responses={200: paginated(PredictionBatchSerializer), **REFUSED})
    def get(self, request: Request, project_id: int, run_id: int) -> Response:
        run = _run(request, project_id, run_id, REVIEW)
        self.filter_values(request)
        return self.page(request, selectors.prediction_batch_list(run=run), PredictionBatchSerializer)

    @extend_schema(request=InputSerializer, responses={201: PredictionBatchSerializer, **REFUSED})
    def post(self, request: Request, project_id: int, run_id: int) -> Response:
        run = _run(request, project_id, run_id, MANAGE)
        data = validated(self.InputSerializer, request.data)
        batch = services.prediction_batch_start(run=run, user=self.user, scope=data["scope"])
        return Response(PredictionBatchSerializer(batch).data, status=status.HTTP_201_CREATED)


class PredictionBatchDetailApi(ApiView):
    """One prediction batch: its scope, status and how far it got."""

    @extend_schema(responses={200: PredictionBatchSerializer, **REFUSED})
    def get(self, request: Request, project_id: int, run_id: int, batch_id: int) -> Response:
        run = _run(request, project_id, run_id, REVIEW)
        return Response(PredictionBatchSerializer(selectors.prediction_batch_get(run=run, batch_id=batch_id)).data)


def _fraction(raw: str) -> float:
    value = number(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError("use a number from 0 to 1")
    return value


class RunOutputListApi(ApiView):
    """The run's outputs, by item id unless `order` says otherwise, filtered by split, label and confidence."""

    filters = {
        "split": choice(Split.values),
        "labelled": boolean,
        "label": text,
        "min_confidence": _fraction,
        "max_confidence": _fraction,
        "order": choice(selectors.OUTPUT_ORDERS),
    }

    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = ModelOutput
            fields = ["id", "item", "value", "probabilities", "confidence", "uncertainty", "created_at"]

    @extend_schema(
        parameters=[
            *PAGE_PARAMETERS,
            OpenApiParameter("split", OpenApiTypes.STR, enum=list(Split.values),
                             description="Only items in this split of the run's snapshot."),
            OpenApiParameter("labelled", OpenApiTypes.BOOL, description="Only items with (true) or without (false) "
                             "a final label now."),
            OpenApiParameter("label", OpenApiTypes.STR, description="Only outputs predicting this label."),
            OpenApiParameter("min_confidence", OpenApiTypes.FLOAT, description="0 to 1"),
            OpenApiParameter("max_confidence", OpenApiTypes.FLOAT, description="0 to 1"),
            OpenApiParameter("order", OpenApiTypes.STR, enum=list(selectors.OUTPUT_ORDERS),
                             description="item (default), uncertainty (highest first), confidence (lowest first)"),
        ],
        responses={200: paginated(OutputSerializer), **REFUSED},
    )
    def get(self, request: Request, project_id: int, run_id: int) -> Response:
        run = _run(request, project_id, run_id, REVIEW)
        outputs = selectors.run_outputs(run=run, **self.filter_values(request))
        return self.page(request, outputs, self.OutputSerializer)
