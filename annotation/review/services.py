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
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.models import (
    Annotation,
    AnnotationStatus,
    Claim,
    ClaimStatus,
    Decision,
    DecisionSource,
    Draft,
    GuidelineVersion,
    Item,
    ItemSplit,
    ItemStatus,
    Label,
    Project,
    ReviewReason,
    ReviewStatus,
    ReviewTask,
    Split,
)
from annotation.projects.services import guideline_current
from annotation.review import routing, routing_inputs
from annotation.review.selectors import (
    agreed_audit_value,
    agreement_backed,
    asks_the_reviewer,
    closed_how,
    current_decision,
    item_overruled,
    review_task_rows_of,
    review_tasks,
    routing_record,
    task_routes_adaptively,
)
from annotation.tasktypes import InvalidValue, value_display, value_key
from annotation.webhooks import events as webhook_events
from core.errors import ServiceError, StateConflict

SEND_BACK_LEASE = dt.timedelta(days=7)


# Higher is reviewed first: a disagreement blocks a final label; an audit only double-checks one.


REASON_PRIORITY = {
    ReviewReason.DISAGREEMENT: 30,
    ReviewReason.DOUBT: 25,
    ReviewReason.UNSURE: 20,
    ReviewReason.NOISE: 10,
    ReviewReason.MODEL: 10,
    ReviewReason.RATING: 10,
    ReviewReason.CORRECTION: 10,
    ReviewReason.AUDIT: 0,
}


TASK_CLOSED = "This review task is already closed ({how}); the queue has moved on."


class TaskClosed(StateConflict):
    """The review task was decided, sent back or withdrawn before this request could close it (HTTP 409)."""


COMMENT_REQUIRED = "Say what the annotators should look at again."


NOT_AN_ANNOTATION = "That is not one of this item's current annotations."


ACCEPT_WHICH = "Say which annotation to accept: one of this item's current annotations."


NOTHING_TO_ACCEPT = (
    "This item has no annotations to accept: its label came from an import (or nobody annotated it). To keep its "
    "current label, fix it with that label."
)


NOTHING_TO_SEND_BACK = "Only items in review can be sent back."


ONE_PROPOSAL_PER_ITEM = "Each item may appear once in one call; apply a second value for it in a later call."


# The test split is sacred (docs/rounds.md): a model, or a rater judging a model's output, never changes a test
# item's label, directly or through a review it opens; otherwise later test figures drift toward the model.
# People reviewing their own disagreements on a test item still decide it (those reasons are not listed here).
MODEL_DRIVEN_SOURCES = frozenset({DecisionSource.MODEL_CORRECTED, DecisionSource.MODEL_RATED})


MODEL_DRIVEN_REASONS = frozenset(
    {ReviewReason.NOISE, ReviewReason.MODEL, ReviewReason.RATING, ReviewReason.CORRECTION}
)


TEST_SPLIT_HELD = (
    "Item {item} is in the test split: a model or a rating of a model's output never changes a test label, "
    "so the test figures stay an honest measure of the model."
)


TEST_LABEL_MODEL_REVIEW = (
    "This item is in the test split and was sent to review by a model or a rating ({reasons}): its label stays "
    "{final}. Confirm that label to close the review; only a disagreement between annotators can change a test label."
)


# Items written per batch by `proposals_apply`: a few queries per batch, memory bounded by the batch.


PROPOSAL_BATCH = 1000


def _priority(reasons: list[str]) -> int:
    return max((REASON_PRIORITY.get(ReviewReason(r), 0) for r in reasons), default=0)


def review_task_open(
    *,
    item: Item,
    reasons: list[str],
    noise_score: float | None = None,
    suggested_value: dict[str, Any] | None = None,
    why: str = "",
) -> ReviewTask:
    """Open a review task for the item, or add the reasons to the one already open (one per item). `why`: what
    made adaptive routing open it, when the reasons alone do not say ("note": an unsure annotator's note), recorded
    with the routing so the panel explains it."""
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
                routing={**routing_record(item.project), **({"why": why} if why else {})},
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
    for name, value in updates.items():
        setattr(task, name, value)
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
            "guideline_version", "annotator"
        )
    )
    if project.routes_adaptively:
        return _route_adaptive(item=item, project=project, annotations=annotations)
    reasons: list[str] = []
    if len({value_key(a.value) for a in annotations}) > 1:
        reasons.append(ReviewReason.DISAGREEMENT)
    if any(a.unsure for a in annotations):
        reasons.append(ReviewReason.UNSURE)
    if not reasons and (project.review_all or routing.audit_drawn(item.pk, project.audit_rate)):
        reasons.append(ReviewReason.AUDIT)
    if reasons:
        if not Item.objects.filter(pk=item.pk, status=ItemStatus.ANNOTATED).update(status=ItemStatus.IN_REVIEW):
            return None
        return review_task_open(item=item, reasons=reasons)
    if not Item.objects.filter(pk=item.pk, status=ItemStatus.ANNOTATED).update(status=ItemStatus.APPROVED):
        return None
    webhook_events.items_approved(project_id=project.pk, item_ids=[item.pk])
    return Decision.objects.create(
        item_id=item.pk,
        value=annotations[0].value,
        source=DecisionSource.AGREEMENT,
        reason=f"All {len(annotations)} annotators agreed.",
        guideline_version=_latest_version(annotations),
    )


def _latest_version(annotations: Sequence[Annotation]) -> GuidelineVersion | None:
    versions = [a.guideline_version for a in annotations if a.guideline_version is not None]
    return max(versions, key=lambda v: v.version) if versions else None


def _human_votes(annotations: Sequence[Annotation]) -> list[routing.Vote]:
    return [
        routing.Vote(a.annotator.get_username(), a.value["label"], routing.UNSURE_WEIGHT if a.unsure else 1.0)
        for a in annotations
    ]


def _weighed(
    *,
    project: Project,
    item_id: int,
    votes: Sequence[routing.Vote],
    reviewed: bool = False,
    reviewers: Sequence[str] = (),
) -> tuple[routing.Decision, routing.Budget]:
    """The adaptive decision for an item with these votes, from the measured accuracies, model and budget; and the
    budget it read: routing an item, as its rules stand (the doubt bar and whether audits fit, for the audit draw
    after it); weighing a review, without them (bar 0, audits fit: a review is never held back).

    `reviewers`: the voters among `votes` who reviewed the item; one nobody has measured yet counts as
    REVIEWER_PRIOR."""
    labels = list(Label.objects.filter(project=project).values_list("name", flat=True))
    test = routing_inputs.in_test_split(item_id=item_id)  # humans alone weigh a test label, measured alone
    accuracies = routing_inputs.voter_accuracies(project=project, humans_only=test)
    unmeasured = sum(1 for v in votes if v.voter not in accuracies)
    for name in reviewers:
        accuracies.setdefault(name, routing_inputs.REVIEWER_PRIOR)
    # a scan's vote is for the review of the label it doubted: routing annotations (an item's first ones, or new ones
    # after a send-back started it over) never looks for it, so the path every annotation takes pays nothing for it
    model = (
        None
        if test
        else routing_inputs.model_votes(project=project, item_ids=[item_id], test=set(), scans=reviewed).get(item_id)
    )
    # the doubt bar is for the items routing may still ask about, and a test label is people's word: no bar there (a
    # test item drawn for audit still waits where audits do not fit: the budget read with its rules is returned)
    budget = routing_inputs.budget_state(project=project, bar=not reviewed)
    left = None if reviewed else routing_inputs.annotators_left(project=project, item_id=item_id)
    decision = routing.decide(
        votes,
        labels,
        accuracies,
        budget=replace(budget, bar=0.0) if test else budget,
        model=model,
        reviewed=reviewed,
        annotators_left=left,
    )
    return replace(decision, unmeasured=unmeasured), budget


def _route_adaptive(*, item: Item, project: Project, annotations: list[Annotation]) -> ReviewTask | Decision | None:
    """Adaptive routing (review/routing.py): accept the weighted vote, ask one more annotator, or a reviewer."""
    votes = _human_votes(annotations)
    decision, budget = _weighed(project=project, item_id=item.pk, votes=votes)
    action = decision.action
    # An audit is a judgement too: under review_all always, else only while the budget has one to spare and pays for
    # every item in doubt (routing.audit_affordable)
    audited = project.review_all or (
        routing.audit_drawn(item.pk, project.audit_rate) and routing.audit_affordable(budget)
    )
    drawn_for_audit = action == routing.DONE and audited
    if drawn_for_audit:
        action = routing.REVIEWER
    # An unsure annotator who wrote a note asked the reviewer something (the form says the reviewer sees it): a
    # reviewer answers, whatever the vote or the budget says. Unsure without a note only counts half (UNSURE_WEIGHT).
    noted = action == routing.DONE and any(asks_the_reviewer(a) for a in annotations)
    if noted:
        action = routing.REVIEWER
    agreed = len({v.label for v in votes}) == 1
    if action == routing.ANNOTATOR:
        Item.objects.filter(pk=item.pk, status=ItemStatus.ANNOTATED).update(
            extra_slots=F("extra_slots") + 1,
            is_open=True,
            status=ItemStatus.IN_ANNOTATION,
            blind_count=Coalesce(F("blind_count"), Value(len(annotations))),
        )
        return None
    if action == routing.REVIEWER:
        reasons: list[str] = []
        if not agreed:
            reasons.append(ReviewReason.DISAGREEMENT)
        if any(a.unsure for a in annotations):
            reasons.append(ReviewReason.UNSURE)
        if not reasons:
            # Only the audit draw is an audit sample (the noise scan calibrates on those); annotators who agree while
            # the weighted vote is still in doubt (poorly measured voters, the model against them) are not.
            reasons.append(ReviewReason.AUDIT if drawn_for_audit else ReviewReason.DOUBT)
        if not Item.objects.filter(pk=item.pk, status=ItemStatus.ANNOTATED).update(status=ItemStatus.IN_REVIEW):
            return None
        # a tie leans nowhere: naming the first label in the project's order would nudge the reviewer toward it
        suggested = None if routing.is_tie(decision.posterior) else {"label": decision.label}
        return review_task_open(item=item, reasons=reasons, suggested_value=suggested, why="note" if noted else "")
    if not Item.objects.filter(pk=item.pk, status=ItemStatus.ANNOTATED).update(status=ItemStatus.APPROVED):
        return None
    webhook_events.items_approved(project_id=project.pk, item_ids=[item.pk])
    unanimous = agreed and decision.label == votes[0].label
    return Decision.objects.create(
        item_id=item.pk,
        value={"label": decision.label},
        source=DecisionSource.AGREEMENT if unanimous else DecisionSource.WEIGHTED,
        reason=_weighed_reason(decision, len(votes)),
        guideline_version=_latest_version(annotations),
    )


def _weighed_reason(decision: routing.Decision, n: int) -> str:
    model = decision.model
    with_model = "" if model is None else f" and the model's ({model.label}, {model.accuracy:.0%} accurate)"
    if decision.unmeasured >= n:
        weighed = (
            f"by each one's accuracy (nobody measured yet: an annotator counts as {routing.PRIOR_ACCURACY:.2f}, "
            f"a reviewer {routing_inputs.REVIEWER_PRIOR:.2f})"
        )
    elif decision.unmeasured:
        weighed = f"by each one's measured accuracy ({decision.unmeasured} not measured yet, counted at the prior)"
    else:
        weighed = "by each one's measured accuracy"
    # "by these votes": the figure is this vote's; a noise scan estimates the same label's chance its own way (a
    # reviewer saw 93 % here beside the scan's 12 %)
    said = f"{decision.label} ({decision.confidence:.0%} likely right by these votes)"
    kept = (
        f" Under {routing.CONFIDENT:.0%} sure ({1 - decision.confidence:.1%} in doubt), but the budget keeps its "
        f"further judgements for items at least {decision.bar:.1%} in doubt."
        if decision.bar
        else ""
    )
    return f"Weighted vote of {n} judgements{with_model} {weighed}: {said}.{kept}"


def _reviewer_weighed(
    *, reviewer: User, task: ReviewTask, value: dict[str, Any]
) -> tuple[routing.Decision, int] | None:
    """Tasks opened under adaptive routing: the weighted vote of the item's annotations, earlier reviewers' words
    and this reviewer's value (their vote), with how many judgements it weighed. A task keeps the routing it was
    opened under (`ReviewTask.routing`): switching the project to fixed does not make the reviewer's word final on
    items adaptive routing already sent. An item the owner overruled is out of the vote: the reviewer's word is final
    there (else two agreeing annotators would undo the overrule on the next review)."""
    project = task.item.project
    if not task_routes_adaptively(task=task, project=project):
        return None
    if item_overruled(item_id=task.item_id):
        return None
    submitted = list(
        Annotation.objects.filter(item_id=task.item_id, status=AnnotationStatus.SUBMITTED)
        .exclude(annotator=reviewer)
        .select_related("annotator")
    )
    if not submitted:
        return None  # labels imported as final: the reviewer's word is final
    # An unsure annotator who wrote a note asked the reviewer: the answer takes the question's place in the vote (a
    # tester's reviewer answered "is this promo?" with spam and was outvoted by the asker's own half vote).
    annotations = [a for a in submitted if not asks_the_reviewer(a)]
    earlier = _earlier_reviewer_votes(item_id=task.item_id, reviewer=reviewer)
    if not annotations and not earlier:
        return None  # only questions asked of the reviewer, nobody else's word: theirs is final
    here = routing.Vote(reviewer.get_username(), value["label"])
    names = [v.voter for v in (*earlier, here)]
    # one vote per person: a reviewer who also annotated the item counts with their last word, the review
    votes = [*(v for v in _human_votes(annotations) if v.voter not in names), *earlier, here]
    weighed, _budget = _weighed(project=project, item_id=task.item_id, votes=votes, reviewed=True, reviewers=names)
    return weighed, len(votes)


def _leads(vote: routing.Decision, label: str) -> bool:
    """Whether `label` is the weighted vote's, or shares its top probability: a tie (two reviewers' words against
    each other, say) is settled by the reviewer deciding now, never by the order of the project's labels."""
    top = max(vote.posterior.values(), default=0.0)
    return vote.label == label or vote.posterior.get(label, 0.0) >= top - routing.TIE


def _earlier_reviewer_votes(*, item_id: int, reviewer: User) -> list[routing.Vote]:
    """Other reviewers' words on this item (an audit overturned, an earlier flag's review), each one's last, as
    accuracy is measured on them: every judgement is in the weighted vote."""
    others = Decision.objects.filter(item_id=item_id).exclude(reviewer=reviewer)
    return list(routing_inputs.reviewer_votes(others).get(item_id, {}).values())


def _close_task(*, task: ReviewTask, reviewer: User, status: str, now: dt.datetime, comment: str = "") -> None:
    """Close an open task; raise TaskClosed if it was closed first (another reviewer, this one in another tab or
    a repeated request, an undo), saying how and by whom."""
    won = ReviewTask.objects.filter(pk=task.pk, status=ReviewStatus.OPEN).update(
        status=status, resolved_by=reviewer, resolved_at=now, comment=comment
    )
    if not won:
        raise TaskClosed(TASK_CLOSED.format(how=closed_how(task_id=task.pk, user=reviewer)))
    task.status, task.resolved_by, task.resolved_at, task.comment = status, reviewer, now, comment


# As long as the review form's reason box takes (templates/annotation/_review_panel.html); the API says so too.
REASON_MAX = 1000
REASON_TOO_LONG = "The reason is {n} characters long; it can be at most {limit}."


def review_decide(
    *,
    reviewer: User,
    task: ReviewTask,
    value: dict[str, Any],
    reason: str = "",
    source: str = DecisionSource.REVIEWER,
    now: dt.datetime | None = None,
) -> Decision:
    """Record the reviewer's final value for the task's item as a new decision; the item is approved."""
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        raise ServiceError(REASON_TOO_LONG.format(n=len(reason), limit=REASON_MAX), field="reason")
    item = task.item
    project = item.project
    label_names = list(Label.objects.filter(project=project).values_list("name", flat=True))
    try:
        value = project.value_normalise(value, label_names, text=item.text)
    except InvalidValue as exc:
        raise ServiceError(str(exc), field=exc.field) from exc
    _test_label_guard(task=task, value=value)
    now = now or timezone.now()
    with transaction.atomic():
        _close_task(task=task, reviewer=reviewer, status=ReviewStatus.DONE, now=now)
        decision = Decision.objects.create(
            item=item,
            reviewer=reviewer,
            value=value,
            reason=reason,
            source=source,
            guideline_version=guideline_current(project=project),
            review_task=task,
        )
        reviewed = source == DecisionSource.REVIEWER
        weighed = _reviewer_weighed(reviewer=reviewer, task=task, value=value) if reviewed else None
        if weighed is not None and not _leads(weighed[0], value["label"]):
            # The reviewer's word is kept (the decision above); the weighted vote of every judgement is final.
            vote, n = weighed
            decision = Decision.objects.create(
                item=item,
                value={"label": vote.label},
                reason=f"The reviewer said {value['label']}. " + _weighed_reason(vote, n),
                source=DecisionSource.WEIGHTED,
                guideline_version=decision.guideline_version,
                review_task=task,
            )
        Item.objects.filter(pk=item.pk).update(status=ItemStatus.APPROVED)
        webhook_events.items_approved(project_id=project.pk, item_ids=[item.pk])
    item.status = ItemStatus.APPROVED
    return decision


def _test_label_guard(*, task: ReviewTask, value: dict[str, Any]) -> None:
    """Refuse a new label for a test-split item whose review only a model or a rating opened (a noise flag made
    before the item got its split, say): the reviewer may confirm the current label, not change it."""
    if not task.reasons or not set(task.reasons) <= MODEL_DRIVEN_REASONS:
        return
    if not ItemSplit.objects.filter(item_id=task.item_id, split=Split.TEST).exists():
        return
    final = Decision.objects.filter(item_id=task.item_id).order_by("-created_at", "-id").first()
    if final is None or value_key(final.value) == value_key(value):
        return
    reasons = ", ".join(ReviewReason(r).label.lower() for r in task.reasons)
    raise ServiceError(TEST_LABEL_MODEL_REVIEW.format(reasons=reasons, final=value_display(final.value)))


def review_accept(
    *,
    reviewer: User,
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


def review_send_back(*, reviewer: User, task: ReviewTask, comment: str, now: dt.datetime | None = None) -> ReviewTask:
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


@dataclass(frozen=True)
class ValueProposal:
    """A value for an item from outside review (a rater's correction, a well-rated model response, a model
    or a rater disagreeing with the final label), with its provenance.

    `decide` True records it as the item's final value (a Decision with `source`, made by `reviewer_id`,
    under `guideline_version_id`); False opens a review task with it as the suggestion. A decision the
    proposal would overwrite turns it into a review task instead: a decision made after `since`, an item
    waiting in review, or (for a rater's correction) a final value two or more annotators agreed on, which
    opens a task with reason CORRECTION rather than letting one rater outvote them. `skip_if_final` leaves
    the item alone when its final value already equals it.
    A model-driven proposal (`model_driven`) for a test-split item is held: nothing is written for it.
    """

    item_id: int
    value: dict[str, Any]
    reason: str
    decide: bool
    source: str = ""  # DecisionSource, when deciding
    review_reason: str = ReviewReason.RATING  # why the item goes to review, when it does
    since: dt.datetime | None = None
    reviewer_id: int | None = None
    guideline_version_id: int | None = None
    skip_if_final: bool = True

    @property
    def model_driven(self) -> bool:
        """Whether a model (or a rating of a model's output) is where the value comes from."""
        if self.decide:
            return self.source in MODEL_DRIVEN_SOURCES
        return self.review_reason in MODEL_DRIVEN_REASONS


@dataclass(frozen=True)
class ProposalOutcome:
    """What `proposals_apply` did with one proposal: "decide", "review", "unchanged" or "held" (a test-split
    item, which a model-driven proposal never changes: `note` says why)."""

    item_id: int
    action: str
    review_reason: str = ""
    decision_id: int | None = None
    task_id: int | None = None
    note: str = ""


def proposals_apply(*, project: Project, proposals: Sequence[ValueProposal]) -> list[ProposalOutcome]:
    """Apply values proposed from outside review, in batches, re-checking each item under lock.

    The only writer of decisions, review tasks and item status for model- and rating-driven changes (rounds
    call it). Decisions are appended, never updated, so history stays; an item keeps one current final value
    (the newest decision). Idempotent: run twice, the second call finds the value already final (unchanged)
    or the review task already open (reasons merged, nothing duplicated). One outcome per proposal, in order.
    A test-split item is held whatever the plan said (it may have got its split since the plan was read): a
    model-driven proposal never writes to it (outcome "held", TEST_SPLIT_HELD).
    """
    if len({p.item_id for p in proposals}) != len(proposals):
        raise ValueError(ONE_PROPOSAL_PER_ITEM)
    current = guideline_current(project=project)
    outcomes: list[ProposalOutcome] = []
    for start in range(0, len(proposals), PROPOSAL_BATCH):
        batch = proposals[start : start + PROPOSAL_BATCH]
        with transaction.atomic():
            outcomes.extend(_proposals_apply_batch(project=project, batch=batch, guideline=current))
    return outcomes


def _proposals_apply_batch(
    *, project: Project, batch: Sequence[ValueProposal], guideline: GuidelineVersion | None
) -> list[ProposalOutcome]:
    ids = [p.item_id for p in batch]
    # Lock the items (PostgreSQL; SQLite serialises writers anyway) so the re-check below holds until commit.
    locked = set(Item.objects.select_for_update().filter(project=project, pk__in=ids).values_list("pk", flat=True))
    finals: dict[int, Decision] = {}
    for decision in Decision.objects.filter(item_id__in=ids).order_by("item_id", "created_at", "id"):
        finals[decision.item_id] = decision
    in_review = set(
        ReviewTask.objects.filter(item_id__in=ids, status=ReviewStatus.OPEN).values_list("item_id", flat=True)
    )
    test = set(ItemSplit.objects.filter(item_id__in=ids, split=Split.TEST).values_list("item_id", flat=True))
    corrected = {p.item_id for p in batch if p.decide and p.source == DecisionSource.MODEL_CORRECTED}
    agreed = agreement_backed(finals={i: finals[i].value for i in corrected if i in finals})
    decide: list[ValueProposal] = []
    review: list[ValueProposal] = []
    plan: dict[int, tuple[str, str]] = {}
    for proposal in batch:
        final = finals.get(proposal.item_id)
        if proposal.item_id in locked and proposal.item_id in test and proposal.model_driven:
            plan[proposal.item_id] = ("held", "")
            continue
        if proposal.item_id not in locked or (
            proposal.skip_if_final and final is not None and value_key(final.value) == value_key(proposal.value)
        ):
            plan[proposal.item_id] = ("unchanged", "")
            continue
        overwrites = proposal.item_id in in_review or (
            final is not None and proposal.since is not None and final.created_at > proposal.since
        )
        # one rater against two agreeing annotators, or against the owner's overrule: a reviewer weighs them
        owner_said = final is not None and final.source == DecisionSource.OWNER
        contradicts = proposal.decide and (proposal.item_id in agreed or owner_said)
        if proposal.decide and not overwrites and not contradicts:
            decide.append(proposal)
            plan[proposal.item_id] = ("decide", "")
        else:
            reason = proposal.review_reason if not proposal.decide else ReviewReason.RATING
            if contradicts:  # one rater against two annotators who agreed: a reviewer weighs them
                reason = ReviewReason.CORRECTION
            review.append(proposal)
            plan[proposal.item_id] = ("review", reason)
    decisions = Decision.objects.bulk_create(
        [
            Decision(
                item_id=p.item_id,
                reviewer_id=p.reviewer_id,
                value=p.value,
                reason=p.reason,
                source=p.source,
                guideline_version_id=p.guideline_version_id or (guideline.pk if guideline else None),
            )
            for p in decide
        ]
    )
    decision_ids = {d.item_id: d.pk for d in decisions}  # SQLite and PostgreSQL return the new ids
    if decide:
        Item.objects.filter(pk__in=[p.item_id for p in decide]).update(status=ItemStatus.APPROVED, is_open=False)
        webhook_events.items_approved(project_id=project.pk, item_ids=[p.item_id for p in decide])
    reasons = {p.item_id: plan[p.item_id][1] for p in review}
    task_ids = _review_tasks_open(project=project, proposals=review, reasons=reasons)
    if review:
        Item.objects.filter(pk__in=[p.item_id for p in review], status=ItemStatus.APPROVED).update(
            status=ItemStatus.IN_REVIEW
        )
    return [
        ProposalOutcome(
            item_id=p.item_id,
            action=plan[p.item_id][0],
            review_reason=plan[p.item_id][1],
            decision_id=decision_ids.get(p.item_id) if plan[p.item_id][0] == "decide" else None,
            task_id=task_ids.get(p.item_id) if plan[p.item_id][0] == "review" else None,
            note=TEST_SPLIT_HELD.format(item=p.item_id) if plan[p.item_id][0] == "held" else "",
        )
        for p in batch
    ]


def _review_tasks_open(
    *, project: Project, proposals: Sequence[ValueProposal], reasons: dict[int, str]
) -> dict[int, int]:
    """Open one review task per proposal's item, suggesting its value, or merge into the task already open
    (which keeps its suggestion, or takes this one if it had none). {item id: task id}."""
    if not proposals:
        return {}
    ids = [p.item_id for p in proposals]
    open_tasks = {t.item_id: t for t in ReviewTask.objects.filter(item_id__in=ids, status=ReviewStatus.OPEN)}
    routed = routing_record(project)
    try:
        with transaction.atomic():
            created = ReviewTask.objects.bulk_create(
                [
                    ReviewTask(
                        project=project,
                        item_id=p.item_id,
                        reasons=[reasons[p.item_id]],
                        priority=_priority([reasons[p.item_id]]),
                        suggested_value=p.value,
                        routing=routed,
                    )
                    for p in proposals
                    if p.item_id not in open_tasks
                ]
            )
    except IntegrityError:  # a task opened concurrently for one of them: open or merge one by one instead
        created = []
    done = {task.item_id for task in created}
    for proposal in proposals:
        if proposal.item_id in done:
            continue
        task = open_tasks.get(proposal.item_id)
        reason = reasons[proposal.item_id]
        if task is None or reason not in task.reasons:
            task = review_task_open(
                item=Item(pk=proposal.item_id, project_id=project.pk), reasons=[reason], suggested_value=proposal.value
            )
        if task.suggested_value is None:  # a task already open keeps its suggestion; fill an empty one
            ReviewTask.objects.filter(pk=task.pk, suggested_value__isnull=True).update(suggested_value=proposal.value)
    found = ReviewTask.objects.filter(item_id__in=ids, status=ReviewStatus.OPEN).values_list("item_id", "pk")
    return dict(found)


BULK_NOTHING_CHOSEN = "Tick the audit items to accept first."


BULK_NOT_AGREED_AUDIT = (
    "Only audit items whose annotators agreed can be accepted together; review these one by one: {items}."
)


BULK_ALL_CLOSED = "Every chosen item was closed meanwhile (items {items}): nothing left to accept."


BULK_REASON = "Accepted with other audit items: the annotators agreed."


BULK_MAX = 500


BULK_TOO_MANY = f"At most {BULK_MAX} items at a time."


@dataclass(frozen=True)
class BulkAcceptPlan:
    """What a bulk accept will do: the open tasks it decides, each with the agreed value it makes final."""

    tasks: list[tuple[ReviewTask, dict[str, Any]]]
    already_closed: list[int] = field(default_factory=list)  # item ids of chosen tasks closed since they were ticked

    @property
    def by_value(self) -> list[tuple[str, int]]:
        """(value shown, how many items) for the confirmation, most frequent first."""
        counts: dict[str, int] = {}
        for _, value in self.tasks:
            counts[value_display(value)] = counts.get(value_display(value), 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass(frozen=True)
class BulkAcceptResult:
    decisions: list[Decision]
    already_closed: list[int]  # item ids another reviewer (or an undo) closed first: left as they are


def review_bulk_plan(*, project: Project, user: User, role: str, task_ids: Sequence[int]) -> BulkAcceptPlan:
    """Check a bulk accept before anything is written: every chosen task must be an open audit sample (and only
    that) of this project, visible to `user`, whose annotators agree. Otherwise ServiceError names the items."""
    ids = sorted(set(task_ids))
    if not ids:
        raise ServiceError(BULK_NOTHING_CHOSEN, field="tasks")
    if len(ids) > BULK_MAX:
        raise ServiceError(BULK_TOO_MANY, field="tasks")
    visible = list(review_tasks(project=project, user=user, role=role).filter(pk__in=ids))
    closed = sorted(task.item_id for task in visible if task.status != ReviewStatus.OPEN)  # closed meanwhile
    rows = review_task_rows_of([task for task in visible if task.status == ReviewStatus.OPEN])
    seen = {task.pk for task in visible}
    refused = [f"task {i} (not in this project's review queue)" for i in ids if i not in seen]
    chosen: list[tuple[ReviewTask, dict[str, Any]]] = []
    for row in rows:
        value = agreed_audit_value(task=row.task, annotations=row.annotations)
        if value is None:
            reasons = ", ".join(ReviewReason(r).label.lower() for r in row.task.reasons)
            refused.append(f"item {row.item.pk} ({reasons})")
        else:
            chosen.append((row.task, value))
    if refused:
        raise ServiceError(BULK_NOT_AGREED_AUDIT.format(items="; ".join(refused)), field="tasks")
    if not chosen:
        raise StateConflict(BULK_ALL_CLOSED.format(items=", ".join(map(str, closed))), field="tasks")
    return BulkAcceptPlan(tasks=chosen, already_closed=closed)


def review_bulk_accept(
    *, reviewer: User, plan: BulkAcceptPlan, now: dt.datetime | None = None
) -> BulkAcceptResult:
    """Accept each planned task's agreed value: one ordinary review decision per item, by `reviewer`, with the
    same guards as a single accept. A task someone closed since the plan was read is left alone and reported."""
    now = now or timezone.now()
    decisions: list[Decision] = []
    closed: list[int] = list(plan.already_closed)
    for task, value in plan.tasks:
        try:
            decisions.append(review_decide(reviewer=reviewer, task=task, value=value, reason=BULK_REASON, now=now))
        except ServiceError as exc:
            if not isinstance(exc, TaskClosed):
                raise
            closed.append(task.item_id)
    return BulkAcceptResult(decisions=decisions, already_closed=closed)


REVIEW_ACTIONS = ("accept", "fix", "send_back")


UNKNOWN_ACTION = "Choose accept, fix or send back."


def review_act(
    *,
    reviewer: User,
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
            annotated = Annotation.objects.filter(item_id=task.item_id, status=AnnotationStatus.SUBMITTED).exists()
            raise ServiceError(ACCEPT_WHICH if annotated else NOTHING_TO_ACCEPT, field="annotation")
        return review_accept(reviewer=reviewer, task=task, annotation_id=annotation_id, reason=reason)
    if action == "fix":
        return review_decide(reviewer=reviewer, task=task, value=value, reason=reason)  # type: ignore[arg-type]
    if action == "send_back":
        review_send_back(reviewer=reviewer, task=task, comment=comment)
        return None
    raise ServiceError(UNKNOWN_ACTION, field="action")


def decisions_import(*, project: Project, rows: Sequence[tuple[int, dict[str, Any]]], reason: str) -> int:
    """Approve items an import just wrote with the file's labels as their final values (source "import").

    The owner chose to trust the file: the items skip annotation, and the decision records where the value
    came from, so a later review or noise scan can still overturn it with the history kept.
    """
    if not rows:
        return 0
    version = guideline_current(project=project)
    Decision.objects.bulk_create(
        Decision(item_id=item_id, value=value, source=DecisionSource.IMPORT, reason=reason, guideline_version=version)
        for item_id, value in rows
    )
    Item.objects.filter(pk__in=[item_id for item_id, _ in rows], status=ItemStatus.NEW).update(
        prelabel=None, status=ItemStatus.APPROVED, is_open=False
    )
    webhook_events.items_approved(project_id=project.pk, item_ids=[item_id for item_id, _ in rows])
    return len(rows)


# --- the owner's overrule: the escape hatch from a weighted vote that keeps a label the owner knows is wrong ---

OVERRULE_NOT_DECIDED = "Item {item} has no final label yet (it is {status}): decide it in the review queue."


OVERRULE_NEEDS_REASON = "Say why you overrule the final label: the item's history keeps your reason."


OVERRULE_SAME = "{value} is already the final label of item {item}."


OVERRULE_REASON_MAX = 1000


OVERRULE_REASON_LONG = "The reason is {n} characters; at most {most}."


OVERRULE_TEST_SPLIT = (
    "Item {item} is in the test split, which judges the model: confirm that you mean to change its label."
)


def item_overrule(
    *, owner: User, item: Item, value: dict[str, Any], reason: str, confirm_test_split: bool = False
) -> Decision:
    """The project owner sets an approved item's final label outright, with a reason the history keeps.

    Adaptive routing weighs a reviewer's label with every other judgement, so a reviewer who knows better can be
    outvoted by two agreeing annotators, again on every later review (a tester's cold, soggy pizza stayed
    "positive"). The owner's word is final here: recorded as an `owner` decision, the item leaves the weighted vote
    for good (`item_overruled`: a later review of it is the reviewer's word, not a vote), a later noise scan shows its
    flag without sending it back, a round never proposes it for a model's disagreement and sends a rater's correction
    to a reviewer; the overrule is no vote in measured accuracy. A test-split item needs `confirm_test_split`: the
    test split judges the model, so its labels change only on purpose. The caller checks the owner role.
    """
    project = item.project
    reason = reason.strip()
    if not reason:
        raise ServiceError(OVERRULE_NEEDS_REASON, field="reason")
    if len(reason) > OVERRULE_REASON_MAX:
        raise ServiceError(OVERRULE_REASON_LONG.format(n=len(reason), most=OVERRULE_REASON_MAX), field="reason")
    label_names = list(Label.objects.filter(project=project).values_list("name", flat=True))
    try:
        value = project.value_normalise(value, label_names, text=item.text)
    except InvalidValue as exc:
        raise ServiceError(str(exc), field=exc.field) from exc
    with transaction.atomic():
        # under the lock: a noise scan or a round may have sent the item to review since the page was loaded
        locked = Item.objects.select_for_update().get(pk=item.pk)
        if locked.status != ItemStatus.APPROVED:
            status = ItemStatus(locked.status).label.lower()
            raise ServiceError(OVERRULE_NOT_DECIDED.format(item=item.pk, status=status))
        if not confirm_test_split and ItemSplit.objects.filter(item_id=item.pk, split=Split.TEST).exists():
            raise ServiceError(OVERRULE_TEST_SPLIT.format(item=item.pk), field="confirm_test_split")
        final = current_decision(item=locked)
        if final is not None and value_key(final.value) == value_key(value):
            raise ServiceError(OVERRULE_SAME.format(value=value_display(value, item.text), item=item.pk))
        decision = Decision.objects.create(
            item=item,
            reviewer=owner,
            value=value,
            reason=reason,  # the source (owner) says it is an overrule: the history row says so once
            source=DecisionSource.OWNER,
            guideline_version=guideline_current(project=project),
        )
        webhook_events.items_approved(project_id=project.pk, item_ids=[item.pk])
    return decision
