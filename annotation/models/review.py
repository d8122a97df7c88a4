"""Tables of review: review tasks and append-only decisions (the final label's history)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models.items import Item
from annotation.models.projects import GuidelineVersion, Project


class DecisionSource(models.TextChoices):
    REVIEWER = "reviewer", "Reviewer"
    AGREEMENT = "agreement", "Annotators agreed"
    IMPORT = "import", "Imported"
    MODEL_CORRECTED = "model_corrected", "Model output corrected by a reviewer"
    MODEL_RATED = "model_rated", "Model output rated well by a reviewer"
    WEIGHTED = "weighted", "Weighted vote of every judgement"
    OWNER = "owner", "Overruled by the project's owner"


class ReviewReason(models.TextChoices):
    DISAGREEMENT = "disagreement", "Annotators disagree"
    UNSURE = "unsure", "An annotator was unsure"
    AUDIT = "audit", "Audit sample"
    DOUBT = "doubt", "The weighted vote is in doubt"
    NOISE = "noise", "Noise scan suspect"
    MODEL = "model", "The model confidently disagrees"
    RATING = "rating", "A rater marked the model right against the final label"
    CORRECTION = "correction", "A rater's correction contradicts the annotators' agreement"


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
    routing = models.JSONField(
        null=True,
        blank=True,
        help_text='The routing in force when the task was opened, {"policy", "budget", "review_all"}: the task is '
        "explained and decided by it, whatever the project's settings say later (null: opened before this was "
        "recorded; the project's current routing applies).",
    )
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
