"""Reads of review: the review queue and panel, blind checks, final values and an item's history."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from functools import reduce
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet

from annotation.models import (
    Annotation,
    AnnotationStatus,
    Claim,
    Decision,
    Item,
    ItemStatus,
    Label,
    NoiseFlag,
    Project,
    ReviewReason,
    ReviewStatus,
    ReviewTask,
)
from annotation.permissions import ANNOTATE
from annotation.tasktypes import value_display

QUEUE_PAGE = 50


STILL_ANNOTATABLE = "You can still annotate this item yourself; its history opens once you have."


@dataclass(frozen=True)
class AnnotationRow:
    """One annotator's label as the reviewer sees it: who, what, under which guideline version."""

    number: int
    id: int
    annotator: str
    value: dict[str, Any]
    display: str
    unsure: bool
    note: str
    guideline_version: int | None
    created_at: dt.datetime


@dataclass(frozen=True)
class ReviewPanel:
    task: ReviewTask
    item: Item
    reasons: list[tuple[str, str]]
    annotations: list[AnnotationRow]
    labels: list[Label]
    current_final: Decision | None
    current_final_display: str
    suggested_display: str
    next_task_id: int | None


@dataclass(frozen=True)
class ReviewQueue:
    total: int
    tasks: list[ReviewTask]
    panel: ReviewPanel | None


def still_annotatable(*, user: User) -> Q:
    """Items the user could still claim: open, and never claimed by them (used to keep reviews blind)."""
    return Q(is_open=True) & Q(~Exists(Claim.objects.filter(item=OuterRef("pk"), annotator=user)))


def blind_to(*, user: User, role: str, item: Item) -> bool:
    """Whether showing this item's annotations to `user` would break the blind promise."""
    return role in ANNOTATE and Item.objects.filter(pk=item.pk).filter(still_annotatable(user=user)).exists()


def item_history_for(*, user: User, role: str, item: Item) -> list[HistoryEvent]:
    """The item's history for the page and the API alike, refused (403) while `user` could still annotate it."""
    if blind_to(user=user, role=role, item=item):
        raise PermissionDenied(STILL_ANNOTATABLE)
    return item_history(item=item)


def open_review_tasks(*, project: Project, user: User, role: str) -> QuerySet[ReviewTask]:
    return review_tasks(project=project, user=user, role=role, status=ReviewStatus.OPEN)


def review_queue(
    *, project: Project, user: User, role: str, task_id: int | None = None, limit: int = QUEUE_PAGE
) -> ReviewQueue:
    """The first `limit` open tasks and the panel for `task_id` (or the first task when it is not open)."""
    tasks_qs = open_review_tasks(project=project, user=user, role=role)
    tasks = list(tasks_qs[:limit])
    total = len(tasks) if len(tasks) < limit else tasks_qs.count()
    current = next((t for t in tasks if t.pk == task_id), None)
    if current is None and task_id is not None:
        current = tasks_qs.filter(pk=task_id).first()
    if current is None and tasks:
        current = tasks[0]
    if current is None:
        return ReviewQueue(total=total, tasks=tasks, panel=None)
    later = [t.pk for t in tasks[tasks.index(current) + 1 :]] if current in tasks else []
    others = [t.pk for t in tasks if t.pk != current.pk]
    panel = review_panel(task=current, project=project, next_task_id=next(iter(later or others), None))
    return ReviewQueue(total=total, tasks=tasks, panel=panel)


@dataclass(frozen=True)
class ReviewTaskRow:
    task: ReviewTask
    item: Item
    annotations: list[AnnotationRow]


def review_task_rows(
    *, project: Project, user: User, role: str, limit: int = QUEUE_PAGE
) -> list[ReviewTaskRow]:
    """The first open tasks with every current annotation of their items. Two queries."""
    return review_task_rows_of(list(open_review_tasks(project=project, user=user, role=role)[:limit]))


def review_tasks(
    *, project: Project, user: User, role: str, status: str | None = None, reason: str | None = None
) -> QuerySet[ReviewTask]:
    """The project's review tasks, most urgent first, those of items `user` could still annotate left out (blind)."""
    tasks = ReviewTask.objects.filter(project=project)
    if status is not None:
        tasks = tasks.filter(status=status)
    if reason is not None:  # `reasons` is a JSON list: one lookup per position works on every backend
        tasks = tasks.filter(reduce(operator.or_, (Q(**{f"reasons__{i}": reason}) for i in range(len(ReviewReason)))))
    if role in ANNOTATE:
        claimed = Claim.objects.filter(item=OuterRef("item_id"), annotator=user)
        tasks = tasks.exclude(Q(item__is_open=True) & ~Exists(claimed))
    return tasks.select_related("item").order_by("-priority", "created_at", "id")


def review_task_rows_of(tasks: list[ReviewTask]) -> list[ReviewTaskRow]:
    """These tasks with every current annotation of their items: one query."""
    by_item: dict[int, list[Annotation]] = {}
    rows = (
        Annotation.objects.filter(item_id__in=[t.item_id for t in tasks], status=AnnotationStatus.SUBMITTED)
        .select_related("annotator", "guideline_version")
        .order_by("created_at", "id")
    )
    for a in rows:
        by_item.setdefault(a.item_id, []).append(a)
    return [ReviewTaskRow(task=t, item=t.item, annotations=_annotation_rows(by_item.get(t.item_id, []))) for t in tasks]


def _annotation_rows(annotations: Iterable[Annotation]) -> list[AnnotationRow]:
    return [
        AnnotationRow(
            number=n,
            id=a.pk,
            annotator=a.annotator.get_username(),
            value=a.value,
            display=value_display(a.value),
            unsure=a.unsure,
            note=a.note,
            guideline_version=a.guideline_version.version if a.guideline_version else None,
            created_at=a.created_at,
        )
        for n, a in enumerate(annotations, start=1)
    ]


def send_back_comment(*, item: Item) -> str:
    """The reviewer's note when the item's latest review sent it back, for the annotators redoing it. One query."""
    latest = ReviewTask.objects.filter(item=item).order_by("-created_at", "-id").only("status", "comment").first()
    return latest.comment if latest is not None and latest.status == ReviewStatus.SENT_BACK else ""


def review_task_get(*, project: Project, task_id: int) -> ReviewTask | None:
    return ReviewTask.objects.select_related("item").filter(project=project, pk=task_id).first()


def review_panel(*, task: ReviewTask, project: Project, next_task_id: int | None = None) -> ReviewPanel:
    """Everything the reviewer decides from. Four queries."""
    item = task.item
    item.project = project
    rows = (
        Annotation.objects.filter(item=item, status=AnnotationStatus.SUBMITTED)
        .select_related("annotator", "guideline_version")
        .order_by("created_at", "id")
    )
    annotations = _annotation_rows(rows)
    final = current_decision(item=item)
    return ReviewPanel(
        task=task,
        item=item,
        reasons=[(r, ReviewReason(r).label) for r in task.reasons],
        annotations=annotations,
        labels=list(Label.objects.filter(project=project)),
        current_final=final,
        current_final_display=value_display(final.value) if final else "",
        suggested_display=value_display(task.suggested_value),
        next_task_id=next_task_id,
    )


def current_decision(*, item: Item) -> Decision | None:
    """The item's final value now: its latest decision (decisions are append-only)."""
    return Decision.objects.filter(item=item).select_related("reviewer").order_by("-created_at", "-id").first()


def latest_decisions(*, project: Project) -> QuerySet[Decision]:
    """One decision per approved item, the latest, as a single anti-join (streams for big projects)."""
    newer = Decision.objects.filter(item_id=OuterRef("item_id")).filter(
        Q(created_at__gt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), id__gt=OuterRef("id"))
    )
    return Decision.objects.filter(item__project=project, item__status=ItemStatus.APPROVED).filter(~Exists(newer))


def final_values(*, project: Project) -> dict[int, dict[str, Any]]:
    """{item id: final value} for every approved item."""
    return dict(latest_decisions(project=project).values_list("item_id", "value"))


@dataclass(frozen=True)
class HistoryEvent:
    at: dt.datetime
    kind: str
    who: str
    summary: str
    value: str = ""
    guideline_version: int | None = None


def item_history(*, item: Item) -> list[HistoryEvent]:
    """Annotations (also retracted ones), decisions, review tasks and noise flags in time order. Four queries."""
    events: list[HistoryEvent] = []
    for a in Annotation.objects.filter(item=item).select_related("annotator", "guideline_version"):
        version = a.guideline_version.version if a.guideline_version else None
        summary = "Annotated (unsure)" if a.unsure else "Annotated"
        if a.note:
            summary += f" — note: {a.note}"
        events.append(HistoryEvent(a.created_at, "annotation", a.annotator.get_username(), summary,
                                   value_display(a.value), version))
        if a.status == AnnotationStatus.RETRACTED and a.retracted_at:
            events.append(HistoryEvent(a.retracted_at, "retracted", a.annotator.get_username(),
                                       "Annotation retracted (undo or sent back)", value_display(a.value), version))
    for d in Decision.objects.filter(item=item).select_related("reviewer", "guideline_version"):
        who = d.reviewer.get_username() if d.reviewer else d.get_source_display()
        summary = f"Decision ({d.get_source_display()})" + (f" — {d.reason}" if d.reason else "")
        events.append(HistoryEvent(d.created_at, "decision", who, summary, value_display(d.value),
                                   d.guideline_version.version if d.guideline_version else None))
    for t in ReviewTask.objects.filter(item=item).select_related("resolved_by"):
        reasons = ", ".join(ReviewReason(r).label for r in t.reasons)
        events.append(HistoryEvent(t.created_at, "review", "", f"Sent to review: {reasons}",
                                   value_display(t.suggested_value)))
        if t.resolved_at:
            closed = f"Review closed: {t.get_status_display()}" + (f" — {t.comment}" if t.comment else "")
            who = t.resolved_by.get_username() if t.resolved_by else ""
            events.append(HistoryEvent(t.resolved_at, "review_closed", who, closed))
    for f in NoiseFlag.objects.filter(item=item).select_related("scan"):
        events.append(HistoryEvent(f.created_at, "noise", f"noise scan {f.scan_id}",
                                   f"Flagged by a noise scan (label quality {f.score:.2f}); suggested "
                                   f"{value_display(f.suggested)}", value_display(f.given)))
    return sorted(events, key=lambda e: e.at)
