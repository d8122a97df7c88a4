"""The annotation domain: projects, people and their roles, guidelines, items and the work done on them.

Invariants live in the database wherever it can hold them (unique and check constraints, partial
indexes); the services in `annotation/services/` are the only code that writes these tables.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"


class TaskType(models.TextChoices):
    SINGLE_LABEL = "single_label", "Single-label classification"
    MULTI_LABEL = "multi_label", "Multi-label classification"
    INSTRUCTION = "instruction", "Instruction → response"

    @property
    def is_classification(self) -> bool:
        return self in (TaskType.SINGLE_LABEL, TaskType.MULTI_LABEL)


class GoalMetric(models.TextChoices):
    ACCURACY = "accuracy", "Accuracy"
    MACRO_F1 = "macro_f1", "Macro F1"
    ROUGE_L = "rouge_l", "ROUGE-L"
    BLEU = "bleu", "BLEU"


def default_rating_criteria() -> list[str]:
    return ["correct", "helpful", "follows the guidelines"]


class QueueOrder(models.TextChoices):
    """How the next round orders unlabelled items for annotation, from the latest model's outputs."""

    ENTROPY = "entropy", "Most uncertain first (entropy)"
    MARGIN = "margin", "Smallest margin between the two likeliest labels first"
    RANDOM = "random", "Random order"


class Project(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    task_type = models.CharField(max_length=32, choices=TaskType.choices, default=TaskType.SINGLE_LABEL)
    goal_metric = models.CharField(max_length=32, choices=GoalMetric.choices, default=GoalMetric.MACRO_F1)
    overlap = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="How many distinct annotators label each item, blind to each other.",
    )
    lease_seconds = models.PositiveIntegerField(
        default=900,
        validators=[MinValueValidator(30), MaxValueValidator(24 * 3600)],
        help_text="How long a claimed item stays reserved for its annotator before it returns to the pool.",
    )
    audit_rate = models.FloatField(
        default=0.1,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of agreed items that still go to review as an audit sample.",
    )
    review_all = models.BooleanField(default=False, help_text="Send every annotated item to review.")
    # The next round (training/rounds.py): how model outputs feed annotation and review.
    show_prelabels = models.BooleanField(
        default=False,
        help_text=(
            "Show annotators a pre-label (imported or from the latest model). "
            "Off by default: it biases blind labelling."
        ),
    )
    show_model_confidence = models.BooleanField(
        default=False, help_text="Show raters the model's confidence beside its output."
    )
    rating_criteria = models.JSONField(
        default=default_rating_criteria,
        blank=True,
        help_text="Criteria rated 1-5 for generated responses.",
    )
    queue_order = models.CharField(max_length=16, choices=QueueOrder.choices, default=QueueOrder.ENTROPY)
    random_share = models.FloatField(
        default=0.2,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of the annotation queue kept in random order so the data stays representative.",
    )
    disagreement_confidence = models.FloatField(
        default=0.9,
        validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text="A model this confident against an item's final label sends the item back to review.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_positive"),
            models.CheckConstraint(
                condition=Q(audit_rate__gte=0) & Q(audit_rate__lte=1), name="project_audit_rate_0_1"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def task(self) -> TaskType:
        return TaskType(self.task_type)


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user")]

    def __str__(self) -> str:
        return f"{self.user} as {self.role} in {self.project}"


hex_colour = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a hex colour such as #1f77b4.")


class Label(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=100)
    color = models.CharField(max_length=7, default="#4f6bed", validators=[hex_colour])
    hotkey = models.CharField(max_length=1, blank=True, help_text="One key, 1-9 or a letter.")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="label_unique_name"),
            models.UniqueConstraint(
                fields=["project", "hotkey"], condition=~Q(hotkey=""), name="label_unique_hotkey"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class GuidelineVersion(models.Model):
    """One published version of a project's annotation guidelines; never edited after publishing."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="guideline_versions")
    version = models.PositiveIntegerField()
    body = models.TextField(help_text="Markdown; rendered with every tag outside a safe list removed.")
    change_note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="guideline_unique_version"),
            models.CheckConstraint(condition=Q(version__gte=1), name="guideline_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.project} guidelines v{self.version}"


class GuidelineAcknowledgement(models.Model):
    guideline_version = models.ForeignKey(GuidelineVersion, on_delete=models.CASCADE, related_name="acknowledgements")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    acknowledged_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["guideline_version", "user"], name="guideline_ack_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} read guideline version {self.guideline_version_id}"


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """One import of a JSONL or CSV file; the row, not Redis, is the source of truth for its status."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    file_name = models.CharField(max_length=255)
    file_path = models.CharField(max_length=1024, blank=True, help_text="Stored upload the job reads.")
    file_format = models.CharField(max_length=8, choices=[("jsonl", "JSONL"), ("csv", "CSV")])
    mapping = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.PENDING)
    total_bytes = models.BigIntegerField(default=0)
    processed_bytes = models.BigIntegerField(default=0)
    rows_read = models.PositiveIntegerField(default=0)
    rows_imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    duplicate_examples = models.JSONField(default=list, blank=True)
    errors = models.JSONField(default=list, blank=True, help_text="[{line, field, message}], at most a few hundred.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import {self.file_name} into {self.project}"


class ItemStatus(models.TextChoices):
    NEW = "new", "New"
    IN_ANNOTATION = "in_annotation", "In annotation"
    ANNOTATED = "annotated", "Annotated"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    VALIDATION = "validation", "Validation"
    TEST = "test", "Test"


class Item(models.Model):
    """One thing to label: a text, or a prompt with an optional reference response."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=255, blank=True)
    text = models.TextField(help_text="The text to classify, or the prompt for instruction projects.")
    response = models.TextField(blank=True, help_text="Instruction projects: a response to edit or judge.")
    metadata = models.JSONField(default=dict, blank=True)
    group_key = models.CharField(max_length=255, blank=True, help_text="Items sharing it always share a split.")
    content_hash = models.CharField(max_length=32, help_text="Digest of the normalised text: exact duplicates.")
    prelabel = models.JSONField(null=True, blank=True)
    import_job = models.ForeignKey(ImportJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="items")
    status = models.CharField(max_length=16, choices=ItemStatus.choices, default=ItemStatus.NEW)
    # Overlap bookkeeping, changed only by conditional UPDATEs in services/annotations.py:
    # slots_taken counts live claims plus submissions; is_open mirrors slots_taken < project.overlap
    # so that the next-item query runs on a partial index.
    slots_taken = models.PositiveSmallIntegerField(default=0)
    submitted_count = models.PositiveSmallIntegerField(default=0)
    is_open = models.BooleanField(default=True)
    priority = models.FloatField(default=0.0, help_text="Higher is labelled first (active learning).")
    # The item's split lives in ItemSplit (related name split_row), written once by its first snapshot.
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "content_hash"], name="item_unique_content"),
            models.UniqueConstraint(
                fields=["project", "external_id"], condition=~Q(external_id=""), name="item_unique_external_id"
            ),
            models.CheckConstraint(condition=Q(submitted_count__lte=F("slots_taken")), name="item_submitted_le_taken"),
        ]
        indexes = [
            models.Index(
                fields=["project", "-priority", "id"], condition=Q(is_open=True), name="item_open_queue"
            ),
            models.Index(fields=["project", "status"], name="item_project_status"),
        ]

    def __str__(self) -> str:
        return f"item {self.pk}"


class ClaimStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


class Claim(models.Model):
    """An annotator's hold on one overlap slot of an item: at most one per (item, annotator), ever."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="claims")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="claims")
    status = models.CharField(max_length=16, choices=ClaimStatus.choices, default=ClaimStatus.ACTIVE)
    claimed_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "annotator"], name="claim_unique_annotator")]
        indexes = [
            models.Index(fields=["annotator", "project", "status"], name="claim_annotator_status"),
            models.Index(
                fields=["project", "lease_expires_at"], condition=Q(status="active"), name="claim_active_lease"
            ),
        ]

    def __str__(self) -> str:
        return f"claim of item {self.item_id} by {self.annotator_id}"


class AnnotationStatus(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    RETRACTED = "retracted", "Retracted by its annotator (undo)"


class Annotation(models.Model):
    """A submitted label. Rows are only ever added; an undo marks a row retracted and keeps it."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations")
    value = models.JSONField(help_text='{"label": ...}, {"labels": [...]} or {"response": ...}')
    unsure = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    guideline_version = models.ForeignKey(
        GuidelineVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="annotations"
    )
    seconds_spent = models.FloatField(default=0.0)
    status = models.CharField(max_length=16, choices=AnnotationStatus.choices, default=AnnotationStatus.SUBMITTED)
    created_at = models.DateTimeField(auto_now_add=True)
    retracted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "annotator"], condition=Q(status="submitted"), name="annotation_once_per_annotator"
            ),
        ]
        indexes = [models.Index(fields=["annotator", "status", "-created_at"], name="annotation_by_annotator")]

    def __str__(self) -> str:
        return f"annotation {self.pk} of item {self.item_id} by {self.annotator_id}"


class Draft(models.Model):
    """Autosaved work in progress: one per (item, annotator), replaced on every save, removed on submit."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="drafts")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    value = models.JSONField(default=dict)
    unsure = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "annotator"], name="draft_unique")]

    def __str__(self) -> str:
        return f"draft of item {self.item_id} by {self.annotator_id}"


# =================================================================================================
# Review, data quality and snapshots.
#
# Decisions, snapshots and item splits are append-only: no service updates their rows, and
# migrations 0002 and 0004 add database triggers that refuse any UPDATE of a Decision, Snapshot,
# SnapshotItem or ItemSplit row (promises 3, 6 and 7). On SQLite a table rebuilt by a later
# migration loses its triggers: a migration that alters these tables must create them again.
# =================================================================================================


class DecisionSource(models.TextChoices):
    REVIEWER = "reviewer", "Reviewer"
    AGREEMENT = "agreement", "Annotators agreed"
    IMPORT = "import", "Imported"
    MODEL_CORRECTED = "model_corrected", "Model output corrected by a reviewer"
    MODEL_RATED = "model_rated", "Model output rated well by a reviewer"


class ReviewReason(models.TextChoices):
    DISAGREEMENT = "disagreement", "Annotators disagree"
    UNSURE = "unsure", "An annotator was unsure"
    AUDIT = "audit", "Audit sample"
    NOISE = "noise", "Noise scan suspect"
    MODEL = "model", "The model confidently disagrees"
    RATING = "rating", "A rater marked the model right against the final label"


class ReviewStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Decided"
    SENT_BACK = "sent_back", "Sent back to the annotators"
    WITHDRAWN = "withdrawn", "Withdrawn: an annotator took their label back"


class ReviewTask(models.Model):
    """Why an item waits for a reviewer. At most one open task per item; closed tasks stay as history."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="review_tasks")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="review_tasks")
    reasons = models.JSONField(default=list, help_text="ReviewReason values, most important first.")
    status = models.CharField(max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.OPEN)
    priority = models.IntegerField(default=0, help_text="Higher is reviewed first.")
    noise_score = models.FloatField(null=True, blank=True, help_text="Label quality from a noise scan: low is suspect.")
    suggested_value = models.JSONField(null=True, blank=True)
    comment = models.TextField(blank=True, help_text="The reviewer's note when sending the item back.")
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-priority", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["item"], condition=Q(status="open"), name="review_one_open_per_item"),
        ]
        indexes = [
            models.Index(
                fields=["project", "-priority", "created_at", "id"],
                condition=Q(status="open"),
                name="review_open_queue",
            ),
        ]

    def __str__(self) -> str:
        return f"review of item {self.item_id} ({self.status})"


class Decision(models.Model):
    """A final value for an item. Rows are only added: the latest one is the item's current final value."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions",
        help_text="Empty when the annotators' agreement or an import made the decision.",
    )
    value = models.JSONField()
    reason = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=DecisionSource.choices)
    guideline_version = models.ForeignKey(
        GuidelineVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions"
    )
    review_task = models.ForeignKey(
        ReviewTask, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["item", "created_at", "id"], name="decision_item_latest")]

    def __str__(self) -> str:
        return f"decision {self.pk} on item {self.item_id} ({self.source})"


class ScanStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class NoiseScan(models.Model):
    """One label-noise scan of a project; the row, not Redis, is the source of truth for its status."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="noise_scans")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=ScanStatus.choices, default=ScanStatus.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    message = models.CharField(max_length=1000, blank=True)
    params = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"], condition=Q(status__in=["queued", "running"]), name="noise_scan_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"noise scan {self.pk} of {self.project} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (ScanStatus.QUEUED, ScanStatus.RUNNING)


class NoiseFlag(models.Model):
    """An item whose given label a scan's out-of-fold model doubts."""

    scan = models.ForeignKey(NoiseScan, on_delete=models.CASCADE, related_name="flags")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="noise_flags")
    score = models.FloatField(help_text="Label quality, 0 to 1: low means the given label is likely wrong.")
    given = models.JSONField()
    suggested = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["score", "id"]
        constraints = [models.UniqueConstraint(fields=["scan", "item"], name="noise_flag_once_per_scan")]

    def __str__(self) -> str:
        return f"noise flag on item {self.item_id} ({self.score:.2f})"


class ItemEmbedding(models.Model):
    """Cached sentence embedding of an item's text (float32 bytes), so a re-scan only embeds new items."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    model_name = models.CharField(max_length=200)
    vector = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "model_name"], name="item_embedding_unique")]

    def __str__(self) -> str:
        return f"{self.model_name} embedding of item {self.item_id}"


class ItemSplit(models.Model):
    """The split an item got in its first snapshot; it keeps it in every later one (promise 7).

    A table of its own rather than a column of Item: the first snapshot of a million items inserts a
    million small rows (COPY on PostgreSQL) instead of writing a new version of every item row and its
    index entries, and insert-only storage is what "never changes" means. A trigger refuses UPDATE.
    """

    item = models.OneToOneField(Item, primary_key=True, on_delete=models.CASCADE, related_name="split_row")
    split = models.CharField(max_length=16, choices=Split.choices)

    def __str__(self) -> str:
        return f"item {self.item_id}: {self.split}"


class Snapshot(models.Model):
    """A frozen, content-hashed dataset: sha256 of its canonical JSONL, which its rows reproduce."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="snapshots")
    name = models.CharField(max_length=200)
    content_hash = models.CharField(max_length=64, db_index=True, help_text="sha256 of the canonical JSONL.")
    item_count = models.PositiveIntegerField()
    seed = models.IntegerField(help_text="Seed of the split assignment for items that had no split yet.")
    manifest = models.JSONField(help_text="Counts per label and split, agreement, noise, guideline versions.")
    file_path = models.CharField(max_length=1024, help_text="The JSONL, relative to MEDIA_ROOT.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.content_hash[:12]})"


class SnapshotItem(models.Model):
    """One row of a snapshot: exactly what its JSONL line says, together with the item's text."""

    # No index of its own: snapshot_item_unique (snapshot, item) serves lookups by snapshot.
    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="rows", db_index=False)
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="snapshot_rows")
    value = models.JSONField()
    split = models.CharField(max_length=16, choices=Split.choices)
    guideline_version = models.PositiveIntegerField(null=True, blank=True)
    provenance = models.JSONField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "item"], name="snapshot_item_unique")]

    def __str__(self) -> str:
        return f"item {self.item_id} in snapshot {self.snapshot_id}"
