"""Reads of review: the review queue and panel, blind checks, final values and an item's history."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import reduce
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from annotation.models import (
    Annotation,
    AnnotationStatus,
    Claim,
    Decision,
    DecisionSource,
    Item,
    ItemStatus,
    Label,
    NoiseFlag,
    Project,
    ReviewReason,
    ReviewStatus,
    ReviewTask,
    RoutingPolicy,
)
from annotation.permissions import ANNOTATE
from annotation.review import routing, routing_inputs
from annotation.review.keys import ReviewKeys, annotator_letter, review_keys
from annotation.tasktypes import value_display, value_key

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
    keys: ReviewKeys
    routing_note: str = ""  # adaptive projects: why routing sent the item to a person, and what their word does
    # what the task's suggested value is: "vote" (the weighted vote so far, adaptive routing opened the task),
    # "tie" (adaptive routing opened it on a tie: no label leads, none is suggested) or "suggested" (anything else)
    suggestion_kind: str = "suggested"
    # adaptive tasks: the reviewers whose word on the item is already in the weighted vote, (username, label), each's
    # last word (an audit overturned, an earlier flag's review): a tester saw only annotators A and B on a flag's
    # review while an earlier reviewer's label counted too
    earlier_reviews: tuple[tuple[str, str], ...] = ()

    @property
    def accept_rows(self) -> list[tuple[AnnotationRow, str, str]]:
        """Each annotation with its letter ("A", "B", …) and the key accepting it ("" when none)."""
        return [(a, annotator_letter(a.number), key) for a, key in zip(self.annotations, self.keys.accept, strict=True)]


@dataclass(frozen=True)
class QueueEntry:
    """One open task as the queue lists it: an excerpt of its item, why it is there, and, for an audit item the
    annotators agreed on, the agreed value that a bulk accept would make final."""

    task: ReviewTask
    excerpt: str
    reasons: list[tuple[str, str]]
    agreed_value: dict[str, Any] | None
    agreed_display: str

    @property
    def chips(self) -> list[tuple[str, str, str]]:
        """(value, short name, full label) of each reason."""
        return [(r, REASON_SHORT.get(ReviewReason(r), r), label) for r, label in self.reasons]

    @property
    def bulk_acceptable(self) -> bool:
        return self.agreed_value is not None


@dataclass(frozen=True)
class ReasonCount:
    value: str
    label: str
    count: int

    @property
    def short(self) -> str:
        return REASON_SHORT.get(ReviewReason(self.value), self.value)


@dataclass(frozen=True)
class ReviewProgress:
    """The reviewer's day: reviews they closed since local midnight, and what still waits for anyone."""

    reviewed_today: int
    open: int


@dataclass(frozen=True)
class ReviewQueue:
    total: int  # open tasks matching the filter
    entries: list[QueueEntry]
    panel: ReviewPanel | None
    reason: str
    reason_counts: list[ReasonCount]
    open_count: int  # open tasks whatever the filter
    page: int
    pages: int
    progress: ReviewProgress | None = None
    page_size: int = QUEUE_PAGE
    # the task asked for (?task=) when it is not open to this user: why, and no panel is armed in its place
    unavailable: str = ""

    @property
    def tasks(self) -> list[ReviewTask]:
        return [e.task for e in self.entries]

    @property
    def first_shown(self) -> int:
        return (self.page - 1) * self.page_size + 1 if self.entries else 0

    @property
    def last_shown(self) -> int:
        return (self.page - 1) * self.page_size + len(self.entries)

    @property
    def bulk_count(self) -> int:
        return sum(e.bulk_acceptable for e in self.entries)

    @property
    def reason_short(self) -> str:
        """The filter's name as its chip says it ("noise flag"); empty when unfiltered."""
        return REASON_SHORT.get(ReviewReason(self.reason), self.reason) if self.reason else ""


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


EXCERPT_CHARS = 90


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of an item's text on one line, cut at a word where it can be."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut) + "…"


# What the queue's chips and filters call each reason (the full label is their tooltip).
REASON_SHORT = {
    ReviewReason.DISAGREEMENT: "disagreement",
    ReviewReason.UNSURE: "unsure",
    ReviewReason.AUDIT: "audit",
    ReviewReason.DOUBT: "vote in doubt",
    ReviewReason.NOISE: "noise flag",
    ReviewReason.MODEL: "model disagrees",
    ReviewReason.RATING: "rated against label",
    ReviewReason.CORRECTION: "correction vs agreement",
}


def _reason_labels(reasons: Iterable[str]) -> list[tuple[str, str]]:
    return [(r, ReviewReason(r).label) for r in reasons if r in ReviewReason.values]


def agreed_audit_value(*, task: ReviewTask, annotations: list[AnnotationRow]) -> dict[str, Any] | None:
    """The value a bulk accept would make final: only for a task that is an audit sample and nothing else,
    whose current annotations all agree. Never for a disagreement, an unsure answer or a model's flag."""
    if set(task.reasons) != {ReviewReason.AUDIT} or not annotations:
        return None
    if len({value_key(a.value) for a in annotations}) != 1:
        return None
    return annotations[0].value


def review_progress(*, project: Project, user: User, open_count: int, now: dt.datetime | None = None) -> ReviewProgress:
    """How many of this project's reviews `user` closed today (decided or sent back). One query."""
    midnight = timezone.localtime(now or timezone.now()).replace(hour=0, minute=0, second=0, microsecond=0)
    done = ReviewTask.objects.filter(project=project, resolved_by=user, resolved_at__gte=midnight).exclude(
        status=ReviewStatus.OPEN
    )
    return ReviewProgress(reviewed_today=done.count(), open=open_count)


def review_queue(
    *,
    project: Project,
    user: User,
    role: str,
    task_id: int | None = None,
    reason: str = "",
    page: int = 1,
    limit: int = QUEUE_PAGE,
) -> ReviewQueue:
    """One page of open tasks (of one reason when `reason` is given), the count per reason, the reviewer's
    progress, and the panel for `task_id` (or the page's first task when it is not open). A fixed number of
    queries whatever the queue's length."""
    reason = reason if reason in ReviewReason.values else ""
    everything = open_review_tasks(project=project, user=user, role=role)
    per_reason: dict[str, int] = {}
    listed = list(everything.values_list("reasons", flat=True))
    for reasons in listed:
        for r in set(reasons):
            per_reason[r] = per_reason.get(r, 0) + 1
    open_count = len(listed)
    total = per_reason.get(reason, 0) if reason else open_count
    pages = max(1, -(-total // limit))
    page = min(max(page, 1), pages)
    tasks_qs = review_tasks(project=project, user=user, role=role, status=ReviewStatus.OPEN, reason=reason or None)
    rows = review_task_rows_of(list(tasks_qs[(page - 1) * limit : page * limit]))
    entries = [
        QueueEntry(
            task=row.task,
            excerpt=excerpt(row.item.text),
            reasons=_reason_labels(row.task.reasons),
            agreed_value=(agreed := agreed_audit_value(task=row.task, annotations=row.annotations)),
            agreed_display=value_display(agreed, row.item.text) if agreed is not None else "",
        )
        for row in rows
    ]
    tasks = [row.task for row in rows]
    current_row = next((row for row in rows if row.task.pk == task_id), None)
    current = current_row.task if current_row else None
    unavailable = ""
    if current is None and task_id is not None:
        current = everything.filter(pk=task_id).first()
        if current is None:  # a link to a task decided since: say so rather than arm another item's keys
            unavailable = task_unavailable(project=project, task_id=task_id, user=user)
    if current is None and rows and not unavailable:
        current_row = rows[0]
        current = current_row.task
    panel = None
    if current is not None:
        later = [t.pk for t in tasks[tasks.index(current) + 1 :]] if current in tasks else []
        others = [t.pk for t in tasks if t.pk != current.pk]
        panel = review_panel(
            task=current,
            project=project,
            next_task_id=next(iter(later or others), None),
            annotations=current_row.annotations if current_row else None,
            viewer=user,
        )
    return ReviewQueue(
        total=total,
        entries=entries,
        panel=panel,
        reason=reason,
        # the filter in use keeps its chip at 0, so the page still says which filter emptied the list
        reason_counts=[
            ReasonCount(r.value, r.label, per_reason.get(r.value, 0))
            for r in ReviewReason
            if per_reason.get(r) or r.value == reason
        ],
        open_count=open_count,
        page=page,
        pages=pages,
        progress=review_progress(project=project, user=user, open_count=open_count),
        page_size=limit,
        unavailable=unavailable,
    )


TASK_NOT_OPEN = "Review task {task} is already closed ({how}): pick another from the list."


TASK_NOT_YOURS = "Review task {task} is not open to you: you could still annotate its item (reviews stay blind)."


TASK_UNKNOWN = "There is no review task {task} in this project."


def closed_how(*, task_id: int, user: User) -> str:
    """"decided by you", "sent back by ana", "withdrawn: …": what closed a task, for the people who find it closed."""
    row = ReviewTask.objects.filter(pk=task_id).values_list("status", "resolved_by_id", "resolved_by__username").first()
    if row is None:
        return "removed"
    status, by_id, by_name = row
    closed: dict[str, str] = {ReviewStatus.DONE.value: "decided", ReviewStatus.SENT_BACK.value: "sent back"}
    how = closed.get(status, "withdrawn: an annotator took their label back")
    if by_id is None:
        return how
    return f"{how} by {'you' if by_id == user.pk else by_name}"


def task_unavailable(*, project: Project, task_id: int, user: User) -> str:
    """Why the task a link asks for cannot be shown: closed (how and by whom), blind to this user, or unknown."""
    status = ReviewTask.objects.filter(project=project, pk=task_id).values_list("status", flat=True).first()
    if status is None:
        return TASK_UNKNOWN.format(task=task_id)
    if status == ReviewStatus.OPEN:
        return TASK_NOT_YOURS.format(task=task_id)
    return TASK_NOT_OPEN.format(task=task_id, how=closed_how(task_id=task_id, user=user))


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


@dataclass(frozen=True)
class SendBack:
    """Why an item came back to its annotators: the reviewer's note, who sent it back and when."""

    comment: str
    reviewer: str
    at: dt.datetime


def send_back_of(*, item: Item) -> SendBack | None:
    """The item's latest review when it sent the item back (None otherwise), for the annotators redoing it.
    One query."""
    latest = (
        ReviewTask.objects.filter(item=item)
        .select_related("resolved_by")
        .order_by("-created_at", "-id")
        .only("status", "comment", "resolved_at", "resolved_by__username")
        .first()
    )
    if latest is None or latest.status != ReviewStatus.SENT_BACK or latest.resolved_at is None:
        return None
    reviewer = latest.resolved_by.get_username() if latest.resolved_by is not None else ""
    return SendBack(comment=latest.comment, reviewer=reviewer, at=latest.resolved_at)


def send_back_comment(*, item: Item) -> str:
    """The reviewer's note when the item's latest review sent it back (the annotate page's). One query."""
    sent_back = send_back_of(item=item)
    return sent_back.comment if sent_back is not None else ""


# the review reasons routing itself gives (the rest come from noise scans, models and ratings)
ROUTING_REASONS = {ReviewReason.DISAGREEMENT, ReviewReason.UNSURE, ReviewReason.DOUBT, ReviewReason.AUDIT}


ADAPTIVE_IN_DOUBT = (
    "Adaptive routing sent it here: the weighted vote of its judgements (each weighed by its annotator's measured "
    "accuracy, and the model's where a trained run has one) was under {confident} % sure, whether or not the "
    "annotators agreed, with no further annotator available within the budget ({budget:g} judgements per item on "
    "average)."
)


ADAPTIVE_AUDIT = (
    "An audit sample: the weighted vote was sure enough to stand, and the budget ({budget:g} judgements per item on "
    "average) had one to spare to check it."
)


ADAPTIVE_NOTE = (
    "An unsure annotator wrote a note (below, under their answer): a note is answered by a reviewer, whatever the "
    "weighted vote says."
)


# Said wherever an unsure annotator's note is on the item (review_decide leaves the asker's label out of the vote).
NOTE_IN_VOTE = " Your answer to the note takes the asker's place in the vote: their label was a question."


ADAPTIVE_OVERRULED = (
    "The project's owner overruled this item's label once (see its history), so it has left the weighted vote: your "
    "label is final here."
)


ADAPTIVE_REVIEW_ALL = "Every annotated item comes to review (review all is on), even where the weighted vote is sure."


ADAPTIVE_WEIGHED = (
    "Your label joins the vote: the final label is the weighted vote of every judgement, so one review outweighs "
    "agreeing annotators only when their measured accuracy says it should (both decisions are kept)."
)
ADAPTIVE_WEIGHED_NOISE = (
    " A model votes too where it learnt something from the texts (a trained run's, else the scan's, which doubted this "
    "label), at its measured accuracy: a review that agrees with it can outweigh agreeing annotators."
)


def item_overruled(*, item_id: int) -> bool:
    """Whether the project's owner ever overruled the item's final label: it then leaves the weighted vote for good
    (a later review is the reviewer's word; review.services.item_overrule). One query."""
    return Decision.objects.filter(item_id=item_id, source=DecisionSource.OWNER).exists()


def routing_record(project: Project) -> dict[str, Any]:
    """The routing a review task records when it is opened (`ReviewTask.routing`)."""
    return {"policy": project.routing_in_force, "budget": project.routing_budget, "review_all": project.review_all}


def task_routing(*, task: ReviewTask, project: Project) -> dict[str, Any]:
    """The routing a task is explained and decided by: the one it was opened under, or (a task opened before that
    was recorded) the project's current one."""
    return task.routing or routing_record(project)


def task_routes_adaptively(*, task: ReviewTask, project: Project) -> bool:
    return task_routing(task=task, project=project)["policy"] == RoutingPolicy.ADAPTIVE


def suggests_the_vote(*, task: ReviewTask, project: Project) -> bool:
    """Whether the task's suggested value is the weighted vote so far (adaptive routing opened it), not a suggestion
    of a scan or a model: the panel and the history say it so."""
    return task_routes_adaptively(task=task, project=project) and bool(set(task.reasons) & ROUTING_REASONS)


def routing_note(
    *,
    project: Project,
    reasons: Iterable[str],
    routed: Mapping[str, Any] | None = None,
    annotated: bool = True,
    overruled: bool = False,
    noted: bool = False,
) -> str:
    """Why adaptive routing put an item with these review reasons in front of a reviewer, and what the reviewer's
    word does; "" under fixed routing, where the reasons say it all and the reviewer's word is final. A review
    routing did not open (noise flags, models, ratings) is weighed the same way: only what its word does is said.

    `routed` is the routing the task was opened under (`task_routing`); left out, the project's current one.
    `annotated`: whether the item has annotations; without any (labels imported as final) the reviewer's word is
    final, as review_decide makes it, and there is nothing to say. `overruled`: the owner overruled the item's label
    once, so the reviewer's word is final there (`item_overruled`). An unsure annotator's note that sent an item the
    vote would have accepted is recorded in `routed["why"]`; `noted`: such a note is on the item, whatever sent it
    (the reviewer's answer then takes the asker's place in the vote)."""
    routed = routed or routing_record(project)
    if routed["policy"] != RoutingPolicy.ADAPTIVE or not annotated:
        return ""
    if overruled:
        return ADAPTIVE_OVERRULED
    reasons = set(reasons)
    budget = routed["budget"]
    if routed.get("why") == "note":
        why = ADAPTIVE_NOTE
    elif reasons & (ROUTING_REASONS - {ReviewReason.AUDIT}):
        why = ADAPTIVE_IN_DOUBT.format(confident=round(routing.CONFIDENT * 100), budget=budget)
    elif ReviewReason.AUDIT in reasons:
        why = ADAPTIVE_REVIEW_ALL if routed.get("review_all") else ADAPTIVE_AUDIT.format(budget=budget)
    else:
        why = ""
    weighed = ADAPTIVE_WEIGHED + (ADAPTIVE_WEIGHED_NOISE if ReviewReason.NOISE in reasons else "")
    weighed += NOTE_IN_VOTE if noted else ""
    return f"{why} {weighed}" if why else weighed


def review_task_get(*, project: Project, task_id: int) -> ReviewTask | None:
    return ReviewTask.objects.select_related("item").filter(project=project, pk=task_id).first()


def asks_the_reviewer(annotation: Annotation | AnnotationRow) -> bool:
    """An unsure annotation with a note: a question for the reviewer, who answers it whatever the vote says, and whose
    answer takes the asker's place in the weighted vote (review_decide)."""
    return annotation.unsure and bool(annotation.note.strip())


def review_panel(
    *,
    task: ReviewTask,
    project: Project,
    next_task_id: int | None = None,
    annotations: list[AnnotationRow] | None = None,
    viewer: User | None = None,
) -> ReviewPanel:
    """Everything the reviewer decides from. Two queries (three without `annotations` already read)."""
    item = task.item
    item.project = project
    if annotations is None:
        rows = (
            Annotation.objects.filter(item=item, status=AnnotationStatus.SUBMITTED)
            .select_related("annotator", "guideline_version")
            .order_by("created_at", "id")
        )
        annotations = _annotation_rows(rows)
    decisions = list(Decision.objects.filter(item=item).select_related("reviewer").order_by("created_at", "id"))
    final = decisions[-1] if decisions else None  # current_decision's, from the one read
    labels = list(Label.objects.filter(project=project))
    routed = task_routing(task=task, project=project)
    overruled = any(d.source == DecisionSource.OWNER for d in decisions)  # item_overruled's, from the one read
    earlier: tuple[tuple[str, str], ...] = ()
    if routed["policy"] == RoutingPolicy.ADAPTIVE and not overruled:
        reviewed = [
            (d.item_id, d.reviewer.get_username(), d.value)
            for d in decisions
            if d.source == DecisionSource.REVIEWER and d.reviewer is not None
        ]
        said = routing_inputs.reviewer_votes_of(reviewed).get(item.pk, {})
        earlier = tuple((who, vote.label) for who, vote in said.items())
    mine = () if viewer is None else (viewer.get_username(),)
    others = [a for a in annotations if a.annotator not in mine]

    suggestion_kind = "suggested"
    if suggests_the_vote(task=task, project=project):
        # a task opened before routing was recorded (task.routing empty) may have had no suggestion for other reasons
        suggestion_kind = "vote" if task.suggested_value else "tie" if task.routing else "suggested"
    return ReviewPanel(
        task=task,
        item=item,
        reasons=_reason_labels(task.reasons),
        annotations=annotations,
        labels=labels,
        current_final=final,
        current_final_display=value_display(final.value, item.text) if final else "",
        suggested_display=value_display(task.suggested_value, item.text),
        next_task_id=next_task_id,
        keys=review_keys(annotations=len(annotations), hotkeys=[label.hotkey for label in labels]),
        routing_note=routing_note(
            project=project,
            reasons=task.reasons,
            routed=routed,
            # the viewer's own annotation is replaced by their review, and a noted unsure one by the answer, so neither
            # is another judgement to weigh against; earlier reviewers' words are (review_decide weighs them)
            annotated=bool(others)
            and (any(not asks_the_reviewer(a) for a in others) or any(who not in mine for who, _ in earlier)),
            overruled=overruled,
            noted=any(asks_the_reviewer(a) for a in others),
        ),
        suggestion_kind=suggestion_kind,
        earlier_reviews=earlier,
    )


AGREEMENT_MIN = 2


def agreement_backed(*, finals: dict[int, dict[str, Any]]) -> set[int]:
    """Items whose final value is what at least two annotators agreed on (every current annotation the same):
    a single rater's correction must not override it unreviewed. One query."""
    values: dict[int, list[str]] = {}
    rows = Annotation.objects.filter(item_id__in=list(finals), status=AnnotationStatus.SUBMITTED)
    for item_id, value in rows.values_list("item_id", "value"):
        values.setdefault(item_id, []).append(value_key(value))
    return {
        item_id
        for item_id, keys in values.items()
        if len(keys) >= AGREEMENT_MIN and set(keys) == {value_key(finals[item_id])}
    }


def current_decision(*, item: Item) -> Decision | None:
    """The item's final value now: its latest decision (decisions are append-only)."""
    return Decision.objects.filter(item=item).select_related("reviewer").order_by("-created_at", "-id").first()


def latest_decisions(*, project: Project) -> QuerySet[Decision]:
    """One decision per approved item, the latest, as a single anti-join (streams for big projects)."""
    newer = Decision.objects.filter(item_id=OuterRef("item_id")).filter(
        Q(created_at__gt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), id__gt=OuterRef("id"))
    )
    return Decision.objects.filter(item__project=project, item__status=ItemStatus.APPROVED).filter(~Exists(newer))


def reviewers_words(*, task_ids: Iterable[int]) -> dict[int, tuple[str, Any]]:
    """{review task id: (its reviewer's username, the value they gave)}: the reviewer's own decision on each task,
    which review_decide keeps beside a weighted vote that outvoted it (their last word where they decided twice).
    Tasks without one are left out. One query."""
    said: dict[int, tuple[str, Any]] = {}
    own = Decision.objects.filter(review_task_id__in=list(task_ids), source=DecisionSource.REVIEWER)
    for task_id, who, value in own.order_by("created_at", "id").values_list(
        "review_task_id", "reviewer__username", "value"
    ):
        said[task_id] = (who, value)
    return said


def outvoted_value(*, decision: Decision) -> dict[str, Any] | None:
    """What the reviewer said, when their review ended in a weighted decision keeping another value (review_decide
    keeps both); None for any other decision. One query, only then."""
    if decision.source != DecisionSource.WEIGHTED or decision.review_task_id is None:
        return None
    said = reviewers_words(task_ids=[decision.review_task_id]).get(decision.review_task_id)
    return said[1] if said else None


OUTVOTED_SHOWN = 20


def outvoted_reviews(*, project: Project, limit: int = OUTVOTED_SHOWN) -> tuple[int, list[dict[str, Any]]]:
    """(how many, the latest `limit`) approved items whose final label is a weighted vote that kept another label
    than their reviewer's (review_decide keeps both): where the owner may want to overrule (item_overrule). Each
    row: item id, text, the final value and its reason, the reviewer and what they said. Three queries."""
    finals = latest_decisions(project=project).filter(source=DecisionSource.WEIGHTED, review_task__isnull=False)
    count = finals.count()
    if not count:
        return 0, []
    rows = list(
        finals.order_by("-created_at", "-id").values("item_id", "item__text", "value", "reason", "review_task_id")[
            :limit
        ]
    )
    said = reviewers_words(task_ids=[row["review_task_id"] for row in rows])
    out = []
    for row in rows:
        reviewer, value = said.get(row["review_task_id"], ("", None))
        out.append(
            {
                "item_id": row["item_id"],
                "text": row["item__text"],
                "final": value_display(row["value"]),
                "reason": row["reason"],
                "reviewer": reviewer,
                "said": "" if value is None else value_display(value),
            }
        )
    return count, out


def imported_labels(*, project: Project) -> dict[int, str]:
    """{item id: the single label a file gave it as final} (its import decision, whatever came after). One query."""
    rows = Decision.objects.filter(item__project=project, source=DecisionSource.IMPORT).values_list("item_id", "value")
    return {
        item_id: value["label"]
        for item_id, value in rows.iterator(chunk_size=5000)
        if isinstance(value, dict) and isinstance(value.get("label"), str)
    }


def audit_labels(*, project: Project) -> dict[int, str]:
    """{item id: the label a reviewer gave on the item's latest audit}: decided review tasks that were an audit
    sample and nothing else, with the reviewer's own decision (a weighted vote that followed it under adaptive
    routing does not hide what the reviewer said). Single-label values only. One query."""
    rows = (
        Decision.objects.filter(
            item__project=project,
            source=DecisionSource.REVIEWER,
            review_task__status=ReviewStatus.DONE,
            review_task__reasons__isnull=False,
        )
        .order_by("created_at", "id")
        .values_list("item_id", "value", "review_task__reasons")
    )
    return {
        item_id: value["label"]
        for item_id, value, reasons in rows.iterator(chunk_size=5000)
        if set(reasons or ()) == {ReviewReason.AUDIT} and isinstance(value, dict) and "label" in value
    }


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
                                   value_display(a.value, item.text), version))
        if a.status == AnnotationStatus.RETRACTED and a.retracted_at:
            events.append(HistoryEvent(a.retracted_at, "retracted", a.annotator.get_username(),
                                       "Annotation retracted (undo or sent back)",
                                       value_display(a.value, item.text), version))
    for d in Decision.objects.filter(item=item).select_related("reviewer", "guideline_version"):
        who = d.reviewer.get_username() if d.reviewer else d.get_source_display()
        summary = f"Decision ({d.get_source_display()})" + (f" — {d.reason}" if d.reason else "")
        events.append(HistoryEvent(d.created_at, "decision", who, summary, value_display(d.value, item.text),
                                   d.guideline_version.version if d.guideline_version else None))
    for t in ReviewTask.objects.filter(item=item).select_related("resolved_by"):
        reasons = ", ".join(ReviewReason(r).label for r in t.reasons)
        # the task's suggestion is said in words, as its panel says it: in the value column it read as the label the
        # item had then
        suggested = ""
        if t.suggested_value:
            said = "weighted vote so far" if suggests_the_vote(task=t, project=item.project) else "suggested"
            suggested = f"; {said}: {value_display(t.suggested_value, item.text)}"
        events.append(HistoryEvent(t.created_at, "review", "", f"Sent to review: {reasons}{suggested}"))
        if t.resolved_at:
            closed = f"Review closed: {t.get_status_display()}" + (f" — {t.comment}" if t.comment else "")
            who = t.resolved_by.get_username() if t.resolved_by else ""
            events.append(HistoryEvent(t.resolved_at, "review_closed", who, closed))
    for f in NoiseFlag.objects.filter(item=item).select_related("scan"):
        events.append(HistoryEvent(f.created_at, "noise", f"noise scan {f.scan_id}",
                                   f"Flagged by a noise scan ({100 * f.score:.1f} % chance its label is right); "
                                   f"suggested {value_display(f.suggested, item.text)}",
                                   value_display(f.given, item.text)))
    return sorted(events, key=lambda e: e.at)
