"""What adaptive routing reads from the database: voters' measured accuracy, the model's vote, the budget.

Accuracy is measured over every judgement in the project (routing.measured_accuracies, one-coin
Dawid-Skene), not taken from the noise scan's leave-one-out figure: that one judges an annotator against
the consensus of the *other* votes, which with two annotators per item is one noisy partner, and reads
far below the real accuracy. An unmeasured annotator counts as routing.PRIOR_ACCURACY, an unmeasured
reviewer as REVIEWER_PRIOR. The model's vote is `settings.LABELLOOP_ROUTING_MODEL` (a dotted path to
`fn(project, item_ids) -> {item id: ModelVote}`), by default the newest output of the project's latest
succeeded training run for the item, weighted by that run's test accuracy: items reach routing before
they have a final label, so a run's output for them is out of sample. Test-split items get no model vote.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db.models import Case, Count, F, Q, QuerySet, Sum, When
from django.db.models.functions import Greatest
from django.utils.module_loading import import_string

from annotation.models import (
    Annotation,
    AnnotationStatus,
    Claim,
    Decision,
    DecisionSource,
    Item,
    ItemSplit,
    ItemStatus,
    Label,
    Membership,
    Project,
    ReviewStatus,
    ReviewTask,
    Role,
    Split,
)
from annotation.review import routing

DEFAULT_MODEL_SOURCE = "annotation.review.routing_inputs.latest_run_votes"


# A reviewer nobody has measured yet counts as a little better than an unmeasured annotator: on a
# 1-1-1 split their word decides; two agreeing annotators still outweigh it until measured otherwise.
REVIEWER_PRIOR = routing.PRIOR_ACCURACY + 0.05


ROUTED_STATUSES = (ItemStatus.ANNOTATED, ItemStatus.IN_REVIEW, ItemStatus.APPROVED)


# Voters' accuracies are measured again when the project's judgements grew by this share, or got this old.
REMEASURE_GROWTH = 0.1
REMEASURE_SECONDS = 300.0


# (project id, created) -> (when, judgements, accuracies); `created` tells a reused id apart
_measured: dict[tuple[int, Any], tuple[float, int, dict[str, float]]] = {}
_measured_lock = threading.Lock()


def project_votes(*, project: Project) -> list[list[routing.Vote]]:
    """Every item's human judgements: its current annotations and the reviewers' decisions (their last word)."""
    by_item: dict[int, dict[str, routing.Vote]] = {}
    annotations = Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED).values_list(
        "item_id", "annotator__username", "value", "unsure"
    )
    for item_id, who, value, unsure in annotations.iterator(chunk_size=5000):
        if isinstance(value, dict) and isinstance(value.get("label"), str):
            weight = routing.UNSURE_WEIGHT if unsure else 1.0
            by_item.setdefault(item_id, {})[who] = routing.Vote(who, value["label"], weight)
    for item_id, said in reviewer_votes(Decision.objects.filter(item__project=project)).items():
        if item_id in by_item:
            by_item[item_id].update(said)
    return [list(votes.values()) for votes in by_item.values()]


def reviewer_votes(decisions: QuerySet[Decision]) -> dict[int, dict[str, routing.Vote]]:
    """{item id: {reviewer: their vote}} from these decisions' reviewer decisions: each reviewer's last word on an item
    (single labels only). The one reading of reviews as votes, for measuring accuracy and for weighing. An owner's
    overrule is no vote: the item has left the weighted vote (review.selectors.item_overruled)."""
    rows = (
        decisions.filter(source=DecisionSource.REVIEWER, reviewer__isnull=False)
        .order_by("created_at", "id")
        .values_list("item_id", "reviewer__username", "value")
    )
    by_item: dict[int, dict[str, routing.Vote]] = {}
    for item_id, who, value in rows.iterator(chunk_size=5000):
        if isinstance(value, dict) and isinstance(value.get("label"), str):
            by_item.setdefault(item_id, {})[who] = routing.Vote(who, value["label"])
    return by_item


def voter_accuracies(*, project: Project) -> dict[str, float]:
    """{username: accuracy} measured over every judgement in the project (routing.measured_accuracies).

    Cached per process: measured again once the judgements grew by REMEASURE_GROWTH or REMEASURE_SECONDS
    passed, so routing an item costs one count query, not a pass over the project.
    """
    count = Annotation.objects.filter(item__project=project, status=AnnotationStatus.SUBMITTED).count()
    now = time.monotonic()
    with _measured_lock:
        cached = _measured.get((project.pk, project.created_at))
    if cached is not None:
        when, seen, accuracies = cached
        if count <= seen * (1 + REMEASURE_GROWTH) + 20 and now - when < REMEASURE_SECONDS and count >= seen:
            return dict(accuracies)
    labels = list(Label.objects.filter(project=project).values_list("name", flat=True))
    measured = routing.measured_accuracies(project_votes(project=project), labels)
    accuracies = {who: accuracy for who, (accuracy, _n) in measured.items()}
    with _measured_lock:
        _measured[(project.pk, project.created_at)] = (now, count, accuracies)
    return dict(accuracies)


def model_source() -> Callable[[Project, Sequence[int]], dict[int, routing.ModelVote]]:
    return import_string(getattr(settings, "LABELLOOP_ROUTING_MODEL", DEFAULT_MODEL_SOURCE))


def latest_run_votes(project: Project, item_ids: Sequence[int]) -> dict[int, routing.ModelVote]:
    """The latest succeeded classification run's output for these items, weighted by its test accuracy."""
    from training.models import ModelOutput, RunStatus, TrainingRun  # training depends on annotation

    run = (
        TrainingRun.objects.filter(project=project, status=RunStatus.SUCCEEDED)
        .order_by("-finished_at", "-id")
        .only("pk", "metrics")
        .first()
    )
    accuracy = ((run.metrics or {}).get("test") or {}).get("accuracy") if run is not None else None
    if run is None or not isinstance(accuracy, int | float):
        return {}
    outputs = ModelOutput.objects.filter(run=run, item_id__in=list(item_ids)).values_list("item_id", "value")
    return {
        item_id: routing.ModelVote(label=value["label"], accuracy=float(accuracy))
        for item_id, value in outputs
        if isinstance(value, dict) and isinstance(value.get("label"), str)
    }


def model_votes(*, project: Project, item_ids: Sequence[int]) -> dict[int, routing.ModelVote]:
    """The model's vote on each item that may have one: never on a test-split item (humans only there)."""
    test = set(ItemSplit.objects.filter(item_id__in=list(item_ids), split=Split.TEST).values_list("item_id", flat=True))
    allowed = [item_id for item_id in item_ids if item_id not in test]
    if not allowed:
        return {}
    votes = model_source()(project, allowed)
    return {item_id: vote for item_id, vote in votes.items() if item_id in allowed}


def annotators_left(*, project: Project, item_id: int) -> int:
    """Members with the annotator role who never held this item: who could give it a further opinion.

    Owners may annotate too, but routing does not count on them: an item must not wait for a person who
    may never come.
    """
    held = Claim.objects.filter(item_id=item_id).values("annotator_id")
    return Membership.objects.filter(project=project, role=Role.ANNOTATOR).exclude(user_id__in=held).count()


def budget_state(*, project: Project) -> routing.Budget:
    """The running allowance: items routed so far, judgements given or committed on them, items in all.

    Judgements: each routed item's taken slots (its overlap and any extra annotator asked for, claimed or
    not), plus every review task that was not withdrawn (audits and noise reviews are human work too).
    Two queries.
    """
    routed = Q(status__in=ROUTED_STATUSES) | Q(extra_slots__gt=0)
    slots = Case(
        When(extra_slots__gt=0, then=Greatest(F("slots_taken"), F("extra_slots") + project.overlap)),
        default=F("slots_taken"),
    )
    totals: dict[str, Any] = Item.objects.filter(project=project).aggregate(
        items=Count("pk"), routed=Count("pk", filter=routed), slots=Sum(slots, filter=routed)
    )
    reviews = ReviewTask.objects.filter(project=project).exclude(status=ReviewStatus.WITHDRAWN).count()
    return routing.Budget(
        per_item=project.routing_budget,
        routed=totals["routed"] or 0,
        spent=(totals["slots"] or 0) + reviews,
        total_items=totals["items"] or 0,
        overlap=project.overlap,
    )


PLAN_ITEMS = 2000  # the latest items with their overlap in: enough for the figures, bounded work


def routing_plan(*, project: Project) -> dict[str, Any]:
    """What adaptive routing would do with the latest items whose annotations are in, before it is switched on.

    Each item's first `overlap` annotations are replayed through routing.plan against the project's
    budget, with today's measured accuracies and the model's votes (none on test-split items): how many
    would be accepted, get a further annotator or a reviewer, and the expected share of right final
    labels, beside the same figure for the fixed routing. Owners and reviewers only (it names no one).
    """
    labels = list(Label.objects.filter(project=project).values_list("name", flat=True))
    base: dict[str, Any] = {
        "policy": project.routing_in_force,
        "budget": project.routing_budget,
        "confident": routing.CONFIDENT,
        "audit_rate": project.audit_rate,
        "items": 0,
        "done": 0,
        "annotator": 0,
        "reviewer": 0,
        "audit": 0,
        "expected_accuracy": None,
        "fixed_expected_accuracy": None,
        "measured_annotators": 0,
    }
    if not project.task_kind.single_class:
        return base
    item_ids = list(
        Item.objects.filter(project=project, submitted_count__gte=project.overlap)
        .order_by("-id")
        .values_list("pk", flat=True)[:PLAN_ITEMS]
    )
    item_ids.reverse()
    first: dict[int, list[routing.Vote]] = {}
    rows = (
        Annotation.objects.filter(item_id__in=item_ids, status=AnnotationStatus.SUBMITTED)
        .order_by("created_at", "id")
        .values_list("item_id", "annotator__username", "value", "unsure", "note")
    )
    noted_ids: set[int] = set()
    for item_id, who, value, unsure, note in rows:
        votes = first.setdefault(item_id, [])
        if len(votes) < project.overlap and isinstance(value, dict) and isinstance(value.get("label"), str):
            votes.append(routing.Vote(who, value["label"], routing.UNSURE_WEIGHT if unsure else 1.0))
            if unsure and note.strip():
                noted_ids.add(item_id)
    accuracies = voter_accuracies(project=project)
    models = model_votes(project=project, item_ids=item_ids)
    kept = [i for i in item_ids if len(first.get(i, [])) == project.overlap]
    items = [(first[i], models.get(i)) for i in kept]
    audit = [routing.audit_drawn(i, project.audit_rate) for i in kept]
    if not items:
        return base
    total = Item.objects.filter(project=project).count()
    annotators = Membership.objects.filter(project=project, role=Role.ANNOTATOR).count()
    row = routing.plan(
        items,
        labels,
        accuracies,
        per_item=project.routing_budget,
        total_items=total,
        annotators=annotators,
        audit=audit,
        review_all=project.review_all,
        noted=[i in noted_ids for i in kept],
    )
    return {
        **base,
        "items": len(items),
        "done": row.done,
        "annotator": row.annotator,
        "reviewer": row.reviewer,
        "audit": row.audit,
        "expected_accuracy": row.expected_accuracy,
        "fixed_expected_accuracy": row.fixed_expected_accuracy,
        "measured_annotators": len(accuracies),
    }
