"""Explanations of model outputs: word attributions (classification) or token log-probabilities (generation).

One row per (run, explained text): the text is the item's text, plus the response for a generation, hashed, so
two items with the same text share an explanation and an item whose text is edited gets a new one. The row, not
Redis, says where the job stands; its result is the JSON that training/ml/explain.py returns.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import Item

from .runs import TrainingRun


class ExplanationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Explanation(models.Model):
    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="explanations")
    text_hash = models.CharField(max_length=64, help_text="sha256 of the explained text (and response).")
    item = models.ForeignKey(
        Item, on_delete=models.CASCADE, related_name="+", help_text="The item it was first asked for."
    )
    method = models.CharField(max_length=32, help_text="integrated_gradients or token_logprobs")
    status = models.CharField(max_length=16, choices=ExplanationStatus.choices, default=ExplanationStatus.QUEUED)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "text_hash"], name="explanation_once_per_run_text"),
            models.CheckConstraint(condition=Q(status__in=ExplanationStatus.values), name="explanation_status_known"),
        ]

    def __str__(self) -> str:
        return f"explanation {self.pk} of run {self.run_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (ExplanationStatus.QUEUED, ExplanationStatus.RUNNING)
