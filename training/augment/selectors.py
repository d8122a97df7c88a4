"""Reads of augmentations: a snapshot's, one by id, and what the pages show of one."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from annotation.models import Item, Project, Snapshot
from training.augment import services
from training.models import Augmentation, AugmentationStatus

SAMPLE_ROWS = 30


def augmentation_list(*, snapshot: Snapshot) -> QuerySet[Augmentation]:
    return Augmentation.objects.filter(snapshot=snapshot).select_related("created_by")


def augmentations_succeeded(*, snapshot: Snapshot) -> list[Augmentation]:
    """What a run on `snapshot` may train with, newest first."""
    return list(Augmentation.objects.filter(snapshot=snapshot, status=AugmentationStatus.SUCCEEDED))


def augmentation_get(*, project: Project, augmentation_id: int) -> Augmentation | None:
    return (
        Augmentation.objects.filter(project=project, pk=augmentation_id)
        .select_related("snapshot", "created_by")
        .first()
    )


def augmentation_sample(*, augmentation: Augmentation, limit: int = SAMPLE_ROWS) -> list[dict[str, Any]]:
    """The first augmented rows, each beside its source item's text, for the page."""
    text_field = augmentation.project.task_kind.text_field
    rows = list(services.augmentation_rows(augmentation=augmentation, limit=limit))
    sources = dict(Item.objects.filter(pk__in=[row["augmented_from"] for row in rows]).values_list("pk", "text"))
    return [
        {
            "source_id": row["augmented_from"],
            "method": row["method"],
            "label": row.get("label", ""),
            "source": sources.get(row["augmented_from"], ""),
            "text": row[text_field],
        }
        for row in rows
    ]


def augmentation_summary(augmentation: Augmentation | None) -> dict[str, Any] | None:
    """What a run's page, run.json and model card say about the augmentation it trained with."""
    if augmentation is None:
        return None
    return {
        "id": augmentation.pk,
        "content_hash": augmentation.content_hash,
        "snapshot_hash": augmentation.snapshot_hash,
        "options": augmentation.options,
        "rows": augmentation.row_count,
        "made": (augmentation.report or {}).get("made", {}),
    }
