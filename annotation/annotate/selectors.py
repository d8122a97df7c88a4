"""Reads of the annotate loop: progress, the caller's draft and claim, and the annotations export."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from annotation.models import (
    Annotation,
    AnnotationStatus,
    Claim,
    ClaimStatus,
    Draft,
    Item,
    ItemStatus,
    Project,
)

# Once an item has all its annotations it counts as done, whatever review does with it afterwards.
DONE_STATUSES = (ItemStatus.ANNOTATED, ItemStatus.IN_REVIEW, ItemStatus.APPROVED)


@dataclass(frozen=True)
class ProjectProgress:
    total: int
    done: int
    in_annotation: int
    new: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


@dataclass(frozen=True)
class AnnotatorProgress:
    submitted: int
    skipped: int
    holding: int
    open_for_me: int

    @property
    def percent(self) -> int:
        """Share of what this annotator can still reach that is done: an estimate, others fill slots too.

        Nothing reachable and nothing done (a project with no items yet) is 0 %, not a full bar.
        """
        reachable = self.submitted + self.holding + self.open_for_me
        return round(100 * self.submitted / reachable) if reachable else 0


def project_progress(*, project: Project) -> ProjectProgress:
    """Item counts by stage. One aggregate query over the project's items (uses the status index)."""
    counts = Item.objects.filter(project=project).aggregate(
        total=Count("pk"),
        done=Count("pk", filter=Q(status__in=DONE_STATUSES)),
        in_annotation=Count("pk", filter=Q(status=ItemStatus.IN_ANNOTATION)),
        new=Count("pk", filter=Q(status=ItemStatus.NEW)),
    )
    return ProjectProgress(**counts)


def annotator_progress(*, user: User, project: Project) -> AnnotatorProgress:
    """What one annotator has done and how much is still open to them. Two queries."""
    mine = Claim.objects.filter(project=project, annotator=user).aggregate(
        submitted=Count("pk", filter=Q(status=ClaimStatus.SUBMITTED)),
        skipped=Count("pk", filter=Q(status=ClaimStatus.SKIPPED)),
        holding=Count("pk", filter=Q(status=ClaimStatus.ACTIVE)),
    )
    never_claimed = ~Exists(Claim.objects.filter(item=OuterRef("pk"), annotator=user))
    open_for_me = Item.objects.filter(project=project, is_open=True).filter(never_claimed).count()
    return AnnotatorProgress(open_for_me=open_for_me, **mine)


def draft_get(*, user: User, item: Item) -> Draft | None:
    return Draft.objects.filter(item=item, annotator=user).first()


def claim_active_get(
    *, user: User, project: Project, item_id: int, now: dt.datetime | None = None
) -> Claim | None:
    """The user's live claim on one item (with the item), or None: drafts and deep links need one."""
    now = now or timezone.now()
    return (
        Claim.objects.select_related("item")
        .filter(
            annotator=user, project=project, item_id=item_id, status=ClaimStatus.ACTIVE, lease_expires_at__gt=now
        )
        .first()
    )


# Rows fetched per round trip while streaming an export: memory stays flat whatever the project's size.
EXPORT_CHUNK_SIZE = 2000


def annotations_export_rows(*, project: Project) -> Iterator[dict[str, Any]]:
    """Every submitted annotation of the project, one dict per line of the JSONL export, item by item.

    Everyone's values side by side: only roles that may see them (owner, reviewer) reach this. Retracted
    annotations (undone by their annotator) are left out: they are history, not labels.
    """
    rows = (
        Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED)
        .order_by("item_id", "created_at", "pk")
        .values_list(
            "item_id",
            "item__external_id",
            "item__text",
            "annotator__username",
            "value",
            "unsure",
            "note",
            "guideline_version__version",
            "created_at",
        )
    )
    for item_id, external_id, text, username, value, unsure, note, guideline, created_at in rows.iterator(
        chunk_size=EXPORT_CHUNK_SIZE
    ):
        yield {
            "item_id": item_id,
            "external_id": external_id,
            "text": text,
            "annotator": username,
            "value": value,
            "unsure": unsure,
            "note": note,
            "guideline_version": guideline,
            "created_at": created_at.isoformat(),
        }


def annotation_list(
    *,
    project: Project,
    annotator: User | None = None,
    annotator_username: str | None = None,
    item_id: int | None = None,
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
) -> QuerySet[Annotation]:
    """Submitted annotations, oldest first; `annotator` keeps one person's (what an annotator may see: blind)."""
    rows = Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED)
    if annotator is not None:
        rows = rows.filter(annotator=annotator)
    if annotator_username is not None:
        rows = rows.filter(annotator__username=annotator_username)
    if item_id is not None:
        rows = rows.filter(item_id=item_id)
    if created_after is not None:
        rows = rows.filter(created_at__gte=created_after)
    if created_before is not None:
        rows = rows.filter(created_at__lt=created_before)
    return rows.select_related("annotator", "guideline_version").order_by("created_at", "pk")
