"""Tables of imports: one row per uploaded file and its job."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models.projects import Project


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class LabelsAs(models.TextChoices):
    """What a file's label column becomes: the owner says how far the labels in it can be trusted."""

    SUGGESTION = "suggestion", "Suggestions (pre-labels)"
    ANNOTATION = "annotation", "One annotation each"
    FINAL = "final", "Final labels"


class ImportJob(models.Model):
    """One import of a JSONL or CSV file; the row, not Redis, is the source of truth for its status."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    file_name = models.CharField(max_length=255)
    file_path = models.CharField(max_length=1024, blank=True, help_text="Stored upload the job reads.")
    file_format = models.CharField(
        max_length=16,
        choices=[("jsonl", "JSONL"), ("csv", "CSV"), ("conll", "CoNLL / BIO"), ("labelstudio", "Label Studio JSON")],
    )
    mapping = models.JSONField(default=dict, blank=True)
    labels_as = models.CharField(max_length=16, choices=LabelsAs.choices, default=LabelsAs.SUGGESTION)
    partial = models.BooleanField(
        default=False, help_text="Import the valid rows and report the others, instead of importing nothing."
    )
    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.PENDING)
    total_bytes = models.BigIntegerField(default=0)
    processed_bytes = models.BigIntegerField(default=0)
    rows_read = models.PositiveIntegerField(default=0)
    rows_imported = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    duplicate_examples = models.JSONField(default=list, blank=True)
    rows_rejected = models.PositiveIntegerField(default=0, help_text="Rows left out because of an error.")
    errors = models.JSONField(
        default=list,
        blank=True,
        help_text="[{line, field, message}], at most a few thousand; kept on a partial import's success.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Stamped while the import runs; a running import silent for LABELLOOP_RUN_STALE_AFTER_S is failed by the sweep.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import {self.file_name} into {self.project}"
