"""Reads for snapshots: lists, one snapshot, a pair to compare and the manifest shaped for pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from annotation.models import (
    Item,
    ItemStatus,
    Project,
    Snapshot,
)
from annotation.tasktypes import value_display
from core.errors import ServiceError

SNAPSHOT_PAIR_REQUIRED = "Choose two snapshots of this project to compare (old and new)."


def snapshot_list(*, project: Project) -> QuerySet[Snapshot]:
    return Snapshot.objects.filter(project=project).select_related("created_by").order_by("-created_at", "-id")


def snapshot_get(*, project: Project, snapshot_id: int) -> Snapshot | None:
    return Snapshot.objects.select_related("created_by", "project").filter(project=project, pk=snapshot_id).first()


def snapshot_pair(*, project: Project, old_id: str | int | None, new_id: str | int | None) -> tuple[Snapshot, Snapshot]:
    """Two snapshots of the project by id, or ServiceError naming what is missing."""
    found = {}
    for field, raw in (("old", old_id), ("new", new_id)):
        try:
            snapshot = snapshot_get(project=project, snapshot_id=int(raw)) if raw is not None and raw != "" else None
        except (TypeError, ValueError):
            snapshot = None
        if snapshot is None:
            raise ServiceError(SNAPSHOT_PAIR_REQUIRED, field=field)
        found[field] = snapshot
    return found["old"], found["new"]


def manifest_label_rows(manifest: dict[str, Any]) -> list[tuple[str, list[int], int]]:
    """(label, count per split in the manifest's split order, total) for the snapshot page's table."""
    by_split = manifest.get("labels_by_split", {})
    order = list(manifest.get("splits", {}))
    return [
        (label, [by_split.get(s, {}).get(label, 0) for s in order], total)
        for label, total in manifest.get("labels", {}).items()
    ]


def diff_examples(diff: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The compare report's examples with values made readable."""
    return [
        (
            kind,
            [
                {"item_id": e["item_id"], "old": value_display(e.get("old")), "new": value_display(e.get("new"))}
                for e in diff["examples"][kind]
            ],
        )
        for kind in ("relabelled", "added", "removed")
    ]


@dataclass(frozen=True)
class SnapshotPreview:
    """What creating a snapshot now would freeze: the approved items, and how many of them get their split now
    (for good: an item keeps its split in every later snapshot, so its test or training role never changes)."""

    items: int
    new_splits: int

    @property
    def kept_splits(self) -> int:
        return self.items - self.new_splits


def snapshot_preview(*, project: Project) -> SnapshotPreview:
    approved = Item.objects.filter(project=project, status=ItemStatus.APPROVED)
    return SnapshotPreview(items=approved.count(), new_splits=approved.filter(split_row__isnull=True).count())
