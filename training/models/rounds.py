"""Tables of rounds: each turn of the loop and the changes it made."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import Item, Project, Snapshot
from training.models.ratings import Rating
from training.models.runs import ModelOutput, TrainingRun


class Round(models.Model):
    """One turn of the loop: its guideline version, snapshot and runs, the ratings they got, its figures,
    and what starting the next round changed. Round 1 opens with the project's first use; an owner closes
    the current round by starting the next one (training/rounds/services.py), which records `figures` and `changes`."""

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

    @property
    def to_review(self) -> int:
        """Items closing it sent to review (model disagreements and low ratings), for the rounds table."""
        return int(self.changes.get("review_model", 0)) + int(self.changes.get("review_rating", 0))


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
