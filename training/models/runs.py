"""Tables of runs: training runs, their progress events, prediction batches and model outputs."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotation.models import Item, Project, Snapshot


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


FINAL_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class TrainingRun(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="training_runs")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="training_runs")
    snapshot_hash = models.CharField(max_length=64, help_text="The content hash of the snapshot it trained on.")
    augmentation = models.ForeignKey(
        "training.Augmentation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="training_runs",
        help_text="Extra train rows made from the snapshot's train rows, trained on beside them.",
    )
    name = models.CharField(max_length=200, blank=True)
    task = models.CharField(max_length=32)
    base_model = models.CharField(max_length=500)
    spec = models.JSONField(help_text="The validated TrainingSpec (training/spec.py) as JSON.")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    resumed_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="resumes")
    teacher = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="students",
        help_text="Knowledge distillation: the finished run whose soft labels this (smaller) run learnt from.",
    )
    progress = models.JSONField(default=dict, blank=True, help_text="Latest step, epoch, lr, losses, ETA.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Test-split evaluation and baselines.")
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=255, blank=True)
    rq_job_id = models.CharField(max_length=100, blank=True)
    artifact_dir = models.CharField(max_length=1024, blank=True, help_text="Relative to MEDIA_ROOT.")
    checkpoint_dir = models.CharField(max_length=1024, blank=True, help_text="Relative to MEDIA_ROOT.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RunStatus.values), name="run_status_known"),
            # Two clicks on "Resume" must not start two runs from the same checkpoint.
            models.UniqueConstraint(
                fields=["resumed_from"], condition=Q(status__in=ACTIVE_STATUSES), name="run_one_active_resume"
            ),
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat")]

    def __str__(self) -> str:
        return self.name or f"run {self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def heartbeat_lost(self) -> bool:
        """Running, but silent past LABELLOOP_RUN_STALE_AFTER_S: the next sweep marks it failed (abandoned)."""
        if self.status != RunStatus.RUNNING or self.heartbeat_at is None:
            return False
        return timezone.now() - self.heartbeat_at > dt.timedelta(seconds=settings.LABELLOOP_RUN_STALE_AFTER_S)


class RunEvent(models.Model):
    """One point of a run's live charts: a training step's figures or a validation evaluation."""

    class Kind(models.TextChoices):
        TRAIN = "train", "Training step"
        EVAL = "eval", "Validation"
        LOG = "log", "Message"

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    step = models.PositiveIntegerField(default=0)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "id"], name="run_event_order")]

    def __str__(self) -> str:
        return f"{self.kind} event of run {self.run_id} at step {self.step}"


class ModelOutput(models.Model):
    """What a trained model said about an item: a predicted label with probabilities, or generated text."""

    run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="outputs")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="model_outputs")
    value = models.JSONField(help_text='{"label": ...} / {"labels": [...]} / {"response": ...}')
    probabilities = models.JSONField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    uncertainty = models.FloatField(null=True, blank=True, help_text="Entropy of the predicted distribution.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "item"], name="model_output_once_per_run")]

    def __str__(self) -> str:
        return f"output of run {self.run_id} on item {self.item_id}"


class PredictionStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class PredictionScope(models.TextChoices):
    TEST = "test", "The snapshot's test split"
    UNLABELLED = "unlabelled", "Items without a final label"
    TEST_AND_UNLABELLED = "test_unlabelled", "Test split and items without a final label"


class PredictionBatch(models.Model):
    """One batch-prediction job of a trained run over a set of items; the row, not Redis, holds its status.

    Its ModelOutput rows are unique per (run, item), so running a batch again adds only the missing ones.
    """

    run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="prediction_batches")
    scope = models.CharField(max_length=20, choices=PredictionScope.choices)
    status = models.CharField(max_length=16, choices=PredictionStatus.choices, default=PredictionStatus.QUEUED)
    total = models.PositiveIntegerField(default=0, help_text="Items in scope when the job started.")
    done = models.PositiveIntegerField(default=0, help_text="Items with an output of this run so far.")
    written = models.PositiveIntegerField(default=0, help_text="Outputs this batch added (the rest existed).")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "prediction batches"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run"], condition=Q(status__in=["queued", "running"]), name="prediction_batch_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"predictions {self.pk} of {self.run} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (PredictionStatus.QUEUED, PredictionStatus.RUNNING)
