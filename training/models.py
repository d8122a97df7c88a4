"""Training runs, their progress events, and the outputs a trained model produces.

A run's status lives here, not in Redis: queued → running → succeeded | failed | cancelled. A running run
has a heartbeat; one whose heartbeat stops is marked failed (abandoned) and can be resumed, which creates
a new run that continues from the old one's last checkpoint. Nothing is deleted: runs are history.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

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
    name = models.CharField(max_length=200, blank=True)
    task = models.CharField(max_length=32)
    base_model = models.CharField(max_length=500)
    spec = models.JSONField(help_text="The validated TrainingSpec (training/spec.py) as JSON.")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    resumed_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="resumes")
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


# =================================================================================================
# The next round: people rate what a run produced, and rounds record what that changed.
#
# Ratings and preferences are appended, never updated (promise 3): a rater who changes their mind adds a
# row, and the latest row per (output, rater) or (comparison, item, rater) is the current one.
# =================================================================================================


class Verdict(models.TextChoices):
    CORRECT = "correct", "Correct"
    WRONG = "wrong", "Wrong"


class Rating(models.Model):
    """A person's judgement of one model output: correct / wrong (+ the right label), or 1-5 per criterion
    (+ an optional corrected response)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="ratings")
    output = models.ForeignKey(ModelOutput, on_delete=models.PROTECT, related_name="ratings")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="ratings")
    run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="ratings")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ratings")
    verdict = models.CharField(max_length=8, choices=Verdict.choices, blank=True, help_text="Classification.")
    scores = models.JSONField(default=dict, blank=True, help_text="{criterion: 1-5} for generated responses.")
    correction = models.JSONField(
        null=True, blank=True, help_text='The right value: {"label": ...}, {"labels": [...]} or {"response": ...}.'
    )
    note = models.TextField(blank=True)
    guideline_version = models.ForeignKey(
        "annotation.GuidelineVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="ratings"
    )
    seconds_spent = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["output", "rater", "-created_at"], name="rating_latest"),
            models.Index(fields=["run", "created_at"], name="rating_by_run"),
        ]

    def __str__(self) -> str:
        return f"rating {self.pk} of output {self.output_id} by {self.rater_id}"


class Comparison(models.Model):
    """A blind A/B comparison of two runs' responses to the same prompts, set up by an owner.

    Which run is shown first is decided per (comparison, item, rater) by a keyed hash the page never sees
    (training/ratings.py): the page shows "Response 1" and "Response 2", and the form posts back only a side.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comparisons")
    run_a = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="+")
    run_b = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(run_a=models.F("run_b")), name="comparison_two_runs"),
            models.UniqueConstraint(fields=["run_a", "run_b"], name="comparison_unique_pair"),
        ]

    def __str__(self) -> str:
        return f"comparison {self.pk}: run {self.run_a_id} vs run {self.run_b_id}"


class Preference(models.Model):
    """A rater's A/B choice between two runs' outputs for one prompt. `chosen`/`rejected` are outputs;
    both empty with `tie` set when the rater found them equal. `first` is the output shown first."""

    comparison = models.ForeignKey(Comparison, on_delete=models.PROTECT, related_name="preferences")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="preferences")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="preferences")
    first = models.ForeignKey(ModelOutput, on_delete=models.PROTECT, related_name="+")
    chosen = models.ForeignKey(ModelOutput, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    rejected = models.ForeignKey(ModelOutput, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    tie = models.BooleanField(default=False)
    guideline_version = models.ForeignKey(
        "annotation.GuidelineVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="preferences"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(tie=True, chosen__isnull=True, rejected__isnull=True))
                | (Q(tie=False, chosen__isnull=False, rejected__isnull=False)),
                name="preference_choice_or_tie",
            ),
        ]
        indexes = [models.Index(fields=["comparison", "rater", "item"], name="preference_by_rater")]

    def __str__(self) -> str:
        return f"preference {self.pk} in comparison {self.comparison_id}"


class Round(models.Model):
    """One turn of the loop: its guideline version, snapshot and runs, the ratings they got, its figures,
    and what starting the next round changed. Round 1 opens with the project's first use; an owner closes
    the current round by starting the next one (training/rounds.py), which records `figures` and `changes`."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField()
    guideline_version = models.ForeignKey(
        "annotation.GuidelineVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    snapshot = models.ForeignKey(Snapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="rounds")
    runs = models.ManyToManyField(TrainingRun, blank=True, related_name="rounds")
    figures = models.JSONField(
        default=dict, blank=True, help_text="Main metric, agreement, noise rate and ratings when it closed."
    )
    changes = models.JSONField(default=dict, blank=True, help_text="Counts of what closing it changed.")
    plan = models.JSONField(default=dict, blank=True, help_text="The options the owner chose when closing it.")
    started_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["project", "number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="round_number_unique"),
            models.UniqueConstraint(fields=["project"], condition=Q(closed_at__isnull=True), name="round_one_open"),
        ]

    def __str__(self) -> str:
        return f"round {self.number} of project {self.project_id}"


class RoundChange(models.Model):
    """One thing closing a round did to one item, with what caused it: the provenance of the next round."""

    class Kind(models.TextChoices):
        CORRECTION = "correction", "A correction became the final value"
        EXAMPLE = "example", "A well-rated response became a training example"
        REVIEW = "review", "Sent to review: the model confidently disagrees"
        PRELABEL = "prelabel", "The model's output became the annotators' pre-label"

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="item_changes")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="round_changes")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    rating = models.ForeignKey(Rating, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    output = models.ForeignKey(ModelOutput, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["round", "kind"], name="round_change_kind")]

    def __str__(self) -> str:
        return f"{self.kind} of item {self.item_id} in {self.round}"
