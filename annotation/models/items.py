"""The item: the text (or prompt and response) people judge, and where it stands in the loop."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from annotation.models.imports import ImportJob
from annotation.models.projects import Project


class ItemStatus(models.TextChoices):
    NEW = "new", "New"
    IN_ANNOTATION = "in_annotation", "In annotation"
    ANNOTATED = "annotated", "Annotated"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"


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
    # slots_taken counts live claims plus submissions; is_open mirrors slots_taken < project.overlap + extra_slots
    # so that the next-item query runs on a partial index.
    slots_taken = models.PositiveSmallIntegerField(default=0)
    submitted_count = models.PositiveSmallIntegerField(default=0)
    # Adaptive routing asked for this many annotators beyond the project's overlap (review/routing.py).
    extra_slots = models.PositiveSmallIntegerField(default=0)
    # How many annotations the item had when routing first asked for one more: its blind ones, which agreement is
    # measured on (quality/selectors.py agreement_rows). Null: routing never asked, every annotation is blind.
    blind_count = models.PositiveSmallIntegerField(null=True, blank=True)
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
