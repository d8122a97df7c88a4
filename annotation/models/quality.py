"""Tables of quality: noise scans, their flags, and cached item embeddings."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models.items import Item
from annotation.models.projects import Project


class ScanStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


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
    model_value = models.JSONField(
        null=True,
        blank=True,
        help_text="The scan's out-of-fold model's likeliest label for the item: its vote when the flag is reviewed.",
    )
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
