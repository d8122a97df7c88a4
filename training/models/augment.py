"""Tables of augmentation: extra train rows made from a snapshot's train rows, kept apart from the snapshot."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.models import Project, Snapshot


class AugmentationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Augmentation(models.Model):
    """Augmented train rows of one snapshot: a content-hashed JSONL of its own, made once by a job.

    The snapshot is left exactly as it was (its rows and hash are the people's labels); this row records the
    options (methods, rows per source row, seed, paraphrase cap) and, once succeeded, the hash of the rows it
    made. Nothing here changes after it succeeds; a run trained with it records both hashes.
    """

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="augmentations")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="augmentations")
    snapshot_hash = models.CharField(max_length=64, help_text="The content hash of the snapshot augmented.")
    options = models.JSONField(help_text="methods, per_row, seed, max_paraphrases.")
    status = models.CharField(max_length=16, choices=AugmentationStatus.choices, default=AugmentationStatus.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0 to 1.")
    message = models.CharField(max_length=1000, blank=True)
    content_hash = models.CharField(max_length=64, blank=True, help_text="sha256 of the augmented rows' JSONL.")
    row_count = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True, help_text="Rows made and skipped per method, models used.")
    file_path = models.CharField(max_length=1024, blank=True, help_text="The JSONL, relative to MEDIA_ROOT.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=AugmentationStatus.values), name="augmentation_status_known"),
            # One job at a time per snapshot: paraphrase holds a worker for minutes.
            models.UniqueConstraint(
                fields=["snapshot"], condition=Q(status__in=["queued", "running"]), name="augmentation_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"augmentation {self.pk} of snapshot {self.snapshot_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (AugmentationStatus.QUEUED, AugmentationStatus.RUNNING)

    @property
    def methods(self) -> list[str]:
        return list(self.options.get("methods", []))
