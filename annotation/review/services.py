"""Review: routing fully annotated items, append-only decisions, and sending items back.

- `item_route` runs inside the transaction that stores an item's last annotation: disagreement or
  an unsure annotator sends the item to review; an agreed item is audited with probability
  `project.audit_rate` (seeded by the item id, so the same item is always or never sampled) or
  always under `review_all`; otherwise the agreement itself becomes the item's first decision.
- A decision is a new `Decision` row, never an update; the latest one is the item's final value.
- An open review task is closed by exactly one of: a decision, a send-back, an annotator's undo.
  Each is a conditional UPDATE on `status=open`, so the rowcount says who won a race.

Sending back re-opens the item to the SAME annotators: their submitted annotations are marked
retracted (kept in the history), their value becomes their draft again, and their claims become
active again with a long lease (`SEND_BACK_LEASE`). The item's overlap slots stay taken by them
throughout, so a new round can never exceed `overlap` annotators; if an annotator does not come
back within the lease, the ordinary lease expiry returns their slot to the pool for someone else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from annotation.models import (
    Annotation,
    AnnotationStatus,
    Claim,
    ClaimStatus,
    Decision,
    DecisionSource,
    Draft,
    Item,
    ItemStatus,
    Label,
    ReviewReason,
    ReviewStatus,
    ReviewTask,
)
from annotation.projects.services import guideline_current
from annotation.values import InvalidValue, normalise_value, value_key
from core.errors import ServiceError

SEND_BACK_LEASE = dt.timedelta(days=7)


# Higher is reviewed first: a disagreement blocks a final label; an audit only double-checks one.
REASON_PRIORITY = {
    ReviewReason.DISAGREEMENT: 30,
    ReviewReason.UNSURE: 20,
    ReviewReason.NOISE: 10,
    ReviewReason.MODEL: 10,
    ReviewReason.RATING: 10,
    ReviewReason.AUDIT: 0,
}


TASK_CLOSED = "This review was already resolved by someone else; the queue has moved on."


COMMENT_REQUIRED = "Say what the annotators should look at again."


NOT_AN_ANNOTATION = "That is not one of this item's current annotations."


NOTHING_TO_SEND_BACK = "Only items in review can be sent back."


def audit_sampled(*, item_id: int, rate: float) -> bool:
    """Whether an agreed item goes to audit: a pure function of its id, so routing is reproducible."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"labelloop-audit:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def _priority(reasons: list[str]) -> int:
    return max((REASON_PRIORITY.get(ReviewReason(r), 0) for r in reasons), default=0)


def review_task_open(
    *,
    item: Item,
    reasons: list[str],
    noise_score: float | None = None,
    suggested_value: dict[str, Any] | None = None,
) -> ReviewTask:
    """Open a review task for the item, or add the reasons to the one already open (one per item)."""
    ordered = sorted(set(reasons), key=lambda r: -REASON_PRIORITY[ReviewReason(r)])
    try:
        with transaction.atomic():
            return ReviewTask.objects.create(
                project_id=item.project_id,
                item=item,
                reasons=ordered,
                priority=_priority(ordered),
                noise_score=noise_score,
                suggested_value=suggested_value,
            )
    except IntegrityError:
        pass  # an open task exists (the partial unique constraint): merge into it
    with transaction.atomic():
        task = ReviewTask.objects.select_for_update().get(item=item, status=ReviewStatus.OPEN)
        merged = sorted(set(task.reasons) | set(ordered), key=lambda r: -REASON_PRIORITY[ReviewReason(r)])
        updates: dict[str, Any] = {"reasons": merged, "priority": _priority(merged)}
        if noise_score is not None:
            updates.update(noise_score=noise_score, suggested_value=suggested_value)
        ReviewTask.objects.filter(pk=task.pk).update(**updates)
    for field, value in updates.items():
        setattr(task, field, value)
    return task


def item_route(*, item: Item) -> ReviewTask | Decision | None:
    """Send a just-annotated item to review or approve it on agreement. Runs in the submit transaction.

    Does nothing unless the item is ANNOTATED (all overlap slots submitted), so a repeat call is harmless.
    """
    project = item.project
    if not Item.objects.filter(pk=item.pk, status=ItemStatus.ANNOTATED).exists():
        return None
    annotations = list(
        Annotation.objects.filter(item_id=item.pk, status=AnnotationStatus.SUBMITTED).select_related(
            "guideline_version"
        )
    )
    reasons: list[str] = []
    if len({value_key(a.value) for a in annotations}) > 1:
        reasons.append(ReviewReason.DISAGREEMENT)
    if any(a.unsure for a in annotations):
        reasons.append(ReviewReason.UNSURE)
    if not reasons and (project.review_all or audit_sampled(item_id=item.pk, rate=project.audit_rate)):
        reasons.append(ReviewReason.AUDIT)
    if reasons:
        if not Item.objects.filter(pk=item.pk, status=ItemStatus.ANNOTATED).update(status=ItemStatus.IN_REVIEW):
            return None
        return review_task_open(item=item, reasons=reasons)
    if not Item.objects.filter(pk=item.pk, status=ItemStatus.ANNOTATED).update(status=ItemStatus.APPROVED):
        return None
    versions = [a.guideline_version for a in annotations if a.guideline_version is not None]
    return Decision.objects.create(
        item_id=item.pk,
        value=annotations[0].value,
        source=DecisionSource.AGREEMENT,
        reason=f"All {len(annotations)} annotators agreed.",
        guideline_version=max(versions, key=lambda v: v.version) if versions else None,
    )


def _close_task(
    *, task: ReviewTask, reviewer: AbstractBaseUser, status: str, now: dt.datetime, comment: str = ""
) -> None:
    """Close an open task; raise TASK_CLOSED if another reviewer (or an undo) closed it first."""
    won = ReviewTask.objects.filter(pk=task.pk, status=ReviewStatus.OPEN).update(
        status=status, resolved_by=reviewer, resolved_at=now, comment=comment
    )
    if not won:
        raise ServiceError(TASK_CLOSED)
    task.status, task.resolved_by, task.resolved_at, task.comment = status, reviewer, now, comment


def review_decide(
    *,
    reviewer: AbstractBaseUser,
    task: ReviewTask,
    value: dict[str, Any],
    reason: str = "",
    source: str = DecisionSource.REVIEWER,
    now: dt.datetime | None = None,
) -> Decision:
    """Record the reviewer's final value for the task's item as a new decision; the item is approved."""
    item = task.item
    project = item.project
    label_names = list(Label.objects.filter(project=project).values_list("name", flat=True))
    try:
        value = normalise_value(project.task_type, value, label_names)
    except InvalidValue as exc:
        raise ServiceError(str(exc), field=exc.field) from exc
    now = now or timezone.now()
    with transaction.atomic():
        _close_task(task=task, reviewer=reviewer, status=ReviewStatus.DONE, now=now)
        decision = Decision.objects.create(
            item=item,
            reviewer=reviewer,
            value=value,
            reason=reason.strip(),
            source=source,
            guideline_version=guideline_current(project=project),
            review_task=task,
        )
        Item.objects.filter(pk=item.pk).update(status=ItemStatus.APPROVED)
    item.status = ItemStatus.APPROVED
    return decision


def review_accept(
    *,
    reviewer: AbstractBaseUser,
    task: ReviewTask,
    annotation_id: int,
    reason: str = "",
    now: dt.datetime | None = None,
) -> Decision:
    """Make one annotator's label the final value."""
    annotation = Annotation.objects.filter(
        pk=annotation_id, item_id=task.item_id, status=AnnotationStatus.SUBMITTED
    ).first()
    if annotation is None:
        raise ServiceError(NOT_AN_ANNOTATION, field="annotation")
    return review_decide(reviewer=reviewer, task=task, value=annotation.value, reason=reason, now=now)


def review_send_back(
    *, reviewer: AbstractBaseUser, task: ReviewTask, comment: str, now: dt.datetime | None = None
) -> ReviewTask:
    """Re-open the item to its annotators for a new round (see the module docstring for the slots)."""
    comment = comment.strip()
    if not comment:
        raise ServiceError(COMMENT_REQUIRED, field="comment")
    now = now or timezone.now()
    item = task.item
    with transaction.atomic():
        _close_task(task=task, reviewer=reviewer, status=ReviewStatus.SENT_BACK, now=now, comment=comment)
        submitted = list(Annotation.objects.filter(item=item, status=AnnotationStatus.SUBMITTED))
        for annotation in submitted:
            Draft.objects.update_or_create(
                item=item,
                annotator_id=annotation.annotator_id,
                defaults={"value": annotation.value, "unsure": annotation.unsure, "note": annotation.note},
            )
        retracted = Annotation.objects.filter(
            pk__in=[a.pk for a in submitted], status=AnnotationStatus.SUBMITTED
        ).update(status=AnnotationStatus.RETRACTED, retracted_at=now)
        Claim.objects.filter(
            item=item, annotator_id__in=[a.annotator_id for a in submitted], status=ClaimStatus.SUBMITTED
        ).update(status=ClaimStatus.ACTIVE, claimed_at=now, lease_expires_at=now + SEND_BACK_LEASE, finished_at=None)
        Item.objects.filter(pk=item.pk).update(
            submitted_count=F("submitted_count") - retracted,
            status=Case(When(slots_taken=0, then=Value(ItemStatus.NEW)), default=Value(ItemStatus.IN_ANNOTATION)),
        )
    return task


def review_withdraw(*, item: Item, since: dt.datetime, now: dt.datetime) -> bool:
    """An annotator's undo while the item waits in review: close its open task.

    False when the submission was already reviewed (a decision since `since`, or a reviewer closed
    the task first); the caller then refuses the undo. Runs in the undo's transaction.
    """
    if Decision.objects.filter(item=item, created_at__gte=since).exists():
        return False
    return bool(
        ReviewTask.objects.filter(item=item, status=ReviewStatus.OPEN).update(
            status=ReviewStatus.WITHDRAWN, resolved_at=now
        )
    )


REVIEW_ACTIONS = ("accept", "fix", "send_back")


UNKNOWN_ACTION = "Choose accept, fix or send back."


def review_act(
    *,
    reviewer: AbstractBaseUser,
    task: ReviewTask,
    action: str,
    annotation_id: int | None = None,
    value: dict[str, Any] | None = None,
    reason: str = "",
    comment: str = "",
) -> Decision | None:
    """The review page's and the API's one entry: accept an annotation, fix the value, or send the item back.

    Returns the decision made (None when sent back).
    """
    if action == "accept":
        if annotation_id is None:
            raise ServiceError(NOT_AN_ANNOTATION, field="annotation")
        return review_accept(reviewer=reviewer, task=task, annotation_id=annotation_id, reason=reason)
    if action == "fix":
        return review_decide(reviewer=reviewer, task=task, value=value, reason=reason)  # type: ignore[arg-type]
    if action == "send_back":
        review_send_back(reviewer=reviewer, task=task, comment=comment)
        return None
    raise ServiceError(UNKNOWN_ACTION, field="action")
