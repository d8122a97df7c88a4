"""Tables of datasets: item splits (insert-only), snapshots and their rows (immutable)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models.items import Item
from annotation.models.projects import Project


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    VALIDATION = "validation", "Validation"
    TEST = "test", "Test"


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
